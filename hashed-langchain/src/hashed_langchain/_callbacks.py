"""`HashedCallbackHandler`: give it to a chain or tool run, and every tool that run starts is guarded.

It is a marker LangChain carries along: handlers passed in a run's config reach every run nested in it, so the
tool-execution hook (`_tools.py`) finds it and decides each tool run there, before the tool parses its input.
It reacts to no event itself: a callback runs too early to see the parsed arguments, and LangChain swallows
some of a callback's errors (`NotImplementedError`), which must never let a refused tool run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.callbacks.base import BaseCallbackHandler

if TYPE_CHECKING:
    from hashed import Hashed

__all__ = ["HashedCallbackHandler"]


class HashedCallbackHandler(BaseCallbackHandler):
    """Guards every tool run of the chain or call it is given to; a refused direct call raises `PolicyDenied`.

    Args:
        hashed: the `Hashed` to ask; default: `hashed.adapters.current()` at each call.

    Example:
        tool.invoke({"path": "/x"}, config={"callbacks": [HashedCallbackHandler()]})
    """

    def __init__(self, hashed: Hashed | None = None) -> None:
        from hashed_langchain._tools import install  # the hook that reads this marker; a no-op once installed

        self.hashed = hashed
        install()
