"""An agent's page: the live policy's limits that bind it, how much of each rolling window is used, its keys.

Window use is counted from the stored decision records with the core's own rules (`hashed.policy`): the agent's
ledger counts an allowed call (every call in shadow mode) once in each window the policy's engine lists for it,
with a negative amount counting as nothing, and a window holds what happened in the last `per`. The dashboard
asks the same engine, for each stored decision, which windows it belongs to. Two honest limits: it counts as the
*live* policy would (a call the live policy would refuse is not counted), and an argument that redaction removed
from the record cannot be summed. Only the agent's newest `WALK` records are read, so the page costs the same for a
huge agent; a window that reaches further back says its figure is a floor.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

import orjson
from sqlalchemy import func, select

from hashed.policy import Policy, PolicyEngine, Rule, parse_policy
from hashed_backend.credentials import iso, now_ns
from hashed_backend.db.models import AgentKey, Quarantine, Record
from hashed_backend.deps import AppState
from hashed_backend.services import policies

__all__ = ["WALK", "KeyRow", "LivePolicy", "WindowUse", "key_history", "live_policy", "quarantined", "window_use"]

# Records of the agent read at most (its newest) to count window use: the page's cost does not grow with the agent.
WALK = 5_000


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
        policy = _parsed(row.hash, row.yaml)
    except Exception as exc:  # noqa: BLE001 - a stored document the core no longer reads: say so, show the rest
        return LivePolicy(source, row.version, row.hash, None, [], error=str(exc))
    return LivePolicy(source, row.version, row.hash, policy, [r for r in policy.rules if _applies(r, name)])


_PARSED: dict[str | None, Policy] = {}


def _parsed(digest: str | None, text: str) -> Policy:
    """The document parsed by the core, remembered by its hash (YAML parsing costs milliseconds per page)."""
    found = _PARSED.get(digest) if digest else None
    if found is None:
        found = parse_policy(text)
        if len(_PARSED) >= 64:
            _PARSED.clear()
        if digest:
            _PARSED[digest] = found
    return found


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
    """Each window of `live` with its use now, counted from the agent's newest `WALK` stored records."""
    rows = windows_of(live.rules)
    if not rows or live.policy is None:
        return rows
    counter = _Counter(live.policy, rows)
    now = now_ns()
    oldest = now - int(max(row.per_s for row in rows) * 1e9)
    newest_first = select(Record.id, Record.ts).where(Record.agent_id == agent_id).order_by(Record.id.desc())
    query = select(Record.ts, Record.raw).where(
        Record.agent_id == agent_id, Record.kind == "decision", Record.ts >= oldest
    )
    if not counter.engine.shadow:  # only allowed calls count (in shadow mode, every call)
        query = query.where(Record.effect == "allow")
    if counter.tools is not None:  # only the tools a windowed rule names (when it names them without globs)
        query = query.where(Record.tool.in_(sorted(counter.tools)))
    async with state.db.read() as conn:
        # The walk's lower end: the agent's WALK-th newest record, skipped to along its (agent_id, id) index.
        edge = (await conn.execute(newest_first.offset(WALK).limit(1))).first()
        if edge is not None:
            query = query.where(Record.id > edge.id)
        found = (await conn.execute(query)).all()
    for stored in found:
        counter.add(orjson.loads(stored.raw), name, now - (stored.ts or 0))
    if edge is not None and (edge.ts or 0) >= oldest:  # the windows reach further back than the walk
        for window in rows:
            window.complete = False
    return rows


class _Counter:
    """Adds stored decisions to the windows the engine lists for them.

    The engine's verdict depends on the tool, the agent and the arguments its rules read, so verdicts are
    remembered by those: a long run of calls with few distinct amounts costs one evaluation each.
    """

    def __init__(self, policy: Policy, rows: list[WindowUse]) -> None:
        self.engine = PolicyEngine(policy)
        self.by_key = {row.key: row for row in rows}
        names: set[str] = set()
        for rule in policy.rules:
            names.update(rule.limits or {}, rule.when or {}, (rule.approval.when or {}) if rule.approval else {})
        self.names = tuple(sorted({n.split(".")[0] for n in names}))  # a dotted path reads a top-level argument
        windowed = {row.rule for row in rows}
        patterns = [p for rule in policy.rules if rule.id in windowed for p in rule.tools]
        plain = not any(ch in p for p in patterns for ch in "*?[")
        self.tools: set[str] | None = set(patterns) if plain else None
        self._memo: dict[Any, tuple[tuple[WindowUse, bool, int, float], ...]] = {}

    def add(self, record: dict[str, Any], name: str, age_ns: int) -> None:
        """Count one allowed decision in each window the engine lists for it that it still falls in."""
        args, tool, agent = record.get("args"), record.get("tool"), record.get("agent")
        if not isinstance(args, dict) or not isinstance(tool, str):
            return
        agent = agent if isinstance(agent, str) else name
        try:
            key: Any = (tool, agent, orjson.dumps([[n in args, args.get(n)] for n in self.names]))
        except TypeError:
            key = None
        found = self._memo.get(key) if key is not None else None
        if found is None:
            found = tuple(self._windows(agent, tool, args))
            if key is not None:
                self._memo[key] = found
        for window, calls, per_ns, amount in found:
            if age_ns <= per_ns:
                window.used += 1 if calls else amount

    def _windows(self, agent: str, tool: str, args: dict[str, Any]) -> Any:
        for check in self.engine.evaluate(agent, tool, args).windows:
            calls = check.max_calls is not None
            window = self.by_key.get((check.rule_id, None if calls else check.scope.rpartition("\x1fsum:")[2]))
            if window is not None:
                yield window, calls, check.per_ns, check.amount


async def quarantined(state: AppState, org_id: str, agent_id: str) -> int:
    """How many of the agent's records were refused and wait in the quarantine (read through its agent index)."""
    async with state.db.read() as conn:
        count = await conn.execute(
            select(func.count()).where(Quarantine.agent_id == agent_id, Quarantine.org_id == org_id)
        )
        return int(count.scalar_one())


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
