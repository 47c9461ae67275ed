"""Transparency: each agent's Merkle tree (`merkle_nodes`, `trees`) and the checkpoints agents send.

The tree of every agent already holding records is built once here, from its records in seq order, when the
database still holds its chain from record 1 (retention may have archived the start: that agent gets no tree).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from hashed.protocol import CompactRange, agent_origin

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PAGE = 10_000


def upgrade() -> None:
    """Apply this revision."""
    nodes = op.create_table(
        "merkle_nodes",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "level", "idx", name=op.f("pk_merkle_nodes")),
        sqlite_with_rowid=False,
    )
    trees = op.create_table(
        "trees",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("compact", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("signed_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_trees")),
    )
    op.create_index(op.f("ix_trees_org_id"), "trees", ["org_id"], unique=False)
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("received_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    op.create_index("ix_checkpoints_agent_id_size", "checkpoints", ["agent_id", "size"], unique=False)
    _backfill(nodes, trees)


def _backfill(nodes: sa.Table, trees: sa.Table) -> None:
    """Build the tree of each agent whose whole chain is in the database (a page of records at a time)."""
    conn = op.get_bind()
    agents = conn.execute(sa.text("SELECT id, org_id, head_seq FROM agents WHERE head_seq > 0")).all()
    for agent_id, org_id, head_seq in agents:
        first = conn.execute(
            sa.text("SELECT raw FROM records WHERE agent_id = :a AND seq = 1"), {"a": agent_id}
        ).scalar()
        count = conn.execute(sa.text("SELECT count(*) FROM records WHERE agent_id = :a"), {"a": agent_id}).scalar()
        if first is None or count != head_seq:
            continue  # the chain's start was archived: no tree (docs/operations.md, "Transparency")
        tree = CompactRange()
        while tree.size < head_seq:
            page = conn.execute(
                sa.text("SELECT hash FROM records WHERE agent_id = :a AND seq > :s ORDER BY seq LIMIT :n"),
                {"a": agent_id, "s": tree.size, "n": _PAGE},
            ).scalars()
            done = tree.extend(bytes.fromhex(h) for h in page)
            op.bulk_insert(nodes, [{"agent_id": agent_id, "level": lv, "idx": ix, "hash": h} for lv, ix, h in done])
        origin = agent_origin(orjson.loads(first)["key"])
        compact = b"".join(tree.hashes)
        row = {"agent_id": agent_id, "org_id": org_id, "origin": origin, "size": tree.size, "compact": compact}
        op.bulk_insert(trees, [{**row, "note": None, "signed_ns": None}])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_checkpoints_agent_id_size", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.drop_index(op.f("ix_trees_org_id"), table_name="trees")
    op.drop_table("trees")
    op.drop_table("merkle_nodes")
