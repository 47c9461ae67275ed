"""Peer adapter: Microsoft agent-governance-toolkit (AGT) 4.1.0, for benchmarking against Hashed.

Requirement (the bare ``agent-governance-toolkit`` wheel only ships the
``agent_compliance`` CLI/verifier; the runtime enforcement code lives in the
``[core]`` extra, i.e. ``agent-governance-toolkit-core``):

    pip install "agent-governance-toolkit[core]==4.1.0"

Nothing from AGT is imported at module import time; every ``build_*`` function
imports lazily, so a benchmark harness can import this module (and skip the
peer) when AGT is not installed.  No network is used at run time.

Enforcement paths offered
-------------------------
``build_peer``  (FULL, the one to benchmark against)
    ``agentmesh.governance.govern(tool, policy=<yaml file>)`` -> ``GovernedCallable``
    (AGT's documented "2-line governance: full policy enforcement, audit
    logging and denial handling", tutorial 36) with its ``AuditLog`` backed by
    ``FileAuditSink`` (tutorial 04: "In-memory audit is fine for development.
    In production you need durable storage" -> HMAC-SHA256-signed,
    SHA-256 hash-chained JSON-lines file).  Per call:
      GovernedCallable.__call__ -> _build_context
      -> PolicyEngine.evaluate (conflict_strategy="deny_overrides", the govern() default)
         -> extract_protocol_facets -> Policy.applies_to -> PolicyRule.evaluate (regex
            expression parser) -> PolicyConflictResolver.resolve -> PolicyDecision
      -> AuditLog.log -> AuditEntry (pydantic) -> MerkleAuditChain.add_entry (SHA-256
         hash chain + incremental Merkle tree, kept in memory)
         -> FileAuditSink.write -> SignedAuditEntry.from_entry (SHA-256 + HMAC-SHA256)
         -> open(path, "a") / write one JSON line / close   (no fsync)
      -> on_deny(decision) or the wrapped tool.

``build_peer_inmem``
    Same ``govern()`` path with its out-of-the-box default audit: in-memory
    ``AuditLog`` (Merkle chain) only, nothing persisted.

``build_peer_light``
    ``agent_os.policies.PolicyEvaluator`` over a ``PolicyDocument`` YAML
    (tutorial 01 "Quick Start").  Pure rule evaluation; returns a
    ``PolicyDecision`` carrying an ``audit_entry`` dict, which nothing stores.

Pitfalls (AGT 4.1.0)
--------------------
* Import ~0.5 s (pulls in ~760 modules incl. hypervisor, agent_os); AGT's own
  modules emit "X is deprecated, use agent-governance-toolkit-core"
  DeprecationWarnings on import (silenced by ``_quiet_import``).
* ``AuditLog`` keeps every entry in memory forever; ``MerkleAuditChain`` doubles
  its tree when the entry count passes 2**k, a one-off stall (~60 ms at 2049,
  ~190 ms at 16385, ~660 ms at 32769 entries).  Build a fresh peer per run.
* Files: ``<tmpdir>/agt_policy.yaml`` (+ ``agt_os_policy.yaml`` for light),
  ``<tmpdir>/agt_audit.jsonl`` (~750 bytes per call).  Nothing else written.
* Semantics: a missing/None ``amount`` counts as 0 in agentmesh conditions, so
  ``transfer_money`` without an amount is ALLOWED by both AGT paths.  The light
  path denies non-numeric amounts (e.g. "50") and logs a traceback at ERROR;
  the full path coerces with float().
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

AGT_PIP_REQUIREMENT = "agent-governance-toolkit[core]==4.1.0"

# --------------------------------------------------------------------------
# The policy, in AGT's two policy dialects.
#
# Hashed reference:
#   default: deny
#   small-transfers: transfer_money allow if amount <= 1000
#   never-delete:    delete_* deny
# --------------------------------------------------------------------------

# agentmesh (govern()/PolicyEngine) dialect.  Its condition language supports
# ==, !=, `in [..]`, numeric <,<=,>,>=, bare truthiness and and/or -- but has
# NO glob / prefix / regex operator, so "delete_*" cannot be written as a rule.
# It is enforced by `default_action: deny` (no allow rule can match a delete_*
# tool; deny_overrides would also veto any allow if a deny rule matched).
AGENTMESH_POLICY_YAML = """\
apiVersion: governance.toolkit/v1
name: hashed-peer-policy
description: Peer of Hashed's small-transfers / never-delete policy
agents: ["*"]
default_action: deny
rules:
  - name: small-transfers
    stage: pre_tool
    condition: "action.type == 'transfer_money' and args.amount <= 1000"
    action: allow
    priority: 10
    description: transfer_money allowed up to 1000
  # never-delete (delete_*): not expressible (no wildcard operator);
  # covered by default_action: deny.
