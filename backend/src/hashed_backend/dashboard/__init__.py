"""The dashboard: server-rendered pages at `/`, vendored assets at `/static`, offline `/docs` and `/redoc`.

`install(app)` is all `create_app` calls; docs/dashboard.md says why pages are rendered on the server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from hashed_backend.dashboard import docs, routes_agents, routes_auth, routes_pages, routes_people, routes_policies
from hashed_backend.dashboard._web import LoginRequired

__all__ = ["install"]


async def _to_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


def install(app: FastAPI) -> None:
    """Add the dashboard's routes, its static files and the offline API docs to `app`."""
    docs.drop_default_docs(app)
    app.include_router(docs.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_pages.router)
    app.include_router(routes_policies.router)
    app.include_router(routes_agents.router)
    app.include_router(routes_people.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="dashboard-static")
    app.add_exception_handler(LoginRequired, _to_login)
