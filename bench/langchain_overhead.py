"""What HashedMiddleware adds to each tool call of a real LangChain agent loop, sync and async. Not a test.

    uv run python bench/langchain_overhead.py [--calls 40] [--rounds 25]

One process, one agent graph shape, LangChain's fake chat model (no network). Bare, do-nothing-middleware and
guarded agents run in alternating rounds, with `invoke` and with `ainvoke`. An outermost timing middleware measures
each tool call (everything inside `wrap_tool_call`: the guard, when present, and the tool). The do-nothing row is
LangChain's own cost of one more middleware; its twin has its hook's signature ready, as HashedMiddleware does
(LangSmith's `traceable` around every hook asks for it at each call), and Hashed's own share is measured against
that twin. The headline row (durable, allow rule) runs untimed inside; its
"core timed" twin also times the adapter's calls into the core. Durable variants (the default) append a decision
and an outcome record per call to the process's memory-mapped journal before the call goes on, and a writer
thread commits them; immediate variants commit each to SQLite in the caller (as safe against a killed process,
slower); the background variant only queues them (may lose the last milliseconds on a crash).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from hashed import Hashed, Identity, ToolCall
from hashed_langchain import HashedCallbackHandler, HashedMiddleware
from hashed_langchain._hooks import signature_ready
from hashed_langchain._tools import Scope, scope
from hashed_langchain._translate import arguments, identity, parse, read_outcome

POLICIES = {  # one allow rule; the second also bounds an argument and counts two rolling windows
    "allow rule": "version: 1\ndefault: deny\nrules: [{id: lookups, tools: [lookup], effect: allow}]\n",
    "allow rule + limit + rate window": """
version: 1
default: deny
rules:
  - id: lookups
    tools: [lookup]
    effect: allow
    limits: {n: {max: 100000000, window: {per: 1d, max_sum: 100000000000}}}
    rate: {per: 1h, max_calls: 100000000}
""",
}


@tool
def lookup(key: str, n: int) -> str:
    """Look a key up."""
    return key


class Model(FakeMessagesListChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Model:  # type: ignore[override]
        return self


class Stopwatch(AgentMiddleware):
    """Outermost middleware: wall time of each tool call as the agent loop sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[int] = []

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return handler(request)
        finally:
            self.samples.append(time.perf_counter_ns() - start)

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return await handler(request)
        finally:
            self.samples.append(time.perf_counter_ns() - start)


class DoNothing(AgentMiddleware):
    """A middleware that only passes the call on: what LangChain itself charges for one more middleware."""

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        return handler(request)

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        return await handler(request)


class SignedNothing(DoNothing):
    """The same, with its sync hook's signature ready as HashedMiddleware's is: LangChain's cost for it."""

    @signature_ready
    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        return handler(request)


NOTHING = "do-nothing middleware (LangChain's own cost)"
SIGNED = "do-nothing, signature ready (as HashedMiddleware)"


def model(calls: int) -> Model:
    turns = [
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"key": f"k{i}", "n": i}, "id": f"c{i}"}])
        for i in range(calls)
    ]
    return Model(responses=[*turns, AIMessage("done")])


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


class CoreTimer:
    """Times the adapter's calls into the core (check, record) on one `Hashed`, in the loop itself."""

    def __init__(self, hashed: Hashed) -> None:
        self.samples: list[int] = []
        self._pending = 0
        check, record = hashed.check, hashed.record

        def timed_check(call: ToolCall) -> Any:
            start = time.perf_counter_ns()
            try:
                return check(call)
            finally:
                self._pending = time.perf_counter_ns() - start

        def timed_record(decision: Any, result: Any) -> None:
            start = time.perf_counter_ns()
            try:
                record(decision, result)
            finally:
                self.samples.append(self._pending + time.perf_counter_ns() - start)

        hashed.check, hashed.record = timed_check, timed_record  # type: ignore[method-assign]


WIDTHS = (7, 7, 9, 9, 8, 8)


