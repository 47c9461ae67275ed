"""How a tool's input becomes the arguments its body receives: the one binder every integration uses.

Policy must see what the tool body will see. A limit on `amount` holds whether `amount` comes by keyword, by
position or from its default; a deny on `database == "prod"` holds when the model leaves `database` out and the
function's default says `prod`; a single string handed to a one-argument tool is that argument, by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ToolSignature"]

_SIMPLE = inspect.Parameter.POSITIONAL_OR_KEYWORD
_EMPTY = inspect.Parameter.empty
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


class _Factory:
    """A default made fresh for each call (a pydantic `default_factory`)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __repr__(self) -> str:
        return f"<default from {getattr(self.make, '__name__', 'a factory')}>"


class ToolSignature:
    """The parameters of a tool, ready to bind a call's input to parameter names, defaults applied.

    Built once per tool (binding is on every call's path): from a function or method, an `inspect.Signature`,
    or a pydantic model class describing the tool's arguments (its field defaults are the tool's defaults).

    Example:
        >>> def run_query(sql: str, database: str = "prod") -> str: ...
        >>> sig = ToolSignature.of(run_query)
        >>> sig.bind(("drop table t",), {})
        {'sql': 'drop table t', 'database': 'prod'}
        >>> sig.bind_input({"sql": "select 1"})
        {'sql': 'select 1', 'database': 'prod'}
        >>> sig.bind_input("select 1")          # a single input is the first parameter, as frameworks pass it
        {'sql': 'select 1', 'database': 'prod'}
    """

    __slots__ = ("defaults", "names", "receiver", "signature", "simple")

    def __init__(self, signature: inspect.Signature, *, receiver: bool | None = None) -> None:
        self.signature = signature
        params = list(signature.parameters.values())
        self.simple = all(p.kind is _SIMPLE and not isinstance(p.default, _Factory) for p in params)
        self.names = tuple(p.name for p in params)
        self.defaults = {p.name: p.default for p in params if p.default is not _EMPTY}
        first_is_receiver = bool(self.names) and self.names[0] in ("self", "cls")
        self.receiver = self.names[0] if (first_is_receiver if receiver is None else receiver) else None

    @classmethod
    def of(cls, target: Any) -> ToolSignature:
        """The signature of a callable, an `inspect.Signature`, or a pydantic model class (its fields).

        Raises:
            TypeError: `target` has no signature Python can read.
        """
        if isinstance(target, ToolSignature):
            return target
        if isinstance(target, inspect.Signature):
            return cls(target)
        fields = getattr(target, "model_fields", None)
        if isinstance(target, type) and isinstance(fields, Mapping):
            return cls(_model_signature(fields), receiver=False)
        try:
            return cls(inspect.signature(target))
        except ValueError as exc:  # a builtin without a readable signature
            raise TypeError(f"cannot read the parameters of {target!r}: {exc}") from None

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments by name, defaults included; TypeError exactly when the call itself would fail."""
        if self.simple and not kwargs and len(args) == len(self.names):  # the common case, on every call's path
            bound = dict(zip(self.names, args, strict=False))
        elif self.simple and len(args) <= len(self.names) and not any(n in kwargs for n in self.names[: len(args)]):
            bound = dict(zip(self.names, args, strict=False))
            bound.update(kwargs)
            for name in self.names[len(args) :]:
                if name not in bound:
                    if name not in self.defaults:
                        self.signature.bind(*args, **kwargs)  # raises the interpreter's own TypeError
                    bound[name] = self.defaults[name]
            if len(bound) != len(self.names):
                self.signature.bind(*args, **kwargs)
        else:
            bound = self._bind_slowly(args, kwargs)
        if self.receiver is not None:
            bound.pop(self.receiver, None)
        return bound

    def _bind_slowly(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        call = self.signature.bind(*args, **kwargs)
        call.apply_defaults()
        bound: dict[str, Any] = {}
        for name, value in call.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is _VAR_KEYWORD:
                bound.update(value)
            elif kind is _VAR_POSITIONAL:
                bound[name] = list(value)
            else:
                bound[name] = value.make() if isinstance(value, _Factory) else value
        return bound

    def bind_input(self, value: Any) -> dict[str, Any]:
        """Bind one framework input: a mapping gives keywords, a model its fields, anything else the first parameter.

        This is what frameworks do with a tool's input (LangChain passes a lone string positionally), so a
        condition on the first parameter holds for `write_file.invoke("/etc/passwd")` too.
        """
        if value is None:
            return self.bind((), {})
        if isinstance(value, Mapping):
            return self.bind((), value)
        fields = getattr(type(value), "model_fields", None)
        if isinstance(fields, Mapping):  # a pydantic model instance: its fields, as the tool would read them
            return self.bind((), {name: getattr(value, name) for name in fields})
        return self.bind((value,), {})


def _model_signature(fields: Mapping[str, Any]) -> inspect.Signature:
    """A keyword signature from pydantic model fields (`FieldInfo`: `is_required`, `default`, `default_factory`)."""
    params = []
    for name, info in fields.items():
        if info.is_required():
            default: Any = _EMPTY
        elif info.default_factory is not None:
            default = _Factory(info.default_factory)
        else:
            default = info.default
        params.append(inspect.Parameter(name, _SIMPLE, default=default))
    # Field order is the order a single input binds to (LangChain maps a lone string to the first field), even
    # where a required field follows one with a default, which a Python signature would not allow.
    return inspect.Signature(params, __validate_parameters__=False)
