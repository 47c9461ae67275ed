"""Limits on what reaches the application at all: header size and count, and text no database can store.

- `BoundedHttpTools`: uvicorn's httptools protocol with a bound on the bytes of a request line and headers.
  httptools itself accumulates a header of any length (a 256 MiB header once grew the server by 444 MiB);
  this protocol answers 431 and closes the connection as soon as the bound is passed.
- `document_unstorable`: the OpenAPI document says so, for every string a request may send.
- `InputGuard`: 431 for more headers than allowed, 422 for a NUL character (or bytes that are not UTF-8)
  in the path or the query, naming where. PostgreSQL cannot store a NUL, SQLite can: refusing it here gives
  the same answer on both.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hashed_backend.errors import error_response

__all__ = ["HEADER_BYTES_ENV", "BoundedHttpTools", "InputGuard", "document_unstorable", "unstorable_query"]

HEADER_BYTES_ENV = "HASHED_BACKEND_MAX_HEADER_BYTES"  # read by each worker's protocol (settings: max_header_bytes)
_DEFAULT_HEADER_BYTES = 64 * 1024


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head that is over the bound."""


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request line plus headers longer than `HASHED_BACKEND_MAX_HEADER_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit = int(os.environ.get(HEADER_BYTES_ENV) or _DEFAULT_HEADER_BYTES)
        self._in_head = True
        self._head_bytes = 0
        self._heads_done = 0
        self._refused = False

    def on_message_begin(self) -> None:
        """A new request: its head starts."""
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        """The head is complete: refuse it if it is over the bound (it may have come in one read), else go on."""
        self._in_head = False
        self._heads_done += 1
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > self._limit:
            self._refuse()
            raise _HeadTooLarge  # stops the parser; uvicorn's own 400 answer is skipped (`send_400_response`)
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """Uvicorn's answer to a parser error, unless this protocol has answered 431 already."""
        if not self._refused:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        """The request is complete: the next bytes are the next request's head."""
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def data_received(self, data: bytes) -> None:
        """Feed the parser; while the head is still incomplete, count it and stop at the bound."""
        counting, self._heads_done = self._in_head, 0
        super().data_received(data)
        # A head completed within `data`: the bytes were not all head (a pipelined request's head is counted
        # from its next piece on, so the bound holds within one read).
        if counting and self._in_head and not self._heads_done and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._limit:
                self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        body = b'{"error":{"code":"headers_too_large","message":"request line and headers are limited to %d bytes"}}'
        body %= self._limit
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()


def unstorable_query(query_string: bytes) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL or bytes that are not UTF-8.

    Example:
        >>> unstorable_query(b"a=1&cursor=%00")
        'cursor'
        >>> unstorable_query(b"a=1") is None
        True
    """
    for raw in query_string.split(b"&"):
        name, _, value = raw.partition(b"=")
        decoded = [unquote_to_bytes(part.replace(b"+", b" ")) for part in (name, value)]
        if any(b"\x00" in part for part in decoded) or not all(_utf8(part) for part in decoded):
            pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
            return pairs[0][0].replace("\x00", "\\x00") if pairs else "query"
    return None


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class InputGuard:
    """Refuse, before any route runs: too many headers (431), and NUL in the path or the query (422)."""

    def __init__(self, app: ASGIApp, max_headers: int) -> None:
        self.app = app
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer the refusal."""
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Any:
        if len(scope["headers"]) > self.max_headers:
            message = f"at most {self.max_headers} request headers are accepted"
            return error_response(431, "headers_too_large", message, headers={"connection": "close"})
        path: str = scope["path"]
        if "\x00" in path or not _encodable(path):
            return _unstorable("path")
        where = unstorable_query(scope.get("query_string", b""))
        if where is not None:
            return _unstorable(f"query.{where}")
        return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(field: str) -> Any:
    message = f"{field}: must not contain the NUL character (%00) or bytes that are not UTF-8"
    details = [{"field": field, "message": "NUL character or invalid UTF-8", "type": "unstorable_text"}]
    return error_response(422, "invalid_request", message, details)


_STORABLE = "^[^\\u0000\\ud800-\\udfff]*$"


def document_unstorable(document: dict[str, Any]) -> dict[str, Any]:
    r"""Mark, in an OpenAPI document, every string a request may send as refusing NUL and lone surrogates.

    Path and query parameters and the properties of request bodies without a pattern of their own get one
    that excludes them (a `not` would be clearer, but test generators cannot combine it with other keywords);
    the server answers such text with 422 (`InputGuard`, `Strict`). Ledger records (`records`) are not
    marked: ingest stores or quarantines what they hold.

    Example:
        >>> doc = {"paths": {"/x": {"get": {"parameters": [{"in": "query", "schema": {"type": "string"}}]}}}}
        >>> document_unstorable(doc)["paths"]["/x"]["get"]["parameters"][0]["schema"]["pattern"]
        '^[^\\u0000\\ud800-\\udfff]*$'
    """
    schemas = document.get("components", {}).get("schemas", {})
    bodies: set[str] = set()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("path", "query"):
                    _mark(parameter.get("schema", {}))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                ref = content.get("schema", {}).get("$ref", "")
                bodies.add(ref.rpartition("/")[2])
    for name in bodies & set(schemas):
        for field, prop in schemas[name].get("properties", {}).items():
            if field != "records":
                _mark(prop)
    return document


def _mark(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = _STORABLE
    for option in schema.get("anyOf", []):
        _mark(option)