def adapter_alone(n: int) -> float:
    """µs per call of the adapter's own work around the core: its scope, binding the tool's own parse (which the
    tool then uses: not an extra parse, but timed here), the ids, and reading the result."""
    config = {"metadata": {"lc_agent_name": "bot", "thread_id": "t1", "langgraph_node": "tools"}}
    message = ToolMessage("k", tool_call_id="c1")
    start = time.perf_counter_ns()
    for _ in range(n):
        token = scope.set(Scope(None))
        arguments(lookup, parse(lookup, {"key": "k", "n": 1}, "c1"), coroutine=False)
        identity(config)
        read_outcome(message, 1)
        scope.reset(token)
    return (time.perf_counter_ns() - start) / n / 1000


def core_alone(hashed: Hashed, n: int) -> list[int]:
    """check + record back to back, no LangChain work in between (how hashed-core measures itself)."""
    samples = []
    for i in range(n):
        call = ToolCall("lookup", {"key": f"k{i}", "n": i}, framework="langchain", call_id=f"c{i}")
        start = time.perf_counter_ns()
        decision = hashed.check(call)
        hashed.record(decision, read_outcome("k", time.perf_counter_ns() - start))
        samples.append(time.perf_counter_ns() - start)
    return samples


TIMED = "durable, allow rule, core timed"
VARIANTS = {  # label: (policy, durability)
    "durable, allow rule": ("allow rule", "durable"),
    TIMED: ("allow rule", "durable"),
    "durable, rule + limit + windows": ("allow rule + limit + rate window", "durable"),
    "immediate, allow rule": ("allow rule", "immediate"),
    "immediate, rule + limit + windows": ("allow rule + limit + rate window", "immediate"),
    "background, allow rule (compare)": ("allow rule", "background"),
}
ASYNC = ("durable, allow rule", "immediate, allow rule", "background, allow rule (compare)")  # also with `ainvoke`
SAFE = ("durable, allow rule", "immediate, allow rule")  # the modes that lose nothing when the process is killed


