"""Zero-code guarding: the `hashed` entry point. Import-cheap: LangChain is patched only once it is imported.

`instrument(hashed)` guards every LangChain tool run in the process, however it is started (`_tools.py`): an
agent's refused tool call answers the model with a `ToolMessage`, a refused direct call raises `PolicyDenied`.
Before langchain 1.3, `create_agent(name=...)` did not reach its tool calls: there, `create_agent` is also wrapped
to give each agent a `HashedMiddleware` that carries the name.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
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
    """What `instrument` asked for: whether every tool run is guarded, and by which `Hashed` (None: the default)."""

    active = False
    hashed: Hashed | None = None


@hookimpl
def hashed_adapter_install(hashed: Hashed) -> None:
    """Guard every LangChain tool run of this process (called by `hashed.instrument()` and `hashed run`)."""
    instrument(hashed)


def instrument(hashed: Hashed | None = None) -> None:
    """Guard every LangChain tool run from now on, in every thread; idempotent.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.
    """
    _Installed.active, _Installed.hashed = True, hashed
    when_imported("langchain_core.tools.base", _activate)
    if _version("langchain") < (1, 3):
        when_imported(_FACTORY, _patch_factory)


def uninstrument() -> None:
    """Stop guarding tool runs outside a `HashedMiddleware` or a `HashedCallbackHandler`."""
    _Installed.active, _Installed.hashed = False, None
    tools = sys.modules.get("hashed_langchain._tools")  # loaded only once LangChain is
    if tools is not None:
        tools.deactivate()
    for module in (sys.modules.get(_FACTORY), sys.modules.get("langchain.agents")):
        original = getattr(getattr(module, "create_agent", None), _WRAPPED, None)
        if module is not None and original is not None:
            module.__dict__["create_agent"] = original


def _activate(_: ModuleType) -> None:
    if _Installed.active:
        from hashed_langchain._tools import activate

        activate(_Installed.hashed)


def _version(dist: str) -> tuple[int, ...]:
    try:
        text = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ()
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _patch_factory(factory: ModuleType) -> None:
    """Give every agent a `HashedMiddleware` naming it (langchain < 1.3 does not tell its tool calls the name)."""
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
