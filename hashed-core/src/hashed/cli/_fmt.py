"""Small parsers and formatters the remote commands share: durations, times, coloured states."""

from __future__ import annotations

import datetime
import re
import time

import typer

__all__ = ["duration", "local_time", "since", "state"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_COLOURS = {
    "active": "green",
    "allow": "green",
    "approved": "green",
    "expired": "dim",
    "revoked": "red",
    "deny": "red",
    "denied": "red",
    "disabled": "red",
    "pending": "yellow",
}


def duration(text: str, option: str = "duration") -> float:
    """Seconds in `90`, `90s`, `15m`, `1h`, `2d` or `1w`.

    Example:
        >>> duration("15m"), duration("90")
        (900.0, 90.0)
    """
    match = _DURATION.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration: write e.g. 90, 90s, 15m, 1h, 2d", param_hint=option)
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def since(text: str | None, option: str = "--since") -> str | None:
    """What the backend's `since`/`until` take: ISO 8601 and nanoseconds pass; `15m`, `2d` mean that long ago.

    Example:
        >>> since("2024-01-01T00:00:00Z")
        '2024-01-01T00:00:00Z'
    """
    if text is None:
        return None
    if _DURATION.match(text) and not text.strip().isdigit():
        return str(time.time_ns() - int(duration(text, option) * 1e9))
    return text


def local_time(iso: str | None) -> str:
    """An ISO 8601 time from the backend as local `YYYY-MM-DD HH:MM:SS` (empty for None)."""
    if not iso:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def state(value: str | None) -> str:
    """A status or effect in its colour (rich markup)."""
    if not value:
        return ""
    colour = _COLOURS.get(value)
    return f"[{colour}]{value}[/]" if colour else value
