"""`/docs` (Swagger UI) and `/redoc` served from vendored assets, so they work with no network but the backend's."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
_VENDOR = "/static/vendor"
# Redoc styles itself inline and parses the document in a blob: worker; Swagger UI shows data: images.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{head}</head>
<body>{body}</body></html>"""
    return HTMLResponse(html, headers={"content-security-policy": _DOCS_CSP})


def drop_default_docs(app: FastAPI) -> None:
    """Remove FastAPI's CDN-backed `/docs` and `/redoc` routes (registered when the app was made)."""
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) not in ("/docs", "/redoc")
    ]


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    """Swagger UI over this app's OpenAPI document."""
    return _page(
        "Hashed backend - API",
        f'<link rel="stylesheet" href="{_VENDOR}/swagger-ui/swagger-ui.css">',
        f'<div id="swagger-ui" data-url="{request.app.openapi_url}"></div>'
        f'<script src="{_VENDOR}/swagger-ui/swagger-ui-bundle.js"></script>'
        '<script src="/static/docs.js"></script>',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc over this app's OpenAPI document."""
    return _page(
        "Hashed backend - API reference",
        "",
        f'<redoc spec-url="{request.app.openapi_url}"></redoc>'
        f'<script src="{_VENDOR}/redoc/redoc.standalone.js"></script>',
    )
