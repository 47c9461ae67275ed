"""The tables. Every row that belongs to an organisation carries `org_id`, and every query filters on it.

Times are integer nanoseconds since the epoch (as in ledger records), so SQLite and PostgreSQL compare them
the same way. Ids are prefixed random strings (`org_…`, `agt_…`), except records and quarantine rows, whose
integer ids give the ingest order that cursors and the live feed follow.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Agent",
    "AgentKey",
    "ApiKey",
    "Approval",
    "Base",
    "BackendKey",
    "Challenge",
    "CheckpointNote",
    "MerkleTile",
    "Org",
    "PolicyVersion",
    "Quarantine",
    "Record",
    "RequestNonce",
    "Session",
    "Tree",
    "User",
]

# Named constraints, so that migrations can refer to them on every database.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=_NAMING)


class Org(Base):
    """An organisation: owns everything else."""

    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_ns: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A person's account in one organisation (argon2id password hash).

    An e-mail may have an account in several organisations, each with its own password and role: so that
    neither sign-up nor adding a person tells whether an address has an account elsewhere.
    """

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_ns: Mapped[int] = mapped_column(BigInteger)


class Session(Base):
    """A logged-in person's session; the cookie holds the token, the table its SHA-256."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    expires_ns: Mapped[int] = mapped_column(BigInteger)
    revoked_ns: Mapped[int | None] = mapped_column(BigInteger)
    # The user ids (space-separated) whose password this session's log-in matched: the organisations it may
    # switch to without the password again (see `POST /v1/auth/switch`).
    accounts: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """An admin or agent API key; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(40))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(400))
    expires_ns: Mapped[int] = mapped_column(BigInteger)
    revoked_ns: Mapped[int | None] = mapped_column(BigInteger)
    rotated_from: Mapped[str | None] = mapped_column(String(40))
    rate_per_s: Mapped[float | None] = mapped_column()


class Agent(Base):
    """A registered agent and the head of its verified chain."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64))
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    disabled_ns: Mapped[int | None] = mapped_column(BigInteger)


class AgentKey(Base):
    """Every public key an agent has held (the registered one, then each rotation's new key)."""

    __tablename__ = "agent_keys"
    __table_args__ = (UniqueConstraint("org_id", "public_key"),)
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    added_ns: Mapped[int] = mapped_column(BigInteger)
    retired_ns: Mapped[int | None] = mapped_column(BigInteger)


class Challenge(Base):
    """A registration challenge: single use, short-lived."""

    __tablename__ = "challenges"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    public_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    challenge: Mapped[str] = mapped_column(String(64))
    expires_ns: Mapped[int] = mapped_column(BigInteger)
    used_ns: Mapped[int | None] = mapped_column(BigInteger)


class RequestNonce(Base):
    """Nonces of signed requests, kept until their timestamp could no longer pass the skew check."""

    __tablename__ = "request_nonces"
    public_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_ns: Mapped[int] = mapped_column(BigInteger, index=True)


class Record(Base):
    """A verified ledger record, with its original JSON (`raw`) and the columns that queries filter on."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("agent_id", "seq"),
        UniqueConstraint("agent_id", "nonce"),
        Index("ix_records_org_id_id", "org_id", "id"),
        Index("ix_records_agent_id_id", "agent_id", "id"),
        Index("ix_records_org_id_tool_id", "org_id", "tool", "id"),
    )
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    ts: Mapped[int | None] = mapped_column(BigInteger)
    tool: Mapped[str | None] = mapped_column(String(200))
    effect: Mapped[str | None] = mapped_column(String(10))
    nonce: Mapped[str] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text)
    received_ns: Mapped[int] = mapped_column(BigInteger)


class Quarantine(Base):
    """A refused record, kept as received for investigation; never part of a chain."""

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_org_id_id", "org_id", "id"),
        Index("ix_quarantine_agent_id_seq", "agent_id", "seq"),
    )
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[str | None] = mapped_column(String(40))
    public_key: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    hash: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    received_ns: Mapped[int] = mapped_column(BigInteger)


class PolicyVersion(Base):
    """One version of a policy document; `scope` is `org` or an agent id. `yaml` None: the document was removed."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("org_id", "scope", "version"),)
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    scope: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    yaml: Mapped[str | None] = mapped_column(Text)
    hash: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(400))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(Text)


class Approval(Base):
    """A request for a person's approval, and its signed answer."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("agent_id", "call_ref"),
        Index("ix_approvals_org_id_created_ns", "org_id", "created_ns"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    agent_key: Mapped[str] = mapped_column(String(64))
    call_ref: Mapped[str] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(200))
    args: Mapped[str] = mapped_column(Text)
    args_digest: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    expires_ns: Mapped[int] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(400))
    decided_ns: Mapped[int | None] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(128))


class BackendKey(Base):
    """The backend's own Ed25519 key (one row); the seed is encrypted when a secret key is configured."""

    __tablename__ = "backend_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    public_key: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str] = mapped_column(Text)
    encrypted: Mapped[bool] = mapped_column(Boolean)
    created_ns: Mapped[int] = mapped_column(BigInteger)


class MerkleTile(Base):
    """A tile of an agent's Merkle tree: up to 16 consecutive node hashes of one level in four (docs/protocol.md §8.1).

    Tile (`level` L, `idx` t) holds the hashes of tree level 4·L at indexes 16·t … 16·t + 15, concatenated, as far
    as the tree has completed them; the three levels in between are recomputed from them when a proof needs
    them (at most 7 hashes). A batch of 100 records writes ≈ 8 tiles instead of ≈ 200 node rows. Tiles only grow,
    in the transaction that stores the records; retention keeps them, so every checkpoint stays provable after
    the records themselves are archived.
    """

    __tablename__ = "merkle_tiles"
    __table_args__ = {"sqlite_with_rowid": False}  # one B-tree per row inserted on SQLite, not a table and an index
    agent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class Tree(Base):
    """An agent's tree state: its size, compact range (the next batch extends it) and the backend's checkpoint."""

    __tablename__ = "trees"
    agent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    origin: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    compact: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str | None] = mapped_column(Text)
    signed_ns: Mapped[int | None] = mapped_column(BigInteger)


class CheckpointNote(Base):
    """A checkpoint an agent sent: cosigned by the backend (`cosigned`), or refused and kept as evidence (`forked`)."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_agent_id_size", "agent_id", "size"),)
    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)
    received_ns: Mapped[int] = mapped_column(BigInteger)