"""

# agent_os PolicyEvaluator dialect: one condition per rule (no and/or), first
# match by descending priority, flat context dict.  Has a regex operator, so
# never-delete is an explicit rule here.  "amount > 1000 -> deny" is applied to
# every tool, which is equivalent because the default is deny anyway.
AGENT_OS_POLICY_YAML = """\
version: "1.0"
name: hashed-peer-policy
description: Peer of Hashed's small-transfers / never-delete policy
rules:
  - name: never-delete
    condition: {field: tool_name, operator: matches, value: "^delete_"}
    action: deny
    priority: 100
    message: delete_* tools are never allowed
  - name: small-transfers-over-limit
    condition: {field: amount, operator: gt, value: 1000}
    action: deny
    priority: 90
    message: transfer amount exceeds 1000
  - name: small-transfers
    condition: {field: tool_name, operator: eq, value: transfer_money}
    action: allow
    priority: 80
    message: transfer_money allowed up to 1000
defaults:
  action: deny
"""


def _quiet_import(fn: Callable[[], Any]) -> Any:
    """AGT 4.1.0 emits several DeprecationWarnings *from its own modules* on import
    ("agent-os-kernel / agentmesh-platform / agent-hypervisor / agentmesh-primitives
    is deprecated. Use agent-governance-toolkit-core instead") plus a pydantic
    ``json_encoders`` deprecation.  They are harmless; silence them here only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from pydantic.warnings import PydanticDeprecatedSince20

            warnings.simplefilter("ignore", PydanticDeprecatedSince20)
        except Exception:  # pragma: no cover
            pass
        return fn()


def _import_agentmesh_governance():
    def _imp():
        import agentmesh.governance as gov  # noqa: WPS433  (lazy on purpose)

        return gov

    try:
        return _quiet_import(_imp)
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            f"AGT runtime not installed ({exc}). Install: pip install '{AGT_PIP_REQUIREMENT}' "
            "(the bare 'agent-governance-toolkit' wheel does not contain agentmesh/agent_os)."
        ) from exc


