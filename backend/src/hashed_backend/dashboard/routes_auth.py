"""Log-in, sign-up and log-out forms; they call the JSON API's own handlers, so sessions are the API's sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from hashed_backend.api.routes import auth as auth_api
from hashed_backend.auth import SESSION_COOKIE
from hashed_backend.dashboard._web import PageCaller, form, problem, protect, render, secure
from hashed_backend.deps import State, _auth_rate_limit
from hashed_backend.errors import ApiError
from hashed_backend.schemas.auth import LoginIn, SignupIn, SwitchIn

router = APIRouter(include_in_schema=False)


def _logged_in(request: Request, state: State, response: Response) -> Response:
    """Add `Secure` to the API's session cookie when this request came over HTTPS (the API sets it by config only)."""
    if secure(request, state):
        response.raw_headers[:] = [
            (name, value + b"; Secure")
            if name == b"set-cookie" and value.startswith(SESSION_COOKIE.encode()) and b"Secure" not in value
            else (name, value)
            for name, value in response.raw_headers
        ]
    protect(response, request, state)
    return response


@router.get("/login")
async def login_page(request: Request, state: State) -> Response:
    """The log-in form."""
    return render(request, state, "login.html", {"error": None, "email": ""})


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    """Check the password through the API's log-in; on success go to the overview."""
    fields = await form(request)
    email = fields.get("email", "")
    try:
        await _auth_rate_limit(request, state)
        body = LoginIn(email=email, password=fields.get("password", ""))
        response = RedirectResponse("/", status_code=303)
        await auth_api.login(body, state, response)
    except ValidationError as exc:
        return render(request, state, "login.html", {"error": problem(exc), "email": email}, status=422)
    except ApiError as exc:
        return render(request, state, "login.html", {"error": exc.message, "email": email}, status=exc.status)
    return _logged_in(request, state, response)


@router.get("/signup")
async def signup_page(request: Request, state: State) -> Response:
    """The sign-up form (a new organisation and its owner), when the backend allows sign-up."""
    return render(request, state, "signup.html", {"error": None, "email": "", "org_name": ""})


@router.post("/signup")
async def signup(request: Request, state: State) -> Response:
    """Create the organisation through the API's sign-up; the new owner is logged in."""
    fields = await form(request)
    email, org_name = fields.get("email", ""), fields.get("org_name", "")
    context = {"email": email, "org_name": org_name}
    try:
        await _auth_rate_limit(request, state)
        body = SignupIn(email=email, password=fields.get("password", ""), org_name=org_name)
        response = RedirectResponse("/", status_code=303)
        await auth_api.signup(body, state, response)
    except ValidationError as exc:
        return render(request, state, "signup.html", {"error": problem(exc), **context}, status=422)
    except ApiError as exc:
        return render(request, state, "signup.html", {"error": exc.message, **context}, status=exc.status)
    return _logged_in(request, state, response)


@router.post("/logout")
async def logout(request: Request, state: State) -> Response:
    """End the session (the API's log-out revokes its row) and go back to the log-in form."""
    await form(request)
    await auth_api.logout(request, state)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/account/switch")
async def switch(request: Request, caller: PageCaller, state: State) -> Response:
    """Move this log-in to another of the person's organisations (one its password matched) and show its overview."""
    fields = await form(request)
    try:
        body = SwitchIn(org_id=fields.get("org_id", ""))
        response = RedirectResponse("/", status_code=303)
        await auth_api.switch(body, caller, state, response)
    except (ValidationError, ApiError):
        return RedirectResponse("/account", status_code=303)  # the page lists only the organisations it may reach
    return _logged_in(request, state, response)
