"""Tool classes that override the framework's own method for running a tool, and so would run past the guard.

An adapter that decides where a framework's tool base class runs a tool (`BaseTool.run`) is bypassed by a user's
tool class that defines its own `run` and calls its body itself (to log, to retry, to skip the framework's parse).
`Overrides` wraps the method such a class defines, when the class is made or when the adapter is put in place, with
the adapter's own wrapper, and tells a run that is part of one already decided from a new run: the `super().run()`
an override goes on to, or its `run` called from its own `arun`, is the same run and must not be decided twice; the
same method of the same tool called again inside (a tool that calls itself) is a new run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import FunctionType
from typing import Any

__all__ = ["Overrides"]

Wrap = Callable[[Callable[..., Any], type], Callable[..., Any]]


class Overrides:
    """The overriding `run`-like methods of `base`'s subclasses, wrapped by the adapter's `wrap[name](method, cls)`.

    Example:
        overrides = Overrides(BaseTool, {"run": guarded_run, "arun": guarded_arun})
        overrides.install()   # every subclass made so far, and each one made from now on

        def guarded_run(run, owner):
            def wrapper(self, *args, **kwargs):
                if overrides.inside.get() is not None and overrides.within(self, owner, "run"):
                    return run(self, *args, **kwargs)  # part of a run already decided
                token = overrides.enter(self, owner, "run")
                try:
                    return execute(...)
                finally:
                    overrides.inside.reset(token)
            return overrides.made(wrapper)
    """

    def __init__(self, base: type, wrap: Mapping[str, Wrap], name: str) -> None:
        self.base = base
        self.wrap = dict(wrap)
        # The tool whose overriding method runs under a decision: (tool, the override's class, the method's name)
        self.inside: ContextVar[tuple[object, type, str] | None] = ContextVar(f"{name}_inside", default=None)
        self._made: set[Callable[..., Any]] = set()
        self._installed = False

    def made(self, wrapper: Callable[..., Any]) -> Callable[..., Any]:
        """Note `wrapper` as one of the adapter's (a method already wrapped is never wrapped again); returns it."""
        self._made.add(wrapper)
        return wrapper

    def within(self, tool: object, owner: type, name: str) -> bool:
        """Whether this run of `tool` by `owner.name` is part of a run an override of its class already decided."""
        inside = self.inside.get()
        if inside is None or inside[0] is not tool:
            return False
        return (inside[1] is not owner and issubclass(inside[1], owner)) or (inside[1] is owner and inside[2] != name)

    def enter(self, tool: object, owner: type, name: str) -> Token[tuple[object, type, str] | None]:
        """Mark the decided run of `tool` by `owner.name`; give the token back to `inside.reset` when it ends."""
        return self.inside.set((tool, owner, name))

    def install(self) -> None:
        """Wrap the overriding methods of every subclass of `base` made so far, and of each made from now on.

        `base` is a pydantic model class (LangChain's and CrewAI's `BaseTool` are): a class made later is wrapped
        from its `__pydantic_init_subclass__`, which pydantic calls once the class is complete.
        """
        if self._installed:
            return
        self._installed = True
        for cls in _subclasses(self.base):
            self.wrap_class(cls)
        base, original, wrap_class = self.base, self.base.__dict__.get("__pydantic_init_subclass__"), self.wrap_class

        def init_subclass(cls: type, /, **kwargs: Any) -> None:
            if original is not None:
                original.__func__(cls, **kwargs)
            else:
                super(base, cls).__pydantic_init_subclass__(**kwargs)  # type: ignore[arg-type]
            wrap_class(cls)

        base.__pydantic_init_subclass__ = classmethod(init_subclass)  # type: ignore[attr-defined]

    def wrap_class(self, cls: type) -> None:
        """Wrap each method of `wrap` that `cls` defines itself (not inherited), unless it is already wrapped.

        Only a plain function is: a `staticmethod` or another descriptor is not called with the tool as `self`.
        """
        for name, wrap in self.wrap.items():
            own = cls.__dict__.get(name)
            if isinstance(own, FunctionType) and own not in self._made:
                setattr(cls, name, self.made(wrap(own, cls)))


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