def _write(tmpdir: str, name: str, text: str) -> str:
    os.makedirs(tmpdir, exist_ok=True)
    path = os.path.join(tmpdir, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _noop_tool(action: str, args: dict) -> bool:
    """Stands in for the real tool; runs only when AGT allows the call."""
    return True


def _deny(_decision: Any) -> bool:
    # govern()'s documented on_deny hook (tutorial 36, example 2): return a value
    # instead of raising GovernanceDenied.
    return False


def _build_govern(tmpdir: str, *, file_sink: bool, hmac_key: bytes | None = None):
    gov = _import_agentmesh_governance()
    policy_path = _write(tmpdir, "agt_policy.yaml", AGENTMESH_POLICY_YAML)

    governed = gov.govern(
        _noop_tool,
        policy=policy_path,  # file path -> PolicyEngine.load_yaml_file
        agent_id="peer-agent",
        audit=True,  # default; AuditLog (Merkle chain)
        on_deny=_deny,
        conflict_strategy="deny_overrides",  # default
    )

    sink = None
    audit_path = None
    if file_sink:
        # govern() 4.1.0 has no sink parameter (GovernanceConfig.audit_file exists but is
        # never read), so attach the documented production sink to the AuditLog that
        # GovernedCallable writes to.  Same code path, durable + signed output.
        audit_path = os.path.join(tmpdir, "agt_audit.jsonl")
        key = hmac_key if hmac_key is not None else os.urandom(32)
        sink = gov.FileAuditSink(audit_path, secret_key=key)
        governed._audit = gov.AuditLog(sink=sink)

    def decide(tool_name: str, args: dict) -> bool:
        return governed(action=tool_name, args=args) is True

    decide.governed = governed  # type: ignore[attr-defined]
    decide.audit_log = governed.audit_log  # type: ignore[attr-defined]
    decide.audit_sink = sink  # type: ignore[attr-defined]
    decide.audit_path = audit_path  # type: ignore[attr-defined]
    decide.policy_path = policy_path  # type: ignore[attr-defined]
    return decide


def build_peer(tmpdir: str) -> Callable[[str, dict], bool]:
    """Return decide(tool_name, args) -> allowed running AGT's full enforcement path:
    govern() -> PolicyEngine (deny_overrides) -> AuditLog (in-memory Merkle hash chain)
    -> FileAuditSink (HMAC-SHA256 signed, hash-chained JSONL at <tmpdir>/agt_audit.jsonl)
    -> tool.  One audit record is written per call, allowed or denied."""
    decide = _build_govern(tmpdir, file_sink=True)
    decide.path_info = {  # type: ignore[attr-defined]
        "name": "AGT full: govern() + PolicyEngine + AuditLog + FileAuditSink",
        "on_path": [
            "agentmesh.governance.govern -> GovernedCallable.__call__",
            "GovernedCallable._build_context",
            "agentmesh.governance.policy.PolicyEngine.evaluate (deny_overrides)",
            "agentmesh.governance.protocol_facets.extract_protocol_facets",
            "agentmesh.governance.policy.PolicyRule.evaluate/_eval_expression",
            "agentmesh.governance.conflict_resolution.PolicyConflictResolver.resolve",
            "agentmesh.governance.audit.AuditLog.log -> AuditEntry (pydantic)",
            "agentmesh.governance.audit.MerkleAuditChain.add_entry (SHA-256 chain + Merkle tree)",
            "agentmesh.governance.audit_backends.FileAuditSink.write -> SignedAuditEntry (SHA-256 + HMAC-SHA256)",
        ],
        "audit": "every call: memory (Merkle chain, unbounded) + file JSONL, HMAC-SHA256 signed, "
        "hash-chained, open/append/close per record, no fsync",
    }
    return decide


def build_peer_inmem(tmpdir: str) -> Callable[[str, dict], bool]:
    """govern() exactly as shipped by default: PolicyEngine + in-memory AuditLog only."""
    decide = _build_govern(tmpdir, file_sink=False)
    decide.path_info = {  # type: ignore[attr-defined]
        "name": "AGT govern() default: PolicyEngine + in-memory AuditLog",
        "on_path": [
            "GovernedCallable.__call__",
            "PolicyEngine.evaluate (deny_overrides)",
            "AuditLog.log -> MerkleAuditChain.add_entry",
        ],
        "audit": "every call: memory only (Merkle hash chain, unbounded growth), unsigned, not persisted",
    }
    return decide


def build_peer_light(tmpdir: str) -> Callable[[str, dict], bool]:
    """Return decide() running AGT's lightweight check: agent_os.policies.PolicyEvaluator
    over a YAML PolicyDocument.  No audit is recorded (the decision carries an
    audit_entry dict which is discarded)."""

    def _imp():
        from agent_os.policies import PolicyDocument, PolicyEvaluator

        return PolicyDocument, PolicyEvaluator

    try:
        PolicyDocument, PolicyEvaluator = _quiet_import(_imp)
    except ImportError as exc:  # pragma: no cover
        raise ImportError(f"AGT runtime not installed ({exc}). Install: pip install '{AGT_PIP_REQUIREMENT}'") from exc

    policy_path = _write(tmpdir, "agt_os_policy.yaml", AGENT_OS_POLICY_YAML)
    evaluator = PolicyEvaluator([PolicyDocument.from_yaml(policy_path)])

    def decide(tool_name: str, args: dict) -> bool:
        ctx = dict(args)  # flat context: the evaluator cannot read nested fields
        ctx["tool_name"] = tool_name
        return evaluator.evaluate(ctx).allowed

    decide.evaluator = evaluator  # type: ignore[attr-defined]
    decide.policy_path = policy_path  # type: ignore[attr-defined]
    decide.path_info = {  # type: ignore[attr-defined]
        "name": "AGT light: agent_os.policies.PolicyEvaluator",
        "on_path": [
            "agent_os.policies.evaluator.PolicyEvaluator.evaluate -> _evaluate_flat",
            "agent_os.policies.evaluator._match_condition",
            "agent_os.policies.evaluator.PolicyDecision (pydantic, incl. audit_entry dict)",
        ],
        "audit": "none recorded (audit_entry dict built per decision and discarded)",
    }
    return decide


# --------------------------------------------------------------------------
# Self-test + micro-benchmark
# --------------------------------------------------------------------------


def _check(decide: Callable[[str, dict], bool], label: str) -> None:
    assert decide("transfer_money", {"to": "acct-9", "amount": 50}) is True, label
    assert decide("transfer_money", {"to": "acct-9", "amount": 1000}) is True, label
    assert decide("transfer_money", {"to": "acct-9", "amount": 5000}) is False, label
    assert decide("transfer_money", {"to": "acct-9", "amount": 1000.01}) is False, label
    assert decide("delete_db", {}) is False, label
    assert decide("delete_db", {"amount": 1}) is False, label
    assert decide("other", {}) is False, label


def _bench(decide: Callable[[str, dict], bool], n: int = 20_000, warmup: int = 2_000) -> dict:
    import time

    pc = time.perf_counter_ns
    args = {"to": "acct-9", "amount": 50}
    for _ in range(warmup):
        decide("transfer_money", args)
    samples = [0] * n
    for i in range(n):
        t0 = pc()
        decide("transfer_money", args)
        samples[i] = pc() - t0
    samples.sort()
    return {
        "median_us": samples[n // 2] / 1000,
        "p99_us": samples[min(n - 1, int(n * 0.99))] / 1000,
        "max_us": samples[-1] / 1000,
        "mean_us": sum(samples) / n / 1000,
    }


if __name__ == "__main__":
    import sys
    import tempfile
    import time
    from importlib import metadata

    t0 = time.perf_counter()
    try:
        _import_agentmesh_governance()
        _quiet_import(lambda: __import__("agent_os.policies"))
    except ImportError as e:
        print(f"AGT not available: {e}")
        sys.exit(1)
    import_ms = (time.perf_counter() - t0) * 1000

    versions = {}
    for dist in ("agent-governance-toolkit", "agent-governance-toolkit-core"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    print(f"versions: {versions}   python {sys.version.split()[0]}")
    print(f"pip requirement: {AGT_PIP_REQUIREMENT}")
    print(f"lazy import of agentmesh.governance + agent_os.policies: {import_ms:.0f} ms")

    with tempfile.TemporaryDirectory(prefix="peer_agt_") as tmp:
        variants = [
            ("build_peer (FULL)", build_peer, os.path.join(tmp, "full")),
            ("build_peer_inmem", build_peer_inmem, os.path.join(tmp, "inmem")),
            ("build_peer_light", build_peer_light, os.path.join(tmp, "light")),
        ]
        for label, builder, d in variants:
            decide = builder(d)
            _check(decide, label)
            res = _bench(decide)
            info = decide.path_info
            print(f"\n== {label}: {info['name']}")
            print("   asserts: OK")
            print(
                f"   allowed-call latency over 20000 iters (after 2000 warm-up): "
                f"median {res['median_us']:.1f} us, p99 {res['p99_us']:.1f} us, "
                f"mean {res['mean_us']:.1f} us, max {res['max_us']:.0f} us"
            )
            print("   on path:")
            for step in info["on_path"]:
                print(f"     - {step}")
            print(f"   audit: {info['audit']}")
            log = getattr(decide, "audit_log", None)
            if log is not None:
                print(
                    f"   in-memory AuditLog entries: {len(log._chain._entries)}; "
                    f"merkle root {log._chain.get_root_hash()[:16]}..."
                )
            sink = getattr(decide, "audit_sink", None)
            if sink is not None:
                with open(decide.audit_path, encoding="utf-8") as fh:
                    lines = fh.readlines()
                import json as _json

                first = _json.loads(lines[0])
                ok, err = sink.verify_integrity()
                print(f"   audit file: {decide.audit_path}")
                print(
                    f"     {len(lines)} records, {os.path.getsize(decide.audit_path) / 1e6:.1f} MB, "
                    f"HMAC+hash chain verify_integrity() -> {ok} {err or ''}"
                )
                print(f"     record keys: {sorted(first)}")
                print(
                    f"     first record: event_type={first['event_type']} action={first['action']} "
                    f"outcome={first['outcome']} data={first['data']}"
                )
