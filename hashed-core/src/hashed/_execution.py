"""The one guarded-execution path: bind the arguments, decide, run the tool body once, record what happened.

`@guard` and every framework adapter go through here, so a tool body runs only after a recorded decision that
allowed exactly the arguments it receives, and runs at most once per decision. Adapters whose framework splits a
tool call into a "before" and an "after" event use the two halves, `begin` and `Execution.finish`.

Example:
    >>> from hashed.testing import make_hashed
    >>> import tempfile, pathlib
    >>> hashed = make_hashed(pathlib.Path(tempfile.mkdtemp()) / ".hashed",
    ...     policy="rules: [{id: r, tools: [run_query], effect: deny, when: {database: {eq: prod}}}]")
    >>> def run_query(sql: str, database: str = "prod") -> str:
    ...     return "ran"
    >>> execute(hashed, "run_query", run_query, signature=ToolSignature.of(run_query), args=("drop table t",))
    'run_query denied by policy (rule r): rule r forbids run_query'
    >>> hashed.close()
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from hashed._signature import ToolSignature
from hashed.types import Decision, Outcome, Refusal, ToolCall, new_outcome, new_tool_call

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    from hashed._core import Hashed

    class Binding(TypedDict, total=False):
        """What `tool_call` takes besides the tool's name (see there)."""

        signature: ToolSignature | None
        args: tuple[Any, ...]
        kwargs: Mapping[str, Any] | None
        input: Any
        arguments: Callable[[], Mapping[str, Any]] | None
        framework: str
        agent: str | None
        run_id: object
        call_id: object
        parent_id: object


__all__ = ["NO_INPUT", "Execution", "abegin", "aexecute", "begin", "execute"]

T = TypeVar("T")
NO_INPUT: Any = object()  # `input=` not given (None is a valid single input: "no arguments")
Refuse = Callable[[Decision, ToolCall], Any]
ReadOutcome = Callable[[Any, int], Outcome]


class Execution:
    """One guarded tool execution: its `ToolCall`, its `Decision`, and its outcome, recorded exactly once.

    Attributes:
        call: the call as decided (arguments bound by name, defaults applied).
        decision: what the core decided; `allowed` says whether the body may run.
    """

    __slots__ = ("_done", "_hashed", "_started", "call", "decision")

    def __init__(self, hashed: Hashed, call: ToolCall, decision: Decision) -> None:
        self._hashed = hashed
        self.call = call
        self.decision = decision
        self._started = 0
        self._done = False

    @property
    def allowed(self) -> bool:
        """Whether the tool body may run now."""
        return self.decision.allowed

    def refuse(self, refuse: Refuse | None = None, *, strict: bool | None = None) -> Any:
        """What the caller gets instead of the result: `refuse(decision, call)`, else a `Refusal`.

        Raises:
            PolicyDenied: in strict mode (the argument, else the settings).
        """
        self._hashed.raise_if_strict(self.decision, self.call, strict=strict)
        return Refusal.of(self.decision) if refuse is None else refuse(self.decision, self.call)

    def start(self) -> None:
        """Mark the moment the body starts (the outcome's duration counts from here)."""
        self._started = time.perf_counter_ns()

    def finish(self, result: Any = None, error: BaseException | None = None, *, outcome: Outcome | None = None) -> None:
        """Record the outcome of the body: its result, the exception it raised, or a ready `Outcome`. Once only."""
        if self._done:
            return
        self._done = True
        if outcome is None:
            outcome = new_outcome(result, error, time.perf_counter_ns() - self._started if self._started else 0)
        self._hashed.record(self.decision, outcome)

    def run(
        self,
        body: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        refuse: Refuse | None = None,
        outcome: ReadOutcome | None = None,
        strict: bool | None = None,
    ) -> Any:
        """Run `body(*args, **kwargs)` once if allowed and record its outcome; else return the refusal.

        `outcome(result, duration_ns)` reads a framework's result as an `Outcome` (a result that reports an error).
        """
        if not self.decision.allowed:
            return self.refuse(refuse, strict=strict)
        self._started = time.perf_counter_ns()
        try:
            result = body(*args, **(kwargs or {}))
        except BaseException as exc:
            self.finish(error=exc)
            raise
        self._finish_with(result, outcome)
        return result

    async def arun(
        self,
        body: Callable[..., Awaitable[T]],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        refuse: Refuse | None = None,
        outcome: ReadOutcome | None = None,
        strict: bool | None = None,
    ) -> Any:
        """`run` for a coroutine function."""
        if not self.decision.allowed:
            return self.refuse(refuse, strict=strict)
        self.start()
        try:
            result = await body(*args, **(kwargs or {}))
        except BaseException as exc:
            self.finish(error=exc)
            raise
        self._finish_with(result, outcome)
        return result

    def _finish_with(self, result: Any, outcome: ReadOutcome | None) -> None:
        """`finish` for a body that returned (its result read by `outcome` if given), in one call: the hot path."""
        if self._done:
            return
        self._done = True
        duration = time.perf_counter_ns() - self._started
        done = new_outcome(result, None, duration) if outcome is None else outcome(result, duration)
        self._hashed.record(self.decision, done)


