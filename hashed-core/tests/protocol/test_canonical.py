from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashed.protocol import canonical_bytes, jcs_number
from hashed.protocol._canonical import _slow_encode, canonical_object_bytes, prepare

CASES = Path(__file__).parent / "rfc8785"
NAMES = sorted(p.stem for p in (CASES / "input").glob("*.json"))


def test_all_six_rfc8785_cases_are_present():
    assert NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_canonical_bytes_match_rfc8785_reference_output(name):
    document = json.loads((CASES / "input" / f"{name}.json").read_text(encoding="utf-8"))
    expected = (CASES / "output" / f"{name}.json").read_bytes()
    assert canonical_bytes(document) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123e-20, "1.23e-18"),
        (0.000001, "0.000001"),
        (0.0000001, "1e-7"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740993.0, "9007199254740992"),
    ],
)
def test_numbers_are_written_the_ecmascript_way(value, text):
    assert jcs_number(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53 + 1, -(2**60) - 1, {1: "x"}, b"raw"])
def test_values_outside_i_json_are_refused(value):
    with pytest.raises((ValueError, TypeError)):
        canonical_bytes(value)


def test_large_exact_double_read_back_as_int_keeps_its_bytes():
    # 1e20 is written as 100000000000000000000; JSON parsers read that back as an int beyond 2^53.
    assert canonical_bytes({"x": 1e20}) == canonical_bytes(json.loads('{"x": 100000000000000000000}'))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_fast_path_equals_the_plain_rfc8785_encoder(value):
    prepared, _ = prepare(value)
    assert canonical_bytes(value) == _slow_encode(prepared).encode()


@given(json_values)
def test_canonical_bytes_survive_a_json_round_trip(value):
    once = canonical_bytes(value)
    assert canonical_bytes(json.loads(once)) == once


@given(st.dictionaries(st.sampled_from(["hash", "sig", "seq", "args", "\U0001f600", "é"]) | st.text(), json_values))
def test_canonical_object_bytes_equal_those_of_the_object_without_the_omitted_members(value):
    omit = frozenset({"hash", "sig"})
    body = {k: v for k, v in value.items() if k not in omit}
    assert canonical_object_bytes(value, omit) == canonical_bytes(body)


@pytest.mark.parametrize(
    "value",
    [{"a": 2**53 + 1}, {"a": [1.5, {"b": 2**60 + 1}]}, {"a": {"b": {1: 2}}}, {"a": b"raw"}, {"a": float("nan")}],
)
def test_values_outside_i_json_are_refused_at_any_depth(value):
    with pytest.raises((ValueError, TypeError)):
        canonical_object_bytes(value, frozenset())
