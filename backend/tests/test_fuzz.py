"""Fuzz every operation from the server's own OpenAPI document (schemathesis), on SQLite and PostgreSQL (the
`server` fixture runs once per database): no input may cause a 5xx, and every answer must match the document.

Every schemathesis check runs (`--checks all`) on every answer, but one: `positive_data_acceptance`. The
document cannot say everything the server refuses, by design: text no database can store (a NUL, a lone
surrogate; docs/api.md, "Limits and malformed input") and times that are neither ISO 8601 nor nanoseconds
are schema-valid strings that get a 422 naming the field.

Bounded and seeded: a few examples per operation and credential (`derandomize`), so the run is the same every
time and stays well under two minutes per database. The live feed is left out (it streams until the client
leaves; test_logs covers it).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = 10
SKIP = {"/v1/logs/stream"}


def _failures(error: BaseException) -> list[BaseException]:
    return list(getattr(error, "exceptions", [error]))


def test_no_input_causes_a_server_error_or_an_answer_the_document_does_not_describe(server, fuzz_headers):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures, calls = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIP:
            continue

        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            nonlocal calls
            for headers in fuzz_headers:
                response = case.call(headers=headers, timeout=30)
                calls += 1
                try:
                    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
                except Exception as error:
                    for failure in _failures(error):
                        title = getattr(failure, "title", type(failure).__name__)
                        failures.append(
                            f"{title}: {response.status_code} {case.as_curl_command(headers)}\n{response.text[:300]}"
                        )

        fuzz()
    assert calls > 300
    assert failures == []
