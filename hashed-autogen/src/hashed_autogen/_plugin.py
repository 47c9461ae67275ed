"""Zero-code guarding: the `hashed` entry point. Import-cheap: AutoGen is patched only once it is imported.

`instrument(hashed)` guards the tool calls of every `AssistantAgent` in the process, alone or in a team
(`_hooks.py`): a refused call answers the model with an error result, and the run goes on.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from hashed.adapters import when_imported
from hashed.plugins import hookimpl

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["Installed", "hashed_adapter_install", "instrument", "uninstrument"]


class Installed:
    """What `instrument` asked for: whether agents' tool calls are guarded, and by which `Hashed` (None: default)."""

    active = False
    hashed: Hashed | None = None


@hookimpl
def hashed_adapter_install(hashed: Hashed) -> None:
    """Guard every AutoGen agent's tool calls in this process (called by `hashed.instrument()` and `hashed run`)."""
    instrument(hashed)


def instrument(hashed: Hashed | None = None) -> None:
    """Guard the tool calls of every `AssistantAgent` from now on; idempotent.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.

    Raises:
        FrameworkVersionError: AutoGen is already imported and is not a release this patch knows (if it is imported
            later, that import raises it instead: agents never run unguarded).
    """
    Installed.active, Installed.hashed = True, hashed
    when_imported("autogen_agentchat.agents", _patch)


def uninstrument() -> None:
    """Stop guarding agents' tool calls (tools wrapped by `guard_tools` or `HashedWorkbench` stay guarded)."""
    Installed.active, Installed.hashed = False, None


def _patch(_: ModuleType) -> None:
    if Installed.active:
        from hashed_autogen._hooks import install

        install()
