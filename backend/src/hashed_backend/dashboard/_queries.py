"""Reads only the dashboard needs: counts for the overview, and one record by id.

Everything else goes through the JSON API's own functions, so the pages and the API cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import func, select

from hashed.protocol import record_hash, verify_signature
from hashed_backend.credentials import iso, now_ns
from hashed_backend.db.models import Agent, AgentKey, Approval, Quarantine, Record
from hashed_backend.deps import AppState

__all__ = ["AgentRow", "Overview", "overview", "record_detail"]


# The overview's calls and denials are counted over at most this many of the newest records: an index walk of
# bounded length, so the page costs the same at a thousand records or a hundred million.
WINDOW = 10_000
_HOUR_NS = 3600 * 1_000_000_000


@dataclasses.dataclass(frozen=True)
class AgentRow:
    """One agent as the overview shows it."""

    id: str
    name: str
    public_key: str
    disabled: bool
    head_seq: int
    quarantined: int
    last_seen: str | None

    @property
    def chain(self) -> str:
        """`ok` when no record of this agent was refused, else how many were (they wait in the quarantine)."""
        return f"{self.quarantined} quarantined" if self.quarantined else "ok"


@dataclasses.dataclass(frozen=True)
class Overview:
    """Counts for one organisation; `calls` and `denials` are over the newest `window` records (all if fewer)."""

    agents: list[AgentRow]
    records: int
    calls: int
    denials: int
    pending: int
    window: int | None
    hours: list[Hour]


@dataclasses.dataclass(frozen=True)
class Hour:
    """Decisions in one hour of the last day (the chart's bar), oldest hour first."""

    start: str
    allowed: int
    denied: int
    pending: int

    @property
    def total(self) -> int:
        """Every decision of the hour."""
        return self.allowed + self.denied + self.pending


async def overview(state: AppState, org_id: str) -> Overview:
    """The overview's figures, all confined to `org_id`, each read through an index."""
    now = now_ns()
    last_ts = select(Record.ts).where(Record.agent_id == Agent.id).order_by(Record.id.desc()).limit(1).scalar_subquery()
    newest = (
        select(Record.kind, Record.effect, (Record.ts // _HOUR_NS).label("hour"))
        .where(Record.org_id == org_id)
        .order_by(Record.id.desc())
        .limit(WINDOW)
        .subquery()
    )
    async with state.db.read() as conn:
        agents = (
            await conn.execute(
                select(Agent, last_ts.label("last_ts")).where(Agent.org_id == org_id).order_by(Agent.name)
            )
        ).all()
        quarantined: dict[str | None, int] = dict(
            (
                await conn.execute(
                    select(Quarantine.agent_id, func.count())
                    .where(Quarantine.org_id == org_id)
                    .group_by(Quarantine.agent_id)
                )
            ).all()
        )
        by_hour = (
            await conn.execute(
                select(newest.c.effect, newest.c.hour, func.count())
                .where(newest.c.kind == "decision")
                .group_by(newest.c.effect, newest.c.hour)
            )
        ).all()
        pending = (
            await conn.execute(
                select(func.count()).where(
                    Approval.org_id == org_id, Approval.status == "pending", Approval.expires_ns > now
                )
            )
        ).scalar_one()
    rows = [
        AgentRow(
            id=a.id,
            name=a.name,
            public_key=a.public_key,
            disabled=a.disabled_ns is not None,
            head_seq=a.head_seq,
            quarantined=quarantined.get(a.id, 0),
            last_seen=iso(a.last_ts),
        )
        for a in agents
    ]
    records = sum(a.head_seq for a in rows)  # every stored record is in a verified chain
    window = WINDOW if records > WINDOW else None
    calls = sum(n for _, _, n in by_hour)
    denials = sum(n for effect, _, n in by_hour if effect == "deny")
    return Overview(rows, records, calls, denials, pending, window, _hours(by_hour, now))


def _hours(by_hour: Sequence[Any], now: int) -> list[Hour]:
    """The last 24 hours, one bar each, from (effect, hour number, count) rows."""
    counts: dict[tuple[str | None, int], int] = {}
    for effect, hour, n in by_hour:
        if hour is not None:
            counts[effect, int(hour)] = n
    current = now // _HOUR_NS
    return [
        Hour(
            start=(iso(hour * _HOUR_NS) or "")[11:16],
            allowed=counts.get(("allow", hour), 0),
            denied=counts.get(("deny", hour), 0),
            pending=counts.get(("pending", hour), 0),
        )
        for hour in range(current - 23, current + 1)
    ]


async def record_detail(state: AppState, org_id: str, record_id: int) -> dict[str, Any] | None:
    """One stored record of `org_id` with its hash and signature checked again now (None: not in this org)."""
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(Record, Agent.name.label("agent_name"))
                .join(Agent, Agent.id == Record.agent_id)
                .where(Record.id == record_id, Record.org_id == org_id)
            )
        ).first()
        if row is None:
            return None
        record = orjson.loads(row.raw)
        key, signature = str(record.get("key", "")), str(record.get("sig", ""))
        agents_key = (
            await conn.execute(select(AgentKey.id).where(AgentKey.agent_id == row.agent_id, AgentKey.public_key == key))
        ).first()
    hash_ok = record_hash(record) == row.hash == record.get("hash")
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "agent": row.agent_name,
        "seq": row.seq,
        "kind": row.kind,
        "time": iso(row.ts),
        "tool": row.tool,
        "effect": row.effect,
        "hash": row.hash,
        "prev": record.get("prev"),
        "signature": signature,
        "key": key,
        "hash_ok": hash_ok,
        "key_ok": agents_key is not None,
        "signature_ok": hash_ok and agents_key is not None and verify_signature(key, row.hash, signature),
        "json": orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
    }
