"""People and one's own account, through the API's user management (`/v1/users`, `/v1/auth/...`).

The API's rules hold as they are: a viewer reads only (`PageWriter`, as the API's `Writer`), only an owner adds,
changes or removes an owner, an organisation keeps an owner; everyone changes their own password and sessions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hashed_backend.api.routes import auth as auth_api
from hashed_backend.api.routes import users as users_api
from hashed_backend.dashboard._web import PageCaller, PageWriter, form, problem, render
from hashed_backend.deps import State
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import PasswordIn, RoleIn, UserIn

router = APIRouter(include_in_schema=False)
UserId = Annotated[str, Path(max_length=40)]


def _message(exc: ApiError | ValidationError) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    return problem(exc)


async def _people(request: Request, caller: PageCaller, state: State, **extra: Any) -> Response:
    status = extra.pop("status", 200)
    items = await users_api.list_users(caller, state)
    context = {"me": caller, "page": "people", "items": items, "error": None, "done": None, **extra}
    return render(request, state, "people.html", context, status=status)


@router.get("/people")
async def people(request: Request, caller: PageCaller, state: State) -> Response:
    """Everyone in the organisation with their role; writers also get the add, role and remove forms."""
    return await _people(request, caller, state)


@router.post("/people")
async def add_person(request: Request, caller: PageWriter, state: State) -> Response:
    """Add a person with a first password (they change it under Account); no e-mail is sent."""
    fields = await form(request)
    try:
        body = UserIn.model_validate(
            {
                "email": fields.get("email", "").strip(),
                "password": fields.get("password", ""),
                "role": fields.get("role"),
            }
        )
        added = await users_api.create_user(body, caller, state)
    except (ApiError, ValidationError) as exc:
        return await _people(request, caller, state, error=_message(exc), status=422)
    return await _people(request, caller, state, done=f"added {added.email} as {added.role}")


@router.post("/people/{user_id}/role")
async def change_role(request: Request, caller: PageWriter, state: State, user_id: UserId) -> Response:
    """Give a person another role (the API keeps an owner and keeps owners to owners)."""
    fields = await form(request)
    try:
        changed = await users_api.change_role(
            user_id, RoleIn.model_validate({"role": fields.get("role")}), caller, state
        )
    except (ApiError, ValidationError) as exc:
        return await _people(request, caller, state, error=_message(exc), status=409)
    return await _people(request, caller, state, done=f"{changed.email} is now {changed.role}")


@router.get("/people/{user_id}/remove")
async def confirm_remove(request: Request, caller: PageCaller, state: State, user_id: UserId) -> Response:
    """Ask before removing someone: their sessions end at once."""
    person = next((p for p in await users_api.list_users(caller, state) if p.id == user_id), None)
    if person is None:
        context = {"me": caller, "page": "people", "message": f"no person {user_id} in this organisation"}
        return render(request, state, "missing.html", context, status=404)
    return render(request, state, "person_remove.html", {"me": caller, "page": "people", "person": person})


@router.post("/people/{user_id}/remove")
async def remove(request: Request, caller: PageWriter, state: State, user_id: UserId) -> Response:
    """Remove the person through the API."""
    await form(request)
    try:
        await users_api.remove_user(user_id, caller, state)
    except ApiError as exc:
        return await _people(request, caller, state, error=exc.message, status=exc.status)
    return RedirectResponse("/login" if user_id == caller.id else "/people", status_code=303)


async def _account(request: Request, caller: PageCaller, state: State, **extra: Any) -> Response:
    status = extra.pop("status", 200)
    me = await auth_api.me(caller, state)
    sessions = await auth_api.sessions(caller, state)
    context = {"me": caller, "page": "account", "who": me, "sessions": sessions, "error": None, "done": None, **extra}
    return render(request, state, "account.html", context, status=status)


@router.get("/account")
async def account(request: Request, caller: PageCaller, state: State) -> Response:
    """One's own account: role, organisation, password, sessions (every role may change its own)."""
    return await _account(request, caller, state)


@router.post("/account/password")
async def change_password(request: Request, caller: PageCaller, state: State) -> Response:
    """Change one's password; the API ends every other session of this person (this one stays)."""
    fields = await form(request)
    if fields.get("new_password") != fields.get("repeat"):
        return await _account(request, caller, state, error="the new password and its repeat differ", status=422)
    try:
        body = PasswordIn.model_validate(
            {"current_password": fields.get("current_password", ""), "new_password": fields.get("new_password", "")}
        )
        await auth_api.change_password(body, caller, state)
    except (ApiError, ValidationError) as exc:
        return await _account(request, caller, state, error=_message(exc), status=422)
    return await _account(request, caller, state, done="password changed; your other sessions have ended")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(
    request: Request, caller: PageCaller, state: State, session_id: Annotated[str, Path(max_length=40)]
) -> Response:
    """End one of one's own sessions (another browser); ending this one logs out."""
    await form(request)
    try:
        await auth_api.revoke_session(session_id, caller, state)
    except ApiError as exc:
        return await _account(request, caller, state, error=exc.message, status=exc.status)
    return RedirectResponse("/login" if session_id == caller.session_id else "/account", status_code=303)
