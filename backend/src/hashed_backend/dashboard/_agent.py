"""An agent's page: the live policy's limits that bind it, how much of each rolling window is used, its keys.

Window use is counted from the stored decision records with the core's own rules (`hashed.policy`): the agent's
ledger counts an allowed call (every call in shadow mode) once in each window the policy's engine lists for it,
with a negative amount counting as nothing, and a window holds what happened in the last `per`. The dashboard
asks the same engine, for each stored decision, which windows it belongs to. Two honest limits: it counts as the
*live* policy would (a call the live policy would refuse is not counted), and an argument that redaction removed
from the record cannot be summed. At most `SCAN` decisions are read, so the page costs the same for a huge agent;
a window that holds more says "at least".
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

import orjson
from sqlalchemy import select

from hashed.policy import Policy, PolicyEngine, Rule, parse_policy
from hashed_backend.credentials import iso, now_ns
from hashed_backend.db.models import AgentKey, Record
from hashed_backend.deps import AppState
from hashed_backend.services import policies

__all__ = ["SCAN", "KeyRow", "LivePolicy", "WindowUse", "key_history", "live_policy", "window_use"]

# Decisions read at most (newest first) to count window use: a bounded index walk.
SCAN = 10_000
_BATCH = 1_000


@dataclasses.dataclass
class WindowUse:
    """One rolling window of one rule, and what the stored records say is used of it now."""

    rule: str
    what: str | None  # the summed argument's name; None for a count of calls
    per_s: float
    limit: float
    used: float = 0.0
    complete: bool = True  # False: more decisions in the window than were read; `used` is a floor

    @property
    def per(self) -> str:
        """The window's length, as a policy writes it (`1h`, `1d`, `90s`)."""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.per_s >= size and self.per_s % size == 0:
                return f"{int(self.per_s // size)}{unit}"
        return f"{self.per_s:g}s"

    @property
    def percent(self) -> int:
        """Share of the bound used, 0-100 (capped)."""
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0

    @property
    def key(self) -> tuple[str, str | None]:
        """(rule id, what): how a `WindowCheck` of the engine is matched to this row."""
        return self.rule, self.what


@dataclasses.dataclass(frozen=True)
class LivePolicy:
    """The document this agent enforces (its own, else the organisation's) and the rules that can bind it."""

    source: str  # `agent` or `org`
    version: int
    hash: str | None
    policy: Policy | None
    rules: list[Rule]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class KeyRow:
    """One key the agent has held."""

    public_key: str
    added: str | None
    retired: str | None
    current: bool


def _applies(rule: Rule, name: str) -> bool:
    return rule.agents is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in rule.agents)


async def live_policy(state: AppState, org_id: str, agent_id: str, name: str) -> LivePolicy | None:
    """What `GET /v1/policy` would hand this agent now (None: no document yet), with the rules naming it."""
    async with state.db.read() as conn:
        row, source = await policies.latest(conn, org_id, agent_id), "agent"
        if row is None or row.yaml is None:
            row, source = await policies.latest(conn, org_id, "org"), "org"
    if row is None or row.yaml is None:
        return None
    try:
        policy = parse_policy(row.yaml)
    except Exception as exc:  # noqa: BLE001 - a stored document the core no longer reads: say so, show the rest
        return LivePolicy(source, row.version, row.hash, None, [], error=str(exc))
    return LivePolicy(source, row.version, row.hash, policy, [r for r in policy.rules if _applies(r, name)])


def windows_of(rules: list[Rule]) -> list[WindowUse]:
    """Every rolling window of the allow rules that can bind the agent, unused."""
    out = []
    for rule in rules:
        if rule.effect != "allow":
            continue
        for arg, limit in (rule.limits or {}).items():
            if limit.window is not None:
                out.append(WindowUse(rule.id, arg, limit.window.per, float(limit.window.max_sum)))
        if rule.rate is not None:
            out.append(WindowUse(rule.id, None, rule.rate.per, float(rule.rate.max_calls)))
    return out


async def window_use(state: AppState, agent_id: str, name: str, live: LivePolicy) -> list[WindowUse]:
    """Each window of `live` with its use now, counted from the newest stored decisions (at most `SCAN`)."""
    rows = windows_of(live.rules)
    if not rows or live.policy is None:
        return rows
    engine, by_key = PolicyEngine(live.policy), {row.key: row for row in rows}
    now = now_ns()
    oldest = now - int(max(row.per_s for row in rows) * 1e9)
    read, before, reached_oldest = 0, None, False
    query = select(Record.id, Record.ts, Record.effect, Record.raw).where(
        Record.agent_id == agent_id, Record.kind == "decision"
    )
    while read < SCAN and not reached_oldest:
        page = query if before is None else query.where(Record.id < before)
        async with state.db.read() as conn:
            batch = (await conn.execute(page.order_by(Record.id.desc()).limit(min(_BATCH, SCAN - read)))).all()
        if not batch:
            reached_oldest = True
            break
        read += len(batch)
        before = batch[-1].id
        for stored in batch:
            ts = stored.ts or 0
            if ts < oldest:
                reached_oldest = True  # a ledger's clock only moves forward: older ids are older still
                continue
            if stored.effect == "allow" or engine.shadow:
                record = orjson.loads(stored.raw)
                agent = record.get("agent")
                _count(engine, agent if isinstance(agent, str) else name, record, now - ts, by_key)
        if len(batch) < _BATCH:
            reached_oldest = True
    if not reached_oldest:
        for window in rows:
            window.complete = False
    return rows


def _count(engine: PolicyEngine, name: str, record: dict[str, Any], age_ns: int, by_key: dict[Any, WindowUse]) -> None:
    """Add one allowed decision to each window the engine lists for it that it still falls in."""
    args = record.get("args")
    tool = record.get("tool")
    if not isinstance(args, dict) or not isinstance(tool, str):
        return
    for check in engine.evaluate(name, tool, args).windows:
        if age_ns > check.per_ns:
            continue
        what = None if check.max_calls is not None else check.scope.rpartition("\x1fsum:")[2]
        found = by_key.get((check.rule_id, what))
        if found is not None:
            found.used += 1 if what is None else check.amount


async def key_history(state: AppState, org_id: str, agent_id: str) -> list[KeyRow]:
    """Every key the agent has held, oldest first (a rotation retires one and adds the next)."""
    async with state.db.read() as conn:
        rows = (
            await conn.execute(
                select(AgentKey.public_key, AgentKey.added_ns, AgentKey.retired_ns)
                .where(AgentKey.agent_id == agent_id, AgentKey.org_id == org_id)
                .order_by(AgentKey.added_ns, AgentKey.id)
            )
        ).all()
    return [KeyRow(r.public_key, iso(r.added_ns), iso(r.retired_ns), r.retired_ns is None) for r in rows]
