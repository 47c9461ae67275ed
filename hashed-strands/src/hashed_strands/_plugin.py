"""Zero-code guarding: the `hashed` entry point. Import-cheap: Strands is patched only once it is imported.

Strands has no process-wide hook registry, so `instrument()` patches the one place every agent is made:
`strands.agent.agent.Agent.__init__` (and the bidirectional `BidiAgent.__init__`) get a `HashedHookProvider` added
after their own `__init__`, unless the agent already has one. Agents inside graphs, swarms and agents-as-tools are
`Agent`s too. `uninstrument()` turns those providers off; a provider the app added itself keeps guarding.
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hashed.adapters import FrameworkVersionError, when_imported
from hashed.plugins import hookimpl

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["hashed_adapter_install", "instrument", "uninstrument"]

_AGENTS = {  # module -> agent class whose __init__ is patched
    "strands.agent.agent": "Agent",
    "strands.bidi.agent.agent": "BidiAgent",
    "strands.experimental.bidi.agent.agent": "BidiAgent",  # before strands-agents 1.58
}
_SUPPORTED = ((1, 29), (2, 0))  # pyproject's `strands-agents>=1.29,<2`
_WRAPPED = "__hashed_wrapped__"


class Installed:
    """What `instrument` asked for: whether new agents are guarded, and by which `Hashed` (None: the default)."""

    active = False
    hashed: Hashed | None = None


@hookimpl
def hashed_adapter_install(hashed: Hashed) -> None:
    """Guard every Strands agent of this process (called by `hashed.instrument()` and `hashed run`)."""
    instrument(hashed)


def instrument(hashed: Hashed | None = None) -> None:
    """Guard every Strands agent made from now on, and every tool call it makes; idempotent.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.

    Raises:
        ImportError: strands-agents is not installed.
        FrameworkVersionError: the installed strands-agents is outside the supported range.
    """
    version = _version("strands-agents")
    if not _SUPPORTED[0] <= version < _SUPPORTED[1]:
        found = ".".join(map(str, version))
        needs = f"tool-call hooks hashed-strands supports (versions 1.29 to <2; found {found})"
        raise FrameworkVersionError("strands-agents", needs=needs, hint="pip install 'strands-agents>=1.29,<2'")
    Installed.active, Installed.hashed = True, hashed
    for module in _AGENTS:
        when_imported(module, _patch)


def uninstrument() -> None:
    """Stop guarding the agents `instrument` guarded (those with a `HashedHookProvider` of their own keep it)."""
    Installed.active, Installed.hashed = False, None


def _version(dist: str) -> tuple[int, ...]:
    try:
        text = metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise ImportError(f"{dist} is not installed") from None
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _patch(module: ModuleType) -> None:
    """Give each new agent a `HashedHookProvider` that follows `instrument`/`uninstrument`."""
    cls = getattr(module, _AGENTS[module.__name__], None)
    if cls is None or hasattr(cls.__init__, _WRAPPED):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if Installed.active:
            from hashed_strands._hooks import attach

            attach(self, kwargs.get("hooks"))

    setattr(__init__, _WRAPPED, original)
    cls.__init__ = __init__
