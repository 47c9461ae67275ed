"""Zero-code guarding: the `hashed` entry point. Import-cheap: CrewAI (≈ 2.7 s to import) is hooked once imported.

`instrument(hashed)` guards every CrewAI tool call in the process: the hooks and the tool-run wrappers are put in
place right after `crewai` is imported (now, if it already is), never importing it early.
"""

from __future__ import annotations

import re
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING

from hashed.adapters import FrameworkVersionError, when_imported
from hashed.plugins import hookimpl

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["crewai_version", "hashed_adapter_install", "instrument", "uninstrument"]

_FLOOR = (1, 15, 29)  # the first crewai whose tool hooks block, reword and stop on every path (pyproject.toml)


class _Installed:
    """What `instrument` asked for: whether every tool is guarded, and by which `Hashed` (None: the default)."""

    active = False
    hashed: Hashed | None = None


@hookimpl
def hashed_adapter_install(hashed: Hashed) -> None:
    """Guard every CrewAI tool call of this process (called by `hashed.instrument()` and `hashed run`)."""
    instrument(hashed)


def instrument(hashed: Hashed | None = None) -> None:
    """Guard every CrewAI tool call from now on, in every thread; idempotent.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.

    Raises:
        FrameworkVersionError: the installed crewai is older than 1.15.29 (its hooks cannot block, reword and
            stop every call).
    """
    if crewai_version() < _FLOOR:
        raise FrameworkVersionError("crewai", needs="tool hooks that block", hint="pip install -U 'crewai>=1.15.29'")
    _Installed.active, _Installed.hashed = True, hashed
    when_imported("crewai", _activate)


def crewai_version() -> tuple[int, ...]:
    """The installed crewai's version as numbers (the floor when it is not installed: nothing to guard until it is)."""
    try:
        return tuple(int(part) for part in re.findall(r"\d+", metadata.version("crewai"))[:3])
    except metadata.PackageNotFoundError:
        return _FLOOR


def uninstrument() -> None:
    """Stop guarding tool calls, except those of tools made by `guard_tool`."""
    _Installed.active, _Installed.hashed = False, None


def _activate(_: ModuleType) -> None:
    if _Installed.active:
        from hashed_crewai._hooks import install

        install()
