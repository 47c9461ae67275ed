"""Structured logs: one JSON object per line on stderr (uvicorn's own loggers included).

Example:
    >>> import logging
    >>> record = logging.LogRecord("hashed_backend", logging.INFO, "f.py", 1, "served %s", ("x",), None)
    >>> record.created = 0.0
    >>> JsonFormatter().format(record)
    '{"ts":"1970-01-01T00:00:00+00:00","level":"info","logger":"hashed_backend","message":"served x"}'
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import traceback
from types import TracebackType
from typing import Any

import orjson

__all__ = ["JsonFormatter", "log_config"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Time, level, logger, message, any `extra=` fields, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        document: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        """The traceback; for a database error, without any message: drivers quote values in them (issue #15)."""
        exc = ei[1]
        if exc is None or not _from_database(exc):
            return super().formatException(ei)
        frames = "".join(traceback.format_tb(ei[2]))
        return f"Traceback (most recent call last):\n{frames}{_database_summary(exc)}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _from_database(exc: BaseException) -> bool:
    from sqlalchemy.exc import SQLAlchemyError

    return any(isinstance(e, SQLAlchemyError | sqlite3.Error) or _is_psycopg(e) for e in _chain(exc))


def _is_psycopg(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] == "psycopg"


def _database_summary(exc: BaseException) -> str:
    """Exception types, SQLSTATE and the statement (placeholders only): enough to act on, no values."""
    parts = []
    for error in _chain(exc):
        state = getattr(error, "sqlstate", None) or getattr(error, "sqlite_errorname", None)
        parts.append(type(error).__module__ + "." + type(error).__qualname__ + (f" [{state}]" if state else ""))
    statement = next((s for e in _chain(exc) if isinstance(s := getattr(e, "statement", None), str)), None)
    where = f" in statement: {statement[:500]}" if statement else ""
    return "database error (message withheld: it may quote values): " + " <- ".join(parts) + where


def log_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` document for uvicorn and the backend."""
    level = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "hashed_backend": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
