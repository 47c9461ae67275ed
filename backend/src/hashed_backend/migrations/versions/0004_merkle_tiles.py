"""Merkle tiles: each agent's tree kept as 16 hashes of one level in four per row (`merkle_tiles`).

Replaces `merkle_nodes` (one row per complete subtree, ≈ 2 per record), whose inserts were most of what the tree
cost ingest (issue #22). The hashes of levels 0, 4, 8, … move over; the levels in between are recomputed from them
when a proof needs one. Downgrading computes those levels again.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_HEIGHT, _WIDTH, _HASH = 4, 16, 32
_PAGE = 10_000


def upgrade() -> None:
    """Apply this revision."""
    tiles = op.create_table(
        "merkle_tiles",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "level", "idx", name=op.f("pk_merkle_tiles")),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    for (agent_id,) in conn.execute(sa.text("SELECT DISTINCT agent_id FROM merkle_nodes")).all():
        _copy_to_tiles(conn, tiles, agent_id)
    op.drop_table("merkle_nodes")


def _copy_to_tiles(conn: sa.Connection, tiles: sa.Table, agent_id: str) -> None:
    """One agent's nodes of levels 0, 4, 8, … into tiles, a page at a time (in level, then index order)."""
    after = (-1, -1)
    current: tuple[int, int] | None = None
    held: list[bytes] = []
    rows: list[dict[str, object]] = []
    while True:
        page = conn.execute(
            sa.text(
                "SELECT level, idx, hash FROM merkle_nodes WHERE agent_id = :a AND level % 4 = 0"
                " AND (level > :l OR (level = :l AND idx > :i)) ORDER BY level, idx LIMIT :n"
            ),
            {"a": agent_id, "l": after[0], "i": after[1], "n": _PAGE},
        ).all()
        for level, idx, digest in page:
            tile = (level // _HEIGHT, idx // _WIDTH)
            if tile != current:
                if current is not None:
                    rows.append(
                        {"agent_id": agent_id, "level": current[0], "idx": current[1], "hashes": b"".join(held)}
                    )
                current, held = tile, []
            held.append(bytes(digest))
        if rows:
            op.bulk_insert(tiles, rows)
            rows = []
        if len(page) < _PAGE:
            break
        after = (page[-1][0], page[-1][1])
    if current is not None:
        op.bulk_insert(
            tiles, [{"agent_id": agent_id, "level": current[0], "idx": current[1], "hashes": b"".join(held)}]
        )


def downgrade() -> None:
    """Revert this revision: every complete subtree's node again, computed from the tiles."""
    nodes = op.create_table(
        "merkle_nodes",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "level", "idx", name=op.f("pk_merkle_nodes")),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    result = conn.execute(sa.text("SELECT agent_id, level, idx, hashes FROM merkle_tiles"))
    for agent_id, tile_level, tile_idx, blob in result.all():
        hashes = [bytes(blob[i : i + _HASH]) for i in range(0, len(blob), _HASH)]
        level, first = tile_level * _HEIGHT, tile_idx * _WIDTH
        rows = []
        for rise in range(_HEIGHT):
            rows += [
                {"agent_id": agent_id, "level": level + rise, "idx": (first >> rise) + i, "hash": h}
                for i, h in enumerate(hashes)
            ]
            pairs = len(hashes) // 2
            hashes = [hashlib.sha256(b"\x01" + hashes[2 * i] + hashes[2 * i + 1]).digest() for i in range(pairs)]
            if not hashes:
                break
        op.bulk_insert(nodes, rows)
    op.drop_table("merkle_tiles")
