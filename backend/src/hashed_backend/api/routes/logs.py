"""Logs: verified ingest, search with keyset pagination, JSONL export, quarantine, live feed (SSE)."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import func, or_, select
from starlette.responses import Response, StreamingResponse

from hashed_backend.credentials import iso
from hashed_backend.db.models import Agent, Quarantine, Record
from hashed_backend.deps import Admin, Shipper, State
from hashed_backend.errors import ApiError
from hashed_backend.jsontext import parse_escaped
from hashed_backend.schemas.logs import BatchIn, BatchOut, LogPage, QuarantinePage
from hashed_backend.services.ingest import ingest

router = APIRouter(prefix="/v1/logs", tags=["logs"])
_HEARTBEAT_S = 15.0
_INT64 = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
_CURSOR = r"^[0-9]{1,18}$"
Cursor = Annotated[str | None, Query(max_length=18, pattern=_CURSOR, description="`next_cursor` of the previous page.")]


@router.post("/batch", response_model=BatchOut)
async def batch(body: BatchIn, caller: Shipper, state: State) -> Response:
    """Verify and store a batch of the calling agent's records; answers per record, in order.

    Each record is checked with `hashed.ledger.ChainVerifier` from the agent's stored head: signature with
    the registered key, hash, `seq`/`prev` continuity, key rotations; nonces must be unused. A record already
    stored (same seq and hash) is a `duplicate`; every refused record is kept in the quarantine with its code.
    """
    if len(body.records) > state.settings.max_batch_records:
        raise ApiError(413, "batch_too_large", f"at most {state.settings.max_batch_records} records per batch")
    if caller.public_key is None:  # pragma: no cover - `Shipper` callers always carry their key
        raise ApiError(401, "signature_missing", "agent requests must be signed")
    results, (seq, head) = await ingest(
        state.db,
        state.verify_pool,
        state.settings.verify_threads,
        org_id=caller.org_id,
        agent_id=caller.id or None,
        signer=caller.public_key,
        records=body.records,
        head=caller.agent_head,
        backend=state.checkpoint_signer,
    )
    # Written directly: `results` are plain dicts of BatchOut's shape, so validating them again costs time only.
    return Response(
        orjson.dumps({"results": results, "head": {"seq": seq, "hash": head}}), media_type="application/json"
    )


# What `since` and `until` take, stated in the OpenAPI document and checked before parsing, so that the two agree:
# nanoseconds since the epoch (below 9e18: int64), or an ISO 8601 date, optionally with a time (minutes, seconds,
# a fraction) and, with a time, `Z` or an offset. (A day the month lacks, such as 02-30, matches and is refused.)
_YEAR = r"(000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})"
_DATE = rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_CLOCK = r"[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"
TIME_PATTERN = rf"^(\d{{1,18}}|[1-8]\d{{18}}|{_DATE}({_CLOCK})?)$"


def _time(value: str | None, name: str) -> int | None:
    """Nanoseconds from an integer (ns since the epoch) or an ISO 8601 time."""
    if value is None:
        return None
    if value.isascii() and value.isdigit():
        if len(value) > 19 or int(value) > _INT64:
            raise ApiError(422, "invalid_request", f"{name}: nanoseconds must fit in 64 bits")
        return int(value)
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422, "invalid_request", f"{name}: not an ISO 8601 time nor nanoseconds since the epoch"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    try:
        return int(moment.timestamp() * 1_000_000) * 1000
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "invalid_request", f"{name}: time out of range") from None


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError(422, "invalid_request", "cursor: pass the next_cursor of a previous page")
    return int(value)


def _filtered(
    query: Any,
    org_id: str,
    *,
    agent: str | None,
    tool: str | None,
    effect: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    q: str | None,
) -> Any:
    query = query.where(Record.org_id == org_id)
    if agent is not None:
        query = query.where(Record.agent_id == agent)
    if tool is not None:
        query = query.where(Record.tool == tool)
    if effect is not None:
        query = query.where(Record.effect == effect)
    if kind is not None:
        query = query.where(Record.kind == kind)
    start, end = _time(since, "since"), _time(until, "until")
    if start is not None:
        query = query.where(Record.ts >= start)
    if end is not None:
        query = query.where(Record.ts < end)
    if q:
        query = query.where(Record.raw.icontains(q, autoescape=True))
    return query


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "agent": row.name,
        "seq": row.seq,
        "kind": row.kind,
        "ts": row.ts,
        "time": iso(row.ts),
        "tool": row.tool,
        "effect": row.effect,
        "hash": row.hash,
        "record": orjson.loads(row.raw),
    }


_COLUMNS = (
    Record.id,
    Record.agent_id,
    Agent.name,
    Record.seq,
    Record.kind,
    Record.ts,
    Record.tool,
    Record.effect,
    Record.hash,
    Record.raw,
)


@router.get("", response_model=LogPage)
async def search(
    caller: Admin,
    state: State,
    agent: Annotated[str | None, Query(max_length=200, description="Agent id or name.")] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    effect: Literal["allow", "deny", "pending"] | None = None,
    kind: Literal["decision", "outcome", "approval", "key_rotation"] | None = None,
    since: Annotated[str | None, Query(pattern=TIME_PATTERN, description="Record time from (ISO 8601, ns).")] = None,
    until: Annotated[str | None, Query(pattern=TIME_PATTERN, description="Record time before (ISO 8601, ns).")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text anywhere in the record.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> LogPage:
    """Stored records, newest first, filtered; keyset pagination on the ingest id (never OFFSET)."""
    if agent is not None:
        agent = await _agent_id(state, caller.org_id, agent)
    query = select(*_COLUMNS).join(Agent, Agent.id == Record.agent_id)
    query = _filtered(
        query, caller.org_id, agent=agent, tool=tool, effect=effect, kind=kind, since=since, until=until, q=q
    )
    before = _cursor(cursor)
    if before is not None:
        query = query.where(Record.id < before)
    async with state.db.read() as conn:
        rows = (await conn.execute(query.order_by(Record.id.desc()).limit(limit + 1))).all()
    items = [_entry(row) for row in rows[:limit]]
    return LogPage.model_validate(
        {"items": items, "next_cursor": str(rows[limit - 1].id) if len(rows) > limit else None}
    )


async def _agent_id(state: State, org_id: str, agent: str) -> str:
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(Agent.id).where(Agent.org_id == org_id, or_(Agent.id == agent, Agent.name == agent))
            )
        ).first()
    if row is None:
        raise ApiError(404, "agent_not_found", f"no agent {agent} in this organisation")
    return str(row.id)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}, "description": "One record per line."}},
)
async def export(
    caller: Admin,
    state: State,
    agent: Annotated[str, Query(max_length=200, description="Agent id or name.")],
    from_seq: Annotated[int, Query(ge=1, le=2**62)] = 1,
    to_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> StreamingResponse:
    """One agent's chain as JSONL, exactly as ingested: `hashed verify` accepts it."""
    agent_id = await _agent_id(state, caller.org_id, agent)

    async def lines() -> AsyncIterator[bytes]:
        seq = from_seq - 1
        while True:
            async with state.db.read() as conn:
                query = select(Record.seq, Record.raw).where(Record.agent_id == agent_id, Record.seq > seq)
                if to_seq is not None:
                    query = query.where(Record.seq <= to_seq)
                rows = (await conn.execute(query.order_by(Record.seq).limit(2000))).all()
            if not rows:
                return
            yield b"".join(row.raw.encode() + b"\n" for row in rows)
            seq = rows[-1].seq

    filename = f"{agent_id}.jsonl"
    return StreamingResponse(
        lines(), media_type="application/jsonl", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/quarantine", response_model=QuarantinePage)
async def quarantine(
    caller: Admin,
    state: State,
    agent: Annotated[str | None, Query(max_length=200, description="Agent id.")] = None,
    code: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> QuarantinePage:
    """Refused records with their codes and reasons, newest first."""
    query = select(Quarantine).where(Quarantine.org_id == caller.org_id)
    if agent is not None:
        query = query.where(Quarantine.agent_id == agent)
    if code is not None:
        query = query.where(Quarantine.code == code)
    before = _cursor(cursor)
    if before is not None:
        query = query.where(Quarantine.id < before)
    async with state.db.read() as conn:
        rows = (await conn.execute(query.order_by(Quarantine.id.desc()).limit(limit + 1))).all()
    items = [
        {
            "id": r.id,
            "agent_id": r.agent_id,
            "public_key": r.public_key,
            "seq": r.seq,
            "code": r.code,
            "reason": r.reason,
            "received_at": iso(r.received_ns),
            "record": _parse(r.raw),
        }
        for r in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return QuarantinePage.model_validate({"items": items, "next_cursor": next_cursor})


def _parse(raw: str) -> Any:
    return parse_escaped(raw)  # a refused record may hold lone surrogates: shown escaped


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events, one per record."}},
)
async def stream(
    request: Request,
    caller: Admin,
    state: State,
    agent: Annotated[str | None, Query(max_length=200, description="Agent id or name.")] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    effect: Literal["allow", "deny", "pending"] | None = None,
    kind: Literal["decision", "outcome", "approval", "key_rotation"] | None = None,
    after: Cursor = None,
    last_event_id: Annotated[str | None, Header(max_length=18, pattern=_CURSOR)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="Stop after this many events.")] = None,
) -> StreamingResponse:
    """Live feed of new records: server-sent events whose `id:` is the record id.

    It polls the database, so it sees records stored by any replica. It resumes after `Last-Event-ID` or
    `after`; otherwise it starts with what arrives from now on.
    """
    start = _cursor(last_event_id or after)
    if agent is not None:
        agent = await _agent_id(state, caller.org_id, agent)
    if start is None:
        async with state.db.read() as conn:
            start = (
                await conn.execute(select(func.coalesce(func.max(Record.id), 0)).where(Record.org_id == caller.org_id))
            ).scalar_one()
    base = select(*_COLUMNS).join(Agent, Agent.id == Record.agent_id)
    base = _filtered(
        base, caller.org_id, agent=agent, tool=tool, effect=effect, kind=kind, since=None, until=None, q=None
    )
    interval = state.settings.poll_interval_s

    async def events() -> AsyncIterator[bytes]:
        cursor, sent, quiet_since = start, 0, time.monotonic()
        yield b"retry: 2000\n\n"
        while limit is None or sent < limit:
            async with state.db.read() as conn:
                rows = (await conn.execute(base.where(Record.id > cursor).order_by(Record.id).limit(500))).all()
            for row in rows:
                payload = orjson.dumps(_entry(row))
                yield b"id: %d\nevent: record\ndata: %s\n\n" % (row.id, payload)
                cursor, sent = row.id, sent + 1
                if limit is not None and sent >= limit:
                    return
            if rows:
                quiet_since = time.monotonic()
                continue
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since > _HEARTBEAT_S:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(interval)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
