"""Every error answer has one shape: `{"error": {"code": "...", "message": "...", "details": ...}}`.

`code` is machine-readable and stable (docs/api.md lists them); `message` says what to do next. Handlers
here turn FastAPI's own errors (validation, unknown routes, wrong methods) into that shape too, and any
unexpected exception into a logged 500 `internal_error` that never leaks internals.

Example:
    >>> ApiError(401, "key_expired", "this API key expired; rotate it").code
    'key_expired'
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = ["ApiError", "error_response", "install_error_handlers"]

_log = logging.getLogger("hashed_backend")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


class ApiError(Exception):
    """An error answer: HTTP status, machine-readable code, a message, optional details and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The JSON error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response(
        orjson.dumps({"error": error}, default=str),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _api_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


def _location(loc: Any) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def _validation_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    issues = [
        {"field": _location(error.get("loc", ())), "message": str(error.get("msg", "")), "type": error.get("type")}
        for error in exc.errors()
    ]
    if any(issue["type"] == "json_invalid" for issue in issues):
        return error_response(400, "malformed_json", "the request body is not valid JSON", issues)
    first = issues[0] if issues else {"field": "body", "message": "invalid"}
    return error_response(422, "invalid_request", f"{first['field']}: {first['message']}", issues)


async def _unexpected(request: Request, exc: Exception) -> Response:
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed; the error is logged (nothing was stored)")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
