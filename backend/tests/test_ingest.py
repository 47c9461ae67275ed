"""POST /v1/logs/batch with records made by the real core: stored, duplicate, refused and quarantined."""

from __future__ import annotations

import copy

from hashed import Identity
from hashed.ledger import GENESIS, record_hash


def test_ingest_stores_real_records_and_reports_head(org, make_agent):
    agent = make_agent(org, calls=20)
    records = agent.ledger.records()
    response = agent.ship(records)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["stored"] * len(records)
    assert [r["seq"] for r in body["results"]] == [r["seq"] for r in records]
    assert body["head"] == {"seq": records[-1]["seq"], "hash": records[-1]["hash"]}
