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
