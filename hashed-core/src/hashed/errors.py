"""Every error Hashed raises, in one tree.

```
HashedError ─┬─ ConfigError (also ValueError)
             ├─ PolicyError ─┬─ PolicyFileError(.path .line .field)
             │               └─ PolicyDenied(.decision .call)
             ├─ IdentityError ─ SignatureError
             ├─ LedgerError ─┬─ LedgerWriteError
             │               └─ ChainBrokenError(.sequence)
             ├─ BackendError(.status .code) ─ BackendUnavailable(.retry_after)
             ├─ TransparencyError ─┬─ ProofError
             │                     └─ NoteError
             └─ AdapterError ─ FrameworkVersionError(.framework .needs .hint)
```

Each message says what happened and what to do next.

Example:
    >>> from hashed.errors import PolicyFileError
    >>> str(PolicyFileError("rules[0].effect: input should be 'allow' or 'deny'", path="policy.yaml", line=4))
    "policy.yaml:4: rules[0].effect: input should be 'allow' or 'deny' (run: hashed policy validate policy.yaml)"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hashed.types import Decision, ToolCall

__all__ = [
    "AdapterError",
    "BackendError",
    "BackendUnavailable",
    "ChainBrokenError",
    "ConfigError",
    "FrameworkVersionError",
    "HashedError",
    "IdentityError",
    "LedgerError",
    "LedgerWriteError",
    "NoteError",
    "PolicyDenied",
    "PolicyError",
    "PolicyFileError",
    "ProofError",
    "SignatureError",
    "TransparencyError",
]


class HashedError(Exception):
    """Base of every error raised by Hashed.

    Example:
        >>> try:
        ...     raise ConfigError("bad")
        ... except HashedError as exc:
        ...     print(type(exc).__name__)
        ConfigError
    """


class ConfigError(HashedError, ValueError):
    """Settings or files under `.hashed/` are missing or invalid.

    Example:
        >>> raise ConfigError("no agent key at .hashed/agent.key (run: hashed init)")
        Traceback (most recent call last):
        hashed.errors.ConfigError: no agent key at .hashed/agent.key (run: hashed init)
    """


class PolicyError(HashedError):
    """Something about a policy: a file that does not validate, or a call it denies."""


class PolicyFileError(PolicyError, ValueError):
    """A policy document does not validate.

    Attributes:
        path: the file (or `<text>` for a policy given as a string).
        line: 1-based line of the offending field, when known.
        field: dotted path of the field, e.g. `rules[2].limits.amount.max`.
        issues: every problem found, as (line, field, message); the message above names the first.

    Example:
        >>> err = PolicyFileError("expected a number", path="p.yaml", line=7, field="rules[0].limits.amount.max")
        >>> (err.path, err.line, err.field)
        ('p.yaml', 7, 'rules[0].limits.amount.max')
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "<text>",
        line: int | None = None,
        field: str | None = None,
        issues: list[tuple[int | None, str, str]] | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.detail = message
        self.issues = issues if issues is not None else [(line, field or "", message)]
        where = f"{path}:{line}" if line is not None else path
        what = f"{field}: {message}" if field and not message.startswith(field) else message
        hint = f" (run: hashed policy validate {path})" if path != "<text>" else ""
        super().__init__(f"{where}: {what}{hint}")


class PolicyDenied(PolicyError):
    """Raised instead of returning a refusal when the caller chose strict mode.

    Attributes:
        decision: the `Decision` that refused the call (effect, reason, rule id, policy hash).
        call: the `ToolCall` that was refused.

    Example:
        >>> from hashed.types import Decision, Effect, ToolCall
        >>> d = Decision(Effect.DENY, "Agents never delete data.", "never-delete", "ab12", "c1", tool="delete_db")
        >>> str(PolicyDenied(d, ToolCall("delete_db", {})))
        'delete_db denied by policy (rule never-delete): Agents never delete data.'
    """

    def __init__(self, decision: Decision, call: ToolCall) -> None:
        self.decision = decision
        self.call = call
        super().__init__(decision.refusal_message)


class IdentityError(HashedError):
    """The agent key cannot be created, read or decrypted.

    Example:
        >>> raise IdentityError("wrong passphrase for .hashed/agent.key (check HASHED_KEY_PASSPHRASE)")
        Traceback (most recent call last):
        hashed.errors.IdentityError: wrong passphrase for .hashed/agent.key (check HASHED_KEY_PASSPHRASE)
    """