def run_agents(
    instances: dict[str, Hashed], timers: dict[str, CoreTimer], calls: int, rounds: int
) -> dict[str, Stopwatch]:
    """Run every variant's agent `rounds` times (after 3 warm-up runs), alternating; their stopwatches."""
    runs = [
        "bare",
        NOTHING,
        SIGNED,
        *instances,
        "async bare",
        f"async {NOTHING}",
        *(f"async {label}" for label in ASYNC),
    ]
    watches = {run: Stopwatch() for run in runs}
    agents = {}
    for run in runs:
        label = run.removeprefix("async ")
        guard: list[AgentMiddleware] = []
        if label == NOTHING:
            guard = [DoNothing()]
        elif label == SIGNED:
            guard = [SignedNothing()]
        elif label != "bare":
            guard = [HashedMiddleware(instances[label])]
        agents[run] = create_agent(model(calls), [lookup], middleware=[watches[run], *guard])
    loop = asyncio.new_event_loop()
    for round_ in range(rounds + 3):  # alternate variants so that drift hits all alike
        for run, agent in agents.items():
            gc.collect()
            if run.startswith("async "):
                loop.run_until_complete(agent.ainvoke({"messages": [("user", "go")]}))
            else:
                agent.invoke({"messages": [("user", "go")]})
        if round_ == 2:
            for sampled in (*watches.values(), *timers.values()):
                sampled.samples.clear()
    loop.close()
    return watches


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="tool calls per agent run")
    parser.add_argument("--rounds", type=int, default=25, help="agent runs per variant (after 3 warm-up runs)")
    args = parser.parse_args()
    n = args.rounds * args.calls

    with tempfile.TemporaryDirectory() as tmp:
        instances = {
            label: Hashed(Path(tmp) / str(i), identity=Identity.generate(), policy=POLICIES[policy], durability=mode)
            for i, (label, (policy, mode)) in enumerate(VARIANTS.items())
        }
        # Timing check + record adds its own calls: the headline row runs untimed, a twin of it timed.
        timers = {label: CoreTimer(hashed) for label, hashed in instances.items() if label != "durable, allow rule"}
        watches = run_agents(instances, timers, args.calls, args.rounds)
        direct: dict[str, list[int]] = {"bare": [], "callback": []}
        handler = HashedCallbackHandler(instances["durable, allow rule"])
        for i in range(n):
            for name, config in (("bare", {}), ("callback", {"callbacks": [handler]})):
                start = time.perf_counter_ns()
                lookup.invoke({"key": "k", "n": i}, config)
                direct[name].append(time.perf_counter_ns() - start)
        tight = {label: core_alone(instances[label], n) for label in SAFE}
        verified = [hashed.verify() for hashed in instances.values()]
        for hashed in instances.values():
            hashed.close()

    glue = adapter_alone(n * 10)
    bare = watches["bare"].samples
    print(f"Added latency per tool call of a LangChain agent loop, {n} tool calls per variant (µs)")
    print("added = guarded - bare (same process, alternating runs); core = inside hashed.check + hashed.record\n")
    head = f"{'variant':48} {'p50':>7} {'p99':>7} {'added p50':>9} {'added p99':>9} {'core p50':>8} {'core p99':>8}"
    print(head)
    print("-" * len(head))
    print(f"{'bare agent loop (the tool call only)':48} {pct(bare, 0.5):7.1f} {pct(bare, 0.99):7.1f}")
    for label in (NOTHING, SIGNED, *instances):
        guarded = watches[label].samples
        a50, a99 = pct(guarded, 0.5) - pct(bare, 0.5), pct(guarded, 0.99) - pct(bare, 0.99)
        cells = [pct(guarded, 0.5), pct(guarded, 0.99), a50, a99]
        if label in timers:
            cells += [pct(timers[label].samples, 0.5), pct(timers[label].samples, 0.99)]
        row = " ".join(f"{c:{w}.1f}" for c, w in zip(cells, WIDTHS, strict=False))
        print(f"{label if label in (NOTHING, SIGNED) else 'middleware, ' + label:48} {row}")
    abare = watches["async bare"].samples
    print(f"{'async agent loop (ainvoke), bare':48} {pct(abare, 0.5):7.1f} {pct(abare, 0.99):7.1f}")
    for label in (NOTHING, *ASYNC):
        guarded = watches[f"async {label}"].samples
        cells = [pct(guarded, 0.5), pct(guarded, 0.99), pct(guarded, 0.5) - pct(abare, 0.5)]
        cells.append(pct(guarded, 0.99) - pct(abare, 0.99))
        row = " ".join(f"{c:{w}.1f}" for c, w in zip(cells, WIDTHS, strict=False))
        print(f"{'async ' + (label if label == NOTHING else 'middleware, ' + label):48} {row}")
    b, g = direct["bare"], direct["callback"]
    cells = [pct(g, 0.5), pct(g, 0.99), pct(g, 0.5) - pct(b, 0.5), pct(g, 0.99) - pct(b, 0.99)]
    print(f"{'direct tool.invoke, bare':48} {pct(b, 0.5):7.1f} {pct(b, 0.99):7.1f}")
    print(
        f"{'direct tool.invoke, HashedCallbackHandler':48} "
        + " ".join(f"{c:{w}.1f}" for c, w in zip(cells, WIDTHS, strict=False))
    )
    print(f"{'adapter code alone (scope, parse+bind, ids, outcome)':48} {glue:7.1f}")
    for label, samples in tight.items():
        print(f"{'core check+record, tight loop, ' + label:48} {pct(samples, 0.5):7.1f} {pct(samples, 0.99):7.1f}")
    print(f"\nledgers verified: {all(r.ok for r in verified)} ({sum(r.count for r in verified)} records)")
    for run, base in (("durable, allow rule", bare), ("async durable, allow rule", abare)):
        added = pct(watches[run].samples, 0.5) - pct(base, 0.5)
        verdict = "met" if added <= 100 else "MISSED"
        nothing = f"async {NOTHING}" if run.startswith("async ") else SIGNED
        charge = pct(watches[nothing].samples, 0.5) - pct(base, 0.5)
        own = added - charge
        share = 100 * added / pct(base, 0.5)
        print(
            f"target, added p50 <= 100 µs ({run}): {verdict} ({added:.1f} µs, {share:.0f} % of the bare loop's p50; "
            f"LangChain's own charge for the middleware {charge:.1f} µs, Hashed's own share {own:.1f} µs)"
        )


if __name__ == "__main__":
    main()
