"""Zero-code guarding: the `hashed` entry point. Import-cheap: LangChain is patched only once it is imported.

`instrument(hashed)` wraps `langchain.agents.factory.create_agent` so that every agent gets `HashedMiddleware`
(never twice), and loads the callback hook so that `HASHED_LANGCHAIN=1` guards chains and direct tool use too.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hashed.adapters import when_imported
from hashed.plugins import hookimpl

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["hashed_adapter_install", "instrument", "uninstrument"]

_FACTORY = "langchain.agents.factory"
_WRAPPED = "__hashed_wrapped__"


class _Installed:
    """What `instrument` set up: whether agents are guarded, and with which `Hashed` (None: the default)."""

    active = False
    hashed: Hashed | None = None


@hookimpl
def hashed_adapter_install(hashed: Hashed) -> None:
    """Guard every LangChain agent this process creates (called by `hashed.instrument()` and `hashed run`)."""
    instrument(hashed)


def instrument(hashed: Hashed | None = None) -> None:
    """Add `HashedMiddleware(hashed)` to every `create_agent(...)` from now on; idempotent.

    Called before LangChain is imported (as `hashed run` does), it covers every agent. Called later, it covers
    `create_agent` looked up after the call, not a name a module bound earlier with `from langchain.agents import`.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
    """
    _Installed.active, _Installed.hashed = True, hashed
    when_imported("langchain_core.tracers.context", _load_callback_hook)
    when_imported(_FACTORY, _patch_factory)


def uninstrument() -> None:
    """Stop adding `HashedMiddleware` to new agents (agents already built keep theirs)."""
    _Installed.active, _Installed.hashed = False, None
    for module in (sys.modules.get(_FACTORY), sys.modules.get("langchain.agents")):
        wrapped = getattr(module, "create_agent", None)
        original = getattr(wrapped, _WRAPPED, None)
        if module is not None and original is not None:
            module.__dict__["create_agent"] = original


def _load_callback_hook(_: ModuleType) -> None:
    # Right after LangChain's tracing context loads (possibly half-way through LangChain's own import): the callback
    # module needs nothing more than that context and the callback base class, and registers the env-var hook.
    importlib.import_module("hashed_langchain._callbacks")


def _patch_factory(factory: ModuleType) -> None:
    if not _Installed.active or hasattr(factory.__dict__["create_agent"], _WRAPPED):
        return
    original: Callable[..., Any] = factory.__dict__["create_agent"]

    @functools.wraps(original)
    def create_agent(*args: Any, middleware: Sequence[Any] = (), **kwargs: Any) -> Any:
        if _Installed.active:
            from hashed_langchain._hooks import HashedMiddleware

            if not any(isinstance(m, HashedMiddleware) for m in middleware):  # never twice; the user's one wins
                middleware = [HashedMiddleware(_Installed.hashed, agent=kwargs.get("name")), *middleware]
        return original(*args, middleware=middleware, **kwargs)

    setattr(create_agent, _WRAPPED, original)
    factory.__dict__["create_agent"] = create_agent
    agents = sys.modules.get("langchain.agents")
    if agents is not None and agents.__dict__.get("create_agent") is original:
        agents.__dict__["create_agent"] = create_agent