def tool_call(
    tool: str,
    *,
    signature: ToolSignature | None = None,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    input: Any = NO_INPUT,
    arguments: Callable[[], Mapping[str, Any]] | None = None,
    framework: str = "python",
    agent: str | None = None,
    run_id: object = None,
    call_id: object = None,
    parent_id: object = None,
) -> ToolCall:
    """The `ToolCall` of one execution, its arguments bound as the body will receive them.

    Give `signature` with `args`/`kwargs` (a Python call) or with `input` (a framework's one input), or
    `arguments`, a function that returns them bound (a framework with its own parser). With none of these,
    `input` is taken as the arguments (a mapping), or as `{"input": value}`.

    Raises:
        TypeError: the arguments do not fit the signature (the call itself would fail the same way).
    """
    if arguments is not None:
        bound: Mapping[str, Any] = arguments()
    elif signature is not None:
        bound = signature.bind(args, kwargs or {}) if input is NO_INPUT else signature.bind_input(input)
    elif input is NO_INPUT:
        bound = dict(kwargs or {})
    else:
        bound = dict(input) if isinstance(input, Mapping) else ({} if input is None else {"input": input})
    return new_tool_call(
        tool,
        bound,
        agent,
        framework,
        None if run_id is None else str(run_id),
        None if call_id is None else str(call_id),
        None if parent_id is None else str(parent_id),
    )


def begin(hashed: Hashed, tool: str, **binding: Unpack[Binding]) -> Execution:
    """Bind and decide one execution (the decision record is committed); see `tool_call` for `binding`.

    Arguments that cannot be bound deny the call, with the reason, and the denial is recorded: a guard never
    lets through what it could not read. (`@guard` raises the function's own TypeError instead.)
    """
    call = _bound_or_refused(hashed, tool, binding)
    if isinstance(call, Execution):
        return call
    return Execution(hashed, call, hashed.check(call))


async def abegin(hashed: Hashed, tool: str, **binding: Unpack[Binding]) -> Execution:
    """`begin` for async code: waiting for an approval never blocks the event loop."""
    call = _bound_or_refused(hashed, tool, binding)
    if isinstance(call, Execution):
        return call
    return Execution(hashed, call, await hashed.acheck(call))


def _bound_or_refused(hashed: Hashed, tool: str, binding: Binding) -> ToolCall | Execution:
    try:
        return tool_call(tool, **binding)
    except Exception as exc:  # noqa: BLE001 - recorded as the reason of a denial; the body never runs
        raw = binding.get("input", NO_INPUT)
        if raw is NO_INPUT:
            raw = {"args": list(binding.get("args", ())), "kwargs": dict(binding.get("kwargs") or {})}
        call = tool_call(
            tool,
            input={"unbound_input": raw},
            framework=binding.get("framework", "python"),
            agent=binding.get("agent"),
            run_id=binding.get("run_id"),
            call_id=binding.get("call_id"),
            parent_id=binding.get("parent_id"),
        )
        reason = f"the arguments could not be read as {tool}'s parameters ({type(exc).__name__}: {exc})"
        return Execution(hashed, call, hashed._record_denial(call, reason))


def execute(
    hashed: Hashed,
    tool: str,
    body: Callable[..., T],
    *,
    refuse: Refuse | None = None,
    outcome: ReadOutcome | None = None,
    strict: bool | None = None,
    **binding: Unpack[Binding],
) -> Any:
    """Bind, decide, run `body` once if allowed, record its outcome; return its result or the refusal.

    With `signature` and `args`/`kwargs`, the body is called with exactly those arguments; otherwise it takes
    none (a framework's own continuation, which runs the tool with the input that was bound).
    """
    call = _bound_or_refused(hashed, tool, binding)  # `begin`, inline: one call and one keyword dict less
    execution = call if isinstance(call, Execution) else Execution(hashed, call, hashed.check(call))
    if binding.get("input", NO_INPUT) is NO_INPUT and binding.get("arguments") is None:
        args, kwargs = binding.get("args", ()), binding.get("kwargs")
    else:
        args, kwargs = (), None
    return execution.run(body, args, kwargs, refuse=refuse, outcome=outcome, strict=strict)


async def aexecute(
    hashed: Hashed,
    tool: str,
    body: Callable[..., Awaitable[T]],
    *,
    refuse: Refuse | None = None,
    outcome: ReadOutcome | None = None,
    strict: bool | None = None,
    **binding: Unpack[Binding],
) -> Any:
    """`execute` for a coroutine function or an async continuation."""
    execution = await abegin(hashed, tool, **binding)
    if binding.get("input", NO_INPUT) is NO_INPUT and binding.get("arguments") is None:
        args, kwargs = binding.get("args", ()), binding.get("kwargs")
    else:
        args, kwargs = (), None
    return await execution.arun(body, args, kwargs, refuse=refuse, outcome=outcome, strict=strict)
