"""The policy editor: the organisation's document, validated by the core as you type.

It is saved as a new version through the API, and a "test a call" box asks the core's engine what it would decide.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from hashed.policy import Policy, PolicyEngine, policy_issues
from hashed_backend.api.routes import policies as policies_api
from hashed_backend.dashboard._web import PageCaller, PageWriter, form, render
from hashed_backend.deps import State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.policies import PolicyIn, PolicyTextIn

router = APIRouter(include_in_schema=False)
_STARTER = """version: 1
default: deny
rules:
  - id: read-only
    tools: ["get_*", "search_*"]
    effect: allow
"""


def _text(fields: dict[str, str]) -> str:
    """The editor's text with the browser's CRLF line ends made LF (the stored document is what was typed)."""
    return fields.get("yaml", "").replace("\r\n", "\n")


def _issues(text: str) -> list[dict[str, Any]]:
    """The core validator's issues (line, field, message); empty when the document is valid."""
    result = policy_issues(text, path="policy.yaml")
    if isinstance(result, list):
        return [{"line": i.line, "field": i.field, "message": i.message} for i in result]
    return []


async def _page(
    request: Request,
    caller: PageCaller,
    state: State,
    *,
    text: str | None = None,
    saved: str | None = None,
    **extra: Any,
) -> Response:
    try:
        current = await policies_api.get_policy("org", caller, state)
    except ApiError:
        current = None
    history = await policies_api.versions("org", caller, state, before=None, limit=20)
    if text is None:
        text = current.yaml if current is not None and current.yaml is not None else _STARTER
    context = {
        "me": caller,
        "page": "policies",
        "current": current,
        "history": history,
        "text": text,
        "issues": _issues(text),
        "saved": saved,
        "error": None,
        "test": None,
        **extra,
    }
    return render(request, state, "policies.html", context, status=422 if extra.get("error") else 200)


@router.get("/policies")
async def policies(request: Request, caller: PageCaller, state: State) -> Response:
    """The organisation's current document (or a starter) with its version history."""
    return await _page(request, caller, state)


@router.post("/policies/validate")
async def validate(request: Request, caller: PageCaller, state: State) -> Response:
    """The issues list alone (htmx swaps it in while the person types)."""
    fields = await form(request)
    context = {"issues": _issues(_text(fields))}
    return render(request, state, "_issues.html", context)


@router.post("/policies")
async def save(request: Request, caller: PageWriter, state: State) -> Response:
    """Push the text as a new version through the API (which validates it with the core again)."""
    fields = await form(request)
    text = _text(fields)
    try:
        body = PolicyIn(yaml=text, allow_removals=fields.get("allow_removals") == "on", comment=fields.get("comment"))
        stored = await policies_api.push_policy("org", body, caller, state, Response())
    except ApiError as exc:
        return await _page(request, caller, state, text=text, error=exc.message)
    return await _page(request, caller, state, saved=f"saved as version {stored.version}")


@router.post("/policies/test")
async def test_call(request: Request, caller: PageCaller, state: State) -> Response:
    """What the document in the editor decides for one call (agent, tool, JSON arguments)."""
    fields = await form(request)
    text = _text(fields)
    agent, tool = fields.get("agent", "").strip() or "agent", fields.get("tool", "").strip()
    result: dict[str, Any]
    policy = policy_issues(text, path="policy.yaml")
    try:
        args = orjson.loads(fields.get("args", "") or "{}")
        if not isinstance(args, dict):
            raise TypeError
    except (orjson.JSONDecodeError, TypeError):
        result = {"error": 'arguments: write a JSON object, e.g. {"amount": 10}'}
    else:
        if not isinstance(policy, Policy):
            result = {"error": "fix the policy's errors first"}
        elif not tool:
            result = {"error": "tool: name the tool to test"}
        else:
            verdict = PolicyEngine(policy).evaluate(agent, tool, args)
            result = {
                "effect": verdict.effect,
                "rule": verdict.rule_id,
                "reason": verdict.reason,
                "approval": verdict.approval is not None,
            }
    return render(request, state, "_test_result.html", {"result": result})


@router.post("/policies/diff")
async def diff(request: Request, caller: PageCaller, state: State) -> Response:
    """What saving the editor's text would change against the live version, rule by rule (htmx partial)."""
    fields = await form(request)
    try:
        changes: Any = await policies_api.diff_policy("org", PolicyTextIn(yaml=_text(fields)), caller, state)
        error = None
    except ApiError as exc:
        changes, error = None, exc.message
    return render(request, state, "_diff.html", {"d": changes, "error": error})


@router.post("/policies/restore/{version}")
async def restore(
    request: Request, caller: PageWriter, state: State, version: Annotated[int, Path(ge=1, le=2**31)]
) -> Response:
    """Roll back: save an earlier version's text as the newest version (history is kept)."""
    await form(request)
    old = await policies_api.version("org", version, caller, state)
    if old.yaml is None:
        return await _page(request, caller, state, error=f"version {version} removed the document: nothing to restore")
    body = PolicyIn(yaml=old.yaml, allow_removals=True, comment=f"restored version {version}")
    try:
        stored = await policies_api.push_policy("org", body, caller, state, Response())
    except ApiError as exc:
        return await _page(request, caller, state, error=exc.message)
    return await _page(request, caller, state, saved=f"version {version} restored as version {stored.version}")
