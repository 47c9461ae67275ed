"""An agent's page: its recent calls, the limits of its live policy with each window's use, its keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from hashed_backend.api.routes import agents as agents_api
from hashed_backend.api.routes import logs as logs_api
from hashed_backend.dashboard import _agent
from hashed_backend.dashboard._web import PageCaller, render
from hashed_backend.deps import State
from hashed_backend.errors import ApiError

router = APIRouter(include_in_schema=False)
RECENT = 20


@router.get("/agents/{agent_id}")
async def agent_page(
    request: Request, caller: PageCaller, state: State, agent_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """One agent of the caller's organisation (404 for any other), read through the API's handlers."""
    try:
        agent = await agents_api.get_agent(agent_id, caller, state)
    except ApiError as exc:
        if exc.status != 404:
            raise
        context = {"me": caller, "page": "overview", "message": f"no agent {agent_id} in this organisation"}
        return render(request, state, "missing.html", context, status=404)
    recent = await logs_api.search(
        caller,
        state,
        agent=agent.id,
        tool=None,
        effect=None,
        kind="decision",
        since=None,
        until=None,
        q=None,
        cursor=None,
        limit=RECENT,
    )
    live = await _agent.live_policy(state, caller.org_id, agent.id, agent.name)
    windows = await _agent.window_use(state, agent.id, agent.name, live) if live is not None else []
    context = {
        "me": caller,
        "page": "overview",
        "agent": agent,
        "quarantined": await _agent.quarantined(state, caller.org_id, agent.id),
        "recent": recent.items,
        "live": live,
        "windows": windows,
        "walk": _agent.WALK,
        "keys": await _agent.key_history(state, caller.org_id, agent.id),
    }
    return render(request, state, "agent.html", context)
