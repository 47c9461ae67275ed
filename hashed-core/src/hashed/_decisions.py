"""What a decision and an outcome record say, and how a pending call's approval is resolved.

Runs inside the ledger transaction that records the decision, so the window check, the approval bookkeeping
and the record are one atomic step.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from hashed._args import RecordedArgs, record_args, shown, text
from hashed.ledger._approvals import ApprovalStore
from hashed.ledger._txn import Txn
from hashed.policy import ApprovalSpec, PolicyEngine, Verdict
from hashed.policy._windows import consume_windows, exceeded_window
from hashed.protocol._canonical import JsonNumber
from hashed.types import Decision, Effect, Outcome, ToolCall, new_decision

__all__ = [
    "RECIPES",
    "commit_decision",
    "decision_of",
    "decision_fields",
    "decision_recipe",
    "log_unrecorded",
    "outcome_fields",
    "outcome_recipe",
    "recorded_args",
]

_log = logging.getLogger("hashed")


def commit_decision(
    txn: Txn,
    approvals: ApprovalStore,
    call: ToolCall,
    agent: str,
    verdict: Verdict,
    args: RecordedArgs,
    call_ref: str,
    engine: PolicyEngine,
    now_ns: int,
) -> Decision:
    """Count windows, resolve approvals, append the decision record; return the final `Decision`."""
    effect, reason, rule = verdict.effect, verdict.reason, verdict.rule_id
    approval_id = None
    if effect is not Effect.DENY and verdict.windows:
        over = exceeded_window(verdict.windows, txn, now_ns)
        if over is not None:
            effect, reason, rule = Effect.DENY, over[1], over[0].rule_id
    if effect is Effect.PENDING and not engine.shadow:
        effect, reason, approval_id = _resolve_approval(txn, approvals, call, agent, verdict, args, call_ref)
    if effect is Effect.ALLOW or engine.shadow:
        consume_windows(verdict.windows, txn)
    fields = decision_fields(call, args, call_ref, engine, effect, reason, rule, approval_id)
    txn.append("decision", agent, fields, slow=args.slow)
    return decision_of(call, agent, engine, call_ref, effect, reason, rule, approval_id)


def decision_of(
    call: ToolCall,
    agent: str,
    engine: PolicyEngine,
    call_ref: str,
    effect: Effect,
    reason: str,
    rule: str | None,
    approval_id: str | None = None,
) -> Decision:
    """The `Decision` a caller gets back: the effect, why, and what links it to its records."""
    return new_decision(effect, reason, rule, engine.hash, call_ref, engine.shadow, approval_id, text(call.tool), agent)


def decision_fields(
    call: ToolCall,
    args: RecordedArgs,
    call_ref: str,
    engine: PolicyEngine,
    effect: Effect,
    reason: str,
    rule: str | None,
    approval_id: str | None,
) -> dict[str, Any]:
    """The fields of a decision record (docs/protocol.md §2)."""
    return _decision(_ids(call, call_ref), args, engine.hash, engine.shadow, effect._value_, reason, rule, approval_id)


Ids = tuple[str, str, "str | None", "str | None", "str | None", "str | None"]


def _ids(call: ToolCall, call_ref: str) -> Ids:
    # On the caller's path: ASCII text (nearly always) is taken as it is without calling `text` (a call per field)
    tool, framework, run_id, call_id, parent_id = call.tool, call.framework, call.run_id, call.call_id, call.parent_id
    return (
        call_ref,
        tool if tool.isascii() else text(tool),
        framework if framework.isascii() else text(framework),
        None if run_id is None else run_id if type(run_id) is str and run_id.isascii() else text(str(run_id)),
        None if call_id is None else call_id if type(call_id) is str and call_id.isascii() else text(str(call_id)),
        None
        if parent_id is None
        else parent_id
        if type(parent_id) is str and parent_id.isascii()
        else text(str(parent_id)),
    )


def _decision(
    ids: Ids,
    args: RecordedArgs,
    policy: str,
    shadow: bool,
    effect: str,
    reason: str,
    rule: str | None,
    approval_id: str | None,
) -> dict[str, Any]:
    call_ref, tool, framework, run_id, call_id, parent_id = ids
    return {
        "call": call_ref,
        "tool": tool,
        "framework": framework,
        "run_id": run_id,
        "call_id": call_id,
        "parent_id": parent_id,
        "args": args.stored,
        "args_digest": args.digest,
        "effect": effect,
        "reason": reason,
        "rule": rule,
        "policy": policy,
        "shadow": shadow,
        "approval": approval_id,
    }


def decision_recipe(
    call: ToolCall, paths: Iterable[str], call_ref: str, engine: PolicyEngine, verdict: Verdict
) -> tuple[Any, ...]:
    """What the background writer needs to build a decision record later: plain values only (see `Queued`).

    Only for calls whose arguments are plain scalars, which cannot change before the writer reads them.
    """
    return (
        _ids(call, call_ref),
        call.args,
        tuple(paths),
        engine.hash,
        engine.shadow,
        verdict.effect._value_,  # not `.value`: an enum's property costs a Python call
        verdict.reason,
        verdict.rule_id,
    )


def recorded_args(args: Mapping[str, Any], paths: Iterable[str], tool: str) -> RecordedArgs:
    """`record_args`, or a note that the arguments could not be recorded: the decision stands either way."""
    try:
        return record_args(args, paths)
    except Exception:  # noqa: BLE001 - logged; the record says the arguments were not kept
        _log.exception("hashed: the arguments of %s could not be recorded", tool)
        return record_args({"unrecorded": "the arguments could not be recorded"})


def _decision_from(recipe: tuple[Any, ...]) -> tuple[dict[str, Any], bool]:
    ids, raw, paths, policy, shadow, effect, reason, rule = recipe
    args = recorded_args(raw, paths, ids[1])
    return _decision(ids, args, policy, shadow, effect, reason, rule, None), args.slow


def _resolve_approval(
    txn: Txn, approvals: ApprovalStore, call: ToolCall, agent: str, verdict: Verdict, args: RecordedArgs, call_ref: str
) -> tuple[Effect, str, str | None]:
    spec = verdict.approval or ApprovalSpec()
    request = approvals.open_for(txn, agent, text(call.tool), args.digest)
    if request is None:
        request_id = approvals.create(
            txn,
            call=call_ref,
            agent=agent,
            tool=text(call.tool),
            args=args.stored,
            digest=args.digest,
            rule=verdict.rule_id,
            reason=verdict.reason,
            timeout_s=spec.timeout,
            on_timeout=spec.on_timeout,
        )
        return Effect.PENDING, verdict.reason, request_id
    if request.status == "pending":
        return Effect.PENDING, verdict.reason, request.id
    approvals.consume(txn, request.id)
    signed = (
        None if request.answer is None else {"answer": orjson.loads(request.answer), "signature": request.answer_sig}
    )
    txn.append(
        "approval",
        agent,
        {
            "call": call_ref,
            "approval": request.id,
            "requested_by": request.call,
            "verdict": request.status,
            "by": request.decided_by,
            "comment": request.comment,
            "signed_answer": signed,
        },
    )
    note = f": {request.comment}" if request.comment else ""
    if request.status == "approved":
        return Effect.ALLOW, f"approved by {request.decided_by} ({request.id}){note}", request.id
    if request.status == "denied":
        return Effect.DENY, f"{request.decided_by} denied approval {request.id}{note}", request.id
    timeout = "allowed" if request.on_timeout == "allow" else "denied"
    effect = Effect.ALLOW if request.on_timeout == "allow" else Effect.DENY
    return effect, f"no one answered approval {request.id} in time; {timeout} by the rule's on_timeout", request.id


def _result_digest(result: Any) -> str:
    if isinstance(result, str) or result is None:  # the common case: orjson's bytes are already RFC 8785 here
        try:
            digest: str = _sha256(orjson.dumps({"result": result})).hexdigest()
        except TypeError:  # a lone surrogate, which is not UTF-8: digested as the record would carry it, escaped
            pass
        else:
            return digest
    try:
        return record_args({"result": result}).digest
    except Exception:  # noqa: BLE001 - the tool ran: its outcome is recorded, whatever it returned
        _log.exception("hashed: a tool's result could not be read to digest it; the digest is of a note saying so")
        return record_args({"result": f"<a {type(result).__name__} that could not be read>"}).digest


def _small_sha256() -> Callable[[bytes], Any]:
    """SHA-256 for a few dozen bytes, on the caller's path: CPython's own, where it has one.

    hashlib's OpenSSL SHA-256 is as fast once warm, but on a tool call's fresh thread (LangChain runs each tool in
    one) it cost ≈ 5 µs more per digest: OpenSSL sets up per-thread state first.
    """
    for module in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            return importlib.import_module(module).sha256  # type: ignore[no-any-return]
        except ImportError:
            continue
    return hashlib.sha256


_sha256 = _small_sha256()


def outcome_fields(decision: Decision, outcome: Outcome) -> dict[str, Any]:
    """The fields of the outcome record of a call that ran."""
    return _outcome_from(kept_outcome_recipe(decision, outcome))[0]


def log_unrecorded(kind: str, agent: str, fields: Mapping[str, Any], why: str) -> None:
    """Never drop a record silently: one that cannot be committed goes to the error log in full, as JSON."""
    document = {"kind": kind, "agent": agent, **fields}
    body = orjson.dumps(document, default=lambda o: o.fragment if isinstance(o, JsonNumber) else str(o)).decode()
    _log.error("hashed: %s; the record is kept in this log: %s", why, body)


def outcome_recipe(decision: Decision, outcome: Outcome) -> tuple[Any, ...]:
    """`outcome_fields`, later, in the background writer: for a call that returned a plain scalar."""
    return (decision.call_ref, decision.tool, outcome.result, outcome.duration_ns)


def kept_outcome_recipe(decision: Decision, outcome: Outcome) -> tuple[Any, ...]:
    """An outcome record's values (the result's digest, not the result): a journal's recipe, and `outcome_fields`.

    The writer builds the record from six plain values instead of parsing and preparing a dict (≈ 1.2 µs less
    per record of the writer's time, which bounds sustained throughput).
    """
    error = outcome.error
    if error is None:
        return (decision.call_ref, decision.tool, "ok", None, _result_digest(outcome.result), outcome.duration_ns)
    # What the tool raised is any object: a message JSON cannot carry (a lone surrogate) or one that cannot be
    # made must not keep the call's outcome out of the ledger (`shown`)
    failed = f"{text(type(error).__name__)}: {shown(error, str)[:200]}"
    return (decision.call_ref, decision.tool, "error", failed, None, outcome.duration_ns)


def _outcome_from(recipe: tuple[Any, ...]) -> tuple[dict[str, Any], bool]:
    if len(recipe) == 6:  # `kept_outcome_recipe`
        call_ref, tool, status, error, digest, duration_ns = recipe
    else:  # `outcome_recipe`
        call_ref, tool, result, duration_ns = recipe
        status, error, digest = "ok", None, _result_digest(result)
    fields = {
        "call": call_ref,
        "tool": tool,
        "status": status,
        "error": error,
        "result_digest": digest,
        "duration_ns": duration_ns,
    }
    return fields, False


RECIPES: dict[str, Callable[[tuple[Any, ...]], tuple[dict[str, Any], bool]]] = {
    "decision": _decision_from,
    "outcome": _outcome_from,
}
"""How the background writer builds records queued as recipes, by record kind."""
