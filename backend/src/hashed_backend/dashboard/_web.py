"""What every dashboard page shares: templates, the logged-in person, CSRF tokens and the pages' CSP.

CSRF: a random token lives in the `hashed_csrf` cookie (HttpOnly, SameSite=Strict) and in a hidden field of every
form (or the `X-CSRF-Token` header htmx sends); a write whose two copies differ is refused. The session cookie is
SameSite=Lax and `authenticate` also refuses a cookie write from a foreign `Origin`, so a forged form fails twice.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.responses import HTMLResponse, Response

from hashed_backend.auth import SESSION_COOKIE, Caller, authenticate
from hashed_backend.deps import AppState, State
from hashed_backend.errors import ApiError

__all__ = ["CSRF_COOKIE", "LoginRequired", "PageCaller", "PageWriter", "form", "problem", "render"]

CSRF_COOKIE = "hashed_csrf"
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")

# Pages load only their own origin's scripts and styles (vendored under /static): no inline script, no CDN.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the log-in form."""


async def _page_caller(request: Request, state: State) -> Caller:
    """The logged-in person; pages never accept API keys (a browser has none)."""
    if not request.cookies.get(SESSION_COOKIE):
        raise LoginRequired
    try:
        caller = await authenticate(request, state, signed=False, registered=False, agents=False)
    except ApiError as exc:
        if exc.status == 401:
            raise LoginRequired from exc
        raise
    if caller.kind != "user":
        raise LoginRequired
    return caller


PageCaller = Annotated[Caller, Depends(_page_caller)]


async def _page_writer(caller: PageCaller) -> Caller:
    """The logged-in person, if they may change things: a viewer reads only, in the dashboard as in the API."""
    if caller.role == "viewer":
        raise ApiError(403, "viewer_read_only", "a viewer can read but not change anything; ask an admin or owner")
    return caller


PageWriter = Annotated[Caller, Depends(_page_writer)]


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first use; `render` sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
    request.state.csrf = token
    return str(token)


async def form(request: Request) -> dict[str, str]:
    """The submitted form fields (URL-encoded), after checking its CSRF token against the cookie.

    Raises:
        ApiError: 403 `csrf_refused` when the token is missing or differs (reload the page and submit again).
    """
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
    sent = fields.pop("csrf", None) or request.headers.get("x-csrf-token", "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise ApiError(403, "csrf_refused", "the form's security token is missing or stale: reload the page")
    return fields


def render(request: Request, state: AppState, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A template as a page with the dashboard's CSP and the CSRF cookie."""
    token = csrf_token(request)
    response = templates.TemplateResponse(
        request, name, {"csrf": token, "signup": state.settings.allow_signup, **context}, status_code=status
    )
    protect(response, request, state, token)
    return response


def protect(response: Response, request: Request, state: AppState, token: str | None = None) -> None:
    """Set the page CSP and (re)issue the CSRF cookie on `response`."""
    response.headers["content-security-policy"] = PAGE_CSP
    token = token or csrf_token(request)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure(request, state), path="/"
        )


def secure(request: Request, state: AppState) -> bool:
    """Whether cookies get `Secure`: configured so, or this request came over HTTPS (directly or via a proxy)."""
    return state.settings.cookie_secure or request.url.scheme == "https"


def problem(exc: ValidationError) -> str:
    """The first invalid field of a form, in words a person can act on."""
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'form'}: {first['msg']}"