class SignatureError(IdentityError):
    """A signature does not verify with the key it claims.

    Example:
        >>> raise SignatureError("record 12: signature does not verify with key 3f2a…")
        Traceback (most recent call last):
        hashed.errors.SignatureError: record 12: signature does not verify with key 3f2a…
    """


class LedgerError(HashedError):
    """The ledger cannot be opened, written or trusted."""


class LedgerWriteError(LedgerError):
    """A record could not be committed (disk full, read-only file, locked database).

    The guarded call does not run (fail closed) unless `HASHED_LEDGER_ON_ERROR=open` was chosen.

    Example:
        >>> raise LedgerWriteError("cannot write .hashed/ledger.db: database or disk is full")
        Traceback (most recent call last):
        hashed.errors.LedgerWriteError: cannot write .hashed/ledger.db: database or disk is full
    """


class ChainBrokenError(LedgerError):
    """A ledger or export does not verify.

    Attributes:
        sequence: the sequence number of the first bad record.
        reason: why it is bad, in words.
        code: the same, stable for programs: `malformed`, `out_of_order`, `chain_broken`, `hash_mismatch`,
            `wrong_key`, `unsigned`, `bad_signature`, `nonce_reused` or `bad_rotation` (docs/protocol.md §5);
            against a checkpoint, `truncated` or `forked` (§8).

    Example:
        >>> err = ChainBrokenError(7, "hash does not match the record's contents", code="hash_mismatch")
        >>> (str(err), err.code)
        ("record 7: hash does not match the record's contents", 'hash_mismatch')
    """

    def __init__(self, sequence: int, reason: str, *, code: str = "malformed") -> None:
        self.sequence = sequence
        self.reason = reason
        self.code = code
        super().__init__(f"record {sequence}: {reason}")


class BackendError(HashedError):
    """The backend answered with an error that retrying the same request will not fix.

    Attributes:
        status: the HTTP status (0 when there was no answer).
        code: the backend's machine-readable error code, e.g. `key_revoked`.
        details: the error's `details` (per-field issues, a policy's problems, a diff), when it has them.

    Example:
        >>> str(BackendError("key_revoked: this API key was revoked", status=401, code="key_revoked"))
        'key_revoked: this API key was revoked'
    """

    def __init__(self, message: str, *, status: int = 0, code: str = "", details: Any = None) -> None:
        self.status = status
        self.code = code
        self.details = details
        super().__init__(message)


class BackendUnavailable(BackendError):
    """The backend could not be reached, or asked to come back later (5xx, 429): try again.

    Attributes:
        retry_after: seconds the backend asked to wait (Retry-After), when it said.

    Example:
        >>> BackendUnavailable("connection refused").retry_after is None
        True
    """

    def __init__(self, message: str, *, status: int = 0, code: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code)


class TransparencyError(HashedError):
    """A checkpoint, a proof or a witness answer does not hold (docs/protocol.md, "Transparency")."""


class ProofError(TransparencyError, ValueError):
    """A Merkle inclusion or consistency proof does not verify.

    Example:
        >>> raise ProofError("the proof leads to root 3f2a…, not 9bc1…")
        Traceback (most recent call last):
        hashed.errors.ProofError: the proof leads to root 3f2a…, not 9bc1…
    """


class NoteError(TransparencyError, ValueError):
    """A signed note (a checkpoint, a cosignature, a verifier key) is malformed or not signed by a trusted key.

    Example:
        >>> raise NoteError("no signature from a trusted key (pass the log's verifier key)")
        Traceback (most recent call last):
        hashed.errors.NoteError: no signature from a trusted key (pass the log's verifier key)
    """


class AdapterError(HashedError):
    """An adapter cannot hook into its framework."""


class FrameworkVersionError(AdapterError):
    """The installed framework lacks the hook point an adapter needs.

    Attributes:
        framework: distribution name of the framework.
        needs: the module or attribute that is missing.
        hint: what to run to fix it.

    Example:
        >>> str(FrameworkVersionError("crewai", needs="crewai.hooks", hint="pip install -U 'crewai>=1.0'"))
        "crewai has no crewai.hooks (try: pip install -U 'crewai>=1.0')"
    """

    def __init__(self, framework: str, *, needs: str, hint: str) -> None:
        self.framework = framework
        self.needs = needs
        self.hint = hint
        super().__init__(f"{framework} has no {needs} (try: {hint})")
