"""Overview, logs, approvals and API keys: each page reads and writes through the JSON API's handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response, StreamingResponse

from hashed_backend.api.routes import agents as agents_api
from hashed_backend.api.routes import approvals as approvals_api
from hashed_backend.api.routes import keys as keys_api
from hashed_backend.api.routes import logs as logs_api
from hashed_backend.auth import Caller
from hashed_backend.dashboard import _queries
from hashed_backend.dashboard._web import PageCaller, PageWriter, form, render
from hashed_backend.deps import AppState, State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.approvals import DecisionIn
from hashed_backend.schemas.keys import KeyIn, RotateIn
from hashed_backend.schemas.logs import LogPage

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query(max_length=200)]
Effect = Literal["allow", "deny", "pending", ""]


def _blank(value: str | None) -> str | None:
    """Empty form fields mean "no filter"."""
    return value.strip() or None if value else None


@router.get("/")
async def overview(request: Request, caller: PageCaller, state: State) -> Response:
    """Agents, calls and denials, pending approvals, and each agent's chain status."""
    figures = await _queries.overview(state, caller.org_id)
    return render(request, state, "overview.html", {"me": caller, "page": "overview", "o": figures})


class LogFilters:
    """The log search's filters, from the query string (an empty field means no filter)."""

    def __init__(
        self,
        agent: Text = None,
        tool: Text = None,
        effect: Effect = "",
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        q: Text = None,
    ) -> None:
        self.agent, self.tool, self.effect, self.since, self.until, self.q = agent, tool, effect, since, until, q

    def form(self) -> dict[str, str]:
        """The filters as the search form shows them (and links repeat them)."""
        values = {"agent": self.agent, "tool": self.tool, "effect": self.effect, "since": self.since}
        return {key: value or "" for key, value in {**values, "until": self.until, "q": self.q}.items()}

    async def search(self, caller: Caller, state: AppState, cursor: str | None, limit: int) -> LogPage:
        """One page of the API's own search."""
        return await logs_api.search(
            caller,
            state,
            agent=_blank(self.agent),
            tool=_blank(self.tool),
            effect=self.effect or None,
            since=_blank(self.since),
            until=_blank(self.until),
            q=_blank(self.q),
            cursor=cursor,
            limit=limit,
        )


Filters = Annotated[LogFilters, Depends()]


@router.get("/logs")
async def logs(
    request: Request,
    caller: PageCaller,
    state: State,
    filters: Filters,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Search with filters and keyset pagination, and the live feed of new records (SSE from /v1/logs/stream)."""
    shown = filters.form()
    live = {key: value for key, value in shown.items() if key in ("agent", "tool", "effect") and value}
    stream = "/v1/logs/stream" + (f"?{urlencode(live)}" if live else "")
    context = {"me": caller, "page": "logs", "f": shown, "items": [], "next_cursor": None, "error": None}
    context["stream"] = stream
    try:
        result = await filters.search(caller, state, _blank(cursor), 50)
        context.update(items=result.items, next_cursor=result.next_cursor)
    except ApiError as exc:
        context["error"] = exc.message
    return render(request, state, "logs.html", context)


@router.get("/logs/export")
async def logs_export(caller: PageCaller, state: State, filters: Filters) -> Response:
    """Every record the current filter finds, newest first, as JSONL.

    One search result per line (the agent, where the record sits, and the record exactly as ingested), page
    after page of the same keyset search.
    """
    first = await filters.search(caller, state, None, 500)  # a bad filter: its 422, before any line

    async def lines() -> AsyncIterator[bytes]:
        page = first
        while True:
            yield b"".join(item.model_dump_json().encode() + b"\n" for item in page.items)
            if page.next_cursor is None:
                return
            page = await filters.search(caller, state, page.next_cursor, 500)

    headers = {"Content-Disposition": 'attachment; filename="hashed-logs.jsonl"'}
    return StreamingResponse(lines(), media_type="application/jsonl", headers=headers)


@router.get("/logs/{record_id}")
async def record(
    request: Request, caller: PageCaller, state: State, record_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Response:
    """One record: hash, previous hash, signature, and whether they verify now."""
    detail = await _queries.record_detail(state, caller.org_id, record_id)
    if detail is None:
        context = {"me": caller, "page": "logs", "message": f"no record {record_id} in this organisation"}
        return render(request, state, "missing.html", context, status=404)
    return render(request, state, "record.html", {"me": caller, "page": "logs", "r": detail})


@router.get("/approvals")
async def approvals(
    request: Request,
    caller: PageCaller,
    state: State,
    status: Literal["pending", "approved", "denied", "expired", ""] = "pending",
) -> Response:
    """The queue (pending by default), with each call's arguments and an approve/deny form."""
    page = await approvals_api.list_approvals(caller, state, status=status or None, cursor=None, limit=100)
    context = {"me": caller, "page": "approvals", "items": page.items, "status": status, "error": None}
    return render(request, state, "approvals.html", {**context, **_poll(page.items, "")})


# The pending queue asks every few seconds for requests newer than the newest it shows (htmx polling, no reload).
POLL_S = 2


def _poll(items: list[Any], after: str, *, oob: bool = False) -> dict[str, Any]:
    """The poller's state: the newest request time shown (RFC 3339 UTC strings of one format sort as times)."""
    newest = max([after, *(a.created_at or "" for a in items)])
    return {"newest": newest, "poll_s": POLL_S, "oob": oob}


@router.get("/approvals/new")
async def new_approvals(
    request: Request,
    caller: PageCaller,
    state: State,
    after: Annotated[str, Query(max_length=40)] = "",
    shown: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> Response:
    """What changed in the queue: new requests, and the shown ones that were answered or expired meanwhile.

    New requests (asked after `after`) are cards for the top of the queue; `shown` cards that are no longer
    pending come back with their answer, replacing themselves; the poller comes back with its next `after`.
    """
    page = await approvals_api.list_approvals(caller, state, status="pending", cursor=None, limit=100)
    fresh = [a for a in page.items if (a.created_at or "") > after]
    pending = {a.id for a in page.items}
    answered = []
    for approval_id in [s for s in shown or [] if s not in pending and len(s) <= 40][:20]:
        try:  # rare (someone answered, or it expired): one read each
            answered.append(await approvals_api.get_approval(approval_id, caller, state, wait=0))
        except ApiError:
            continue
    context = {"me": caller, "items": fresh, "answered": answered, **_poll(fresh, after, oob=True)}
    return render(request, state, "_approvals_new.html", context)


@router.post("/approvals/{approval_id}/{verb}")
async def decide(
    request: Request,
    caller: PageWriter,
    state: State,
    approval_id: Annotated[str, Path(max_length=40)],
    verb: Literal["approve", "deny"],
) -> Response:
    """Answer a request with an optional comment (signed by the backend, as through the API)."""
    fields = await form(request)
    try:
        body = DecisionIn(comment=_blank(fields.get("comment")))
        handler = approvals_api.approve if verb == "approve" else approvals_api.deny
        await handler(approval_id, body, caller, state)
    except (ApiError, ValidationError) as exc:
        page = await approvals_api.list_approvals(caller, state, status="pending", cursor=None, limit=100)
        message = exc.message if isinstance(exc, ApiError) else str(exc.errors()[0]["msg"])
        context = {"me": caller, "page": "approvals", "items": page.items, "status": "pending", "error": message}
        return render(request, state, "approvals.html", {**context, **_poll(page.items, "")}, status=409)
    return RedirectResponse("/approvals", status_code=303)


def _time(iso: str) -> datetime:
    """An API time (RFC 3339, `Z`) as a datetime; Python 3.10's `fromisoformat` does not read `Z`."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def _keys_page(
    request: Request, caller: PageCaller, state: State, *, created: object = None, error: str | None = None
) -> Response:
    items = await keys_api.list_keys(caller, state)
    now = datetime.now(timezone.utc)
    days_left = {k.id: round((_time(k.expires_at) - now).total_seconds() / 86400) for k in items if k.expires_at}
    context = {"me": caller, "page": "keys", "items": items, "created": created, "error": error, "left": days_left}
    context["default_days"] = state.settings.key_default_days
    return render(request, state, "keys.html", context, status=422 if error else 200)


@router.get("/keys")
async def keys(request: Request, caller: PageCaller, state: State) -> Response:
    """Every key of the organisation, without secrets."""
    return await _keys_page(request, caller, state)


@router.post("/keys")
async def create_key(request: Request, caller: PageWriter, state: State) -> Response:
    """Create a key; its secret is on this answer's page only (never stored, never shown again)."""
    fields = await form(request)
    try:
        days = _blank(fields.get("expires_in_days"))
        body = KeyIn.model_validate(
            {"kind": fields.get("kind", "agent"), "name": fields.get("name", ""), "expires_in_days": days}
        )
        created = await keys_api.create_key(body, caller, state)
    except ValidationError as exc:
        first = exc.errors()[0]
        return await _keys_page(request, caller, state, error=f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
    response = await _keys_page(request, caller, state, created=created)
    response.headers["cache-control"] = "no-store"  # the secret must not stay in a cache
    return response


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    request: Request, caller: PageWriter, state: State, key_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """Revoke a key at once."""
    await form(request)
    await keys_api.revoke_key(key_id, caller, state)
    return RedirectResponse("/keys", status_code=303)


@router.post("/keys/{key_id}/rotate")
async def rotate_key(
    request: Request, caller: PageWriter, state: State, key_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """A new key of the same kind and name, shown once; the old one keeps working for an hour (the API default)."""
    fields = await form(request)
    try:
        body = RotateIn.model_validate({"expires_in_days": _blank(fields.get("expires_in_days"))})
        rotated = await keys_api.rotate_key(key_id, body, caller, state)
    except (ApiError, ValidationError) as exc:
        message = exc.message if isinstance(exc, ApiError) else f"expires_in_days: {exc.errors()[0]['msg']}"
        return await _keys_page(request, caller, state, error=message)
    response = await _keys_page(request, caller, state, created=rotated.new)
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/agents/{agent_id}/disable")
async def confirm_disable(
    request: Request, caller: PageCaller, state: State, agent_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """Ask before disabling: the agent's requests are refused from then on (its records stay)."""
    agent = await agents_api.get_agent(agent_id, caller, state)
    return render(request, state, "disable.html", {"me": caller, "page": "overview", "agent": agent})


@router.post("/agents/{agent_id}/disable")
async def disable(
    request: Request, caller: PageWriter, state: State, agent_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """Disable the agent through the API."""
    await form(request)
    await agents_api.disable_agent(agent_id, caller, state)
    return RedirectResponse("/", status_code=303)
