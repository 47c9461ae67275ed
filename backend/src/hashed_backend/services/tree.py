"""Each agent's Merkle tree (docs/protocol.md §8.1), kept as ingest stores records, in the same transaction.

The leaves are the records' hashes in seq order (record `seq` is leaf `seq - 1`). The hashes of every complete
subtree at levels 0, 4, 8, … are kept in `merkle_tiles`, 16 to a row (the C2SP tlog-tiles layout, in a table):
the levels in between are recomputed from at most 8 of them when a proof needs one, so a batch of 100 records
writes ≈ 8 rows instead of ≈ 200. `trees` holds the tree's compact
range (one hash per set bit of its size), so a batch extends the tree from one row: nothing is ever recomputed
from the records. The tree moves in the transaction that moves the agent's head, so its size is always the
head's seq, on every replica.

Each process remembers, per agent, the tree it last committed (`TreeState`: compact range and the rightmost,
partial tile of each tile level), so a batch costs two statements in the write transaction, and no read: an
UPDATE of `trees` and one multi-row upsert of the tiles it touched (one per 16 tiles), sent with the statement
that moves the agent's head (one round trip on PostgreSQL, `execute_all`). A batch's new nodes are hashed level
by level, each level's pairs in one pass, up to the first level where the batch completes none (`_grow`):
≈ 0.6 µs per record, most of it SHA-256 itself. A tree at a given size is the same on every replica (the
records' own), so a remembered one is only out of date when another replica moved the agent's head since: its
size then differs from the head the batch extends, and the tree is read again.

With a remembered tree, the step (hashing, the checkpoint's signature) is planned before the write transaction
(`plan_ahead`), on the request's own thread: the writer thread then only runs its statements. On SQLite every
write of the process waits for that thread, and pure Python there also waits for the GIL each time it resumes;
planned inside, the step made each batch's write ≈ 2 ms longer for ≈ 0.4 ms of CPU (issue #22,
docs/performance.md). The statements' guards (`trees.size`, the head) make a step planned from a tree
that moved meanwhile fail with the head's UPDATE, and the batch is decided again.

At each batch the backend signs a checkpoint of the new tree (`trees.note`; one Ed25519 signature per batch,
≈ 25 µs, against the batch's ≈ 100 record signatures verified before it). Proofs read the O(log n) tiles holding
their nodes (`SqlNodeStore`, one query) for any size the tree has reached, so they outlive the records retention
archives.

An agent whose records were stored before the tree existed and whose chain no longer starts at record 1 in the
database (retention archived its start) has no tree: its records are stored as before, and its proofs answer 404.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, TextClause, and_, bindparam, insert, or_, select, text, update

from hashed.protocol import Checkpoint, CompactRange, agent_origin, hash_children
from hashed_backend.db.models import MerkleTile, Tree
from hashed_backend.db.session import Step

if TYPE_CHECKING:
    from hashed_backend.services.checkpoints import BackendSigner

__all__ = [
    "SqlNodeStore",
    "TreeState",
    "TreeStep",
    "known",
    "plan_ahead",
    "plan_tree",
    "remember",
    "tree_after",
    "unpack",
]

_log = logging.getLogger("hashed_backend")
_TILES, _TREES = cast(Table, MerkleTile.__table__), cast(Table, Tree.__table__)
_TILE_HEIGHT = 4  # a tile is a subtree 4 levels high: 16 hashes of its bottom level
_WIDTH = 1 << _TILE_HEIGHT
_HASH = 32
_NODE = b"\x01"  # RFC 6962 interior node prefix (`hashed.protocol.hash_children`; tests check every node against it)
_UPDATE_TREE = (
    update(_TREES)
    .where(_TREES.c.agent_id == bindparam("a"), _TREES.c.size == bindparam("old"))  # a guard: see `tree_after`
    .values(size=bindparam("new_size"), compact=bindparam("compact"), note=bindparam("note"), signed_ns=bindparam("at"))
)
_INSERT_TREE = insert(_TREES).values(
    agent_id=bindparam("a"),
    org_id=bindparam("org"),
    origin=bindparam("origin"),
    size=bindparam("new_size"),
    compact=bindparam("compact"),
    note=bindparam("note"),
    signed_ns=bindparam("at"),
)
_ROWS = 16  # tiles upserted by one statement: a batch of 100 records touches ≈ 8


def _upsert_rows(count: int) -> TextClause:
    values = ", ".join(f"(:a, :l{i}, :i{i}, :h{i})" for i in range(count))
    return text(
        f"INSERT INTO merkle_tiles (agent_id, level, idx, hashes) VALUES {values} "  # noqa: S608 - no input in it
        "ON CONFLICT (agent_id, level, idx) DO UPDATE SET hashes = excluded.hashes"
    )


# One multi-row statement per 16 tiles, not one execution per tile: on PostgreSQL each is a message to the
# server in the pipeline. Built once for each row count, so each compiles once.
_UPSERTS = {count: _upsert_rows(count) for count in range(1, _ROWS + 1)}


@dataclasses.dataclass(frozen=True, slots=True)
class TreeState:
    """An agent's tree as committed: what the next batch extends without reading it back."""

    size: int
    compact: tuple[bytes, ...]  # the compact range's hashes, largest subtree first
    origin: str
    edges: dict[int, bytes]  # tile level -> hashes of its rightmost tile, if partial (its index follows from size)

    def root(self) -> bytes:
        """The tree's root hash (RFC 6962 MTH), from its compact range."""
        return CompactRange(self.size, self.compact).root()


_known: weakref.WeakKeyDictionary[object, dict[str, TreeState]] = weakref.WeakKeyDictionary()


def known(db: object, agent_id: str) -> TreeState | None:
    """The tree this process last committed for `agent_id` through `db` (None: read it from the database)."""
    return _known.get(db, {}).get(agent_id)


def remember(db: object, agent_id: str, state: TreeState | None) -> None:
    """After a commit: the agent's tree as it now stands (None: forget it)."""
    states = _known.setdefault(db, {})
    if state is None:
        states.pop(agent_id, None)
    else:
        states[agent_id] = state


def unpack(size: int, blob: bytes) -> CompactRange:
    """The compact range of a tree of `size` leaves from its `trees.compact` blob (its hashes, largest first)."""
    return CompactRange(size, [bytes(blob[i : i + 32]) for i in range(0, len(blob), 32)])


@dataclasses.dataclass(frozen=True, slots=True)
class TreeStep:
    """A batch's change to an agent's tree, planned: the statements that make it, and the tree after them."""

    steps: list[Step]  # the `trees` row first (its row count tells whether it held), then the tiles' upserts
    after: TreeState


def plan_tree(
    conn: Connection,
    org_id: str,
    agent_id: str,
    old_size: int,
    first_key: str,
    records: Sequence[dict[str, Any]],
    signer: BackendSigner | None,
    now: int,
    state: TreeState | None = None,
) -> TreeStep | None:
    """Plan appending the batch's stored records (seq old_size + 1 …, in order) to the agent's tree; sign its head.

    Runs in the batch's write transaction; the statements it returns go with the one that moves the head from
    `old_size` (`execute_all`: one round trip on PostgreSQL). `first_key`: the chain's key before the batch (for a
    new tree, the key of record 1, which names the log). `state`: the tree as this process last committed it
    (`known`); read from the database if it is not at `old_size` (another replica moved it since, or this process
    never saw it). None: the agent has no tree, or it is left as it is.
    """
    if records and (state is None or state.size != old_size):
        state = _read(conn, agent_id, old_size, first_key)
    return plan_ahead(org_id, agent_id, old_size, records, signer, now, state)


def plan_ahead(
    org_id: str,
    agent_id: str,
    old_size: int,
    records: Sequence[dict[str, Any]],
    signer: BackendSigner | None,
    now: int,
    state: TreeState | None,
) -> TreeStep | None:
    """`plan_tree` from `state` alone, before the write transaction; None: no tree at `old_size` to plan from.

    `plan_tree` ends here once it has the tree. The step holds only where the tree is still at `old_size` when it
    runs (the `trees` UPDATE's guard, with the head's): so the hashing and the signature, pure Python holding the
    GIL, are not done on the writer thread, whose transaction every other write waits for (issue #22: there they
    cost ingest on SQLite far more than their CPU time).
    """
    if not records or state is None or state.size != old_size:
        return None
    grown = _grow(state, _leaves(records))
    if grown is None:  # pragma: no cover - tiles grow with the tree, in one transaction
        _log.error("agent %s: its tiles do not match its tree at size %d; it is left as it is", agent_id, state.size)
        return None
    after, tiles = grown
    note = None if signer is None else signer.sign_checkpoint(Checkpoint(after.origin, after.size, after.root()))
    compact = b"".join(after.compact)
    row = {"a": agent_id, "old": state.size, "new_size": after.size, "compact": compact, "note": note, "at": now}
    write: Step = (
        (_INSERT_TREE, {**row, "org": org_id, "origin": state.origin}) if state.size == 0 else (_UPDATE_TREE, row)
    )
    return TreeStep([write, *_upserts(agent_id, tiles)], after)


def tree_after(step: TreeStep | None, counts: Sequence[int], agent_id: str) -> TreeState | None:
    """The tree once `step`'s statements ran with these row counts (None: no tree, or it did not hold)."""
    if step is None:
        return None
    if counts[0] != 1:  # pragma: no cover - the tree moves with the head, in one transaction
        _log.error("agent %s: its tree could not move to size %d; it is left as it is", agent_id, step.after.size)
        return None
    return step.after


def _read(conn: Connection, agent_id: str, size: int, first_key: str) -> TreeState | None:
    """The agent's tree at `size` from the database, with its partial tiles; None: no tree (or not at `size`)."""
    row = conn.execute(
        select(_TREES.c.size, _TREES.c.compact, _TREES.c.origin).where(_TREES.c.agent_id == agent_id)
    ).first()
    if row is None:
        # No tree and records already stored: stored before the tree existed (see the module docstring).
        return TreeState(0, (), agent_origin(first_key), {}) if size == 0 else None
    if row.size != size:  # pragma: no cover - the tree moves with the head, in one transaction
        _log.error("agent %s: tree at size %d, head at %d; the tree is left as it is", agent_id, row.size, size)
        return None
    partial = {level: divmod(count, _WIDTH) for level, count in _levels(size) if count % _WIDTH}  # (tile idx, held)
    edges: dict[int, bytes] = {}
    if partial:
        wanted = [and_(_TILES.c.level == level, _TILES.c.idx == idx) for level, (idx, _) in partial.items()]
        rows = conn.execute(select(_TILES.c.level, _TILES.c.hashes).where(_TILES.c.agent_id == agent_id, or_(*wanted)))
        edges = {tile.level: bytes(tile.hashes) for tile in rows}
    for level, (_, held) in partial.items():
        if len(edges.get(level, b"")) != held * _HASH:  # pragma: no cover - see above
            _log.error(
                "agent %s: tile level %d does not match its tree at size %d; it is left as it is", agent_id, level, size
            )
            return None
    return TreeState(row.size, tuple(unpack(row.size, row.compact).hashes), row.origin, edges)


def _levels(size: int) -> Iterable[tuple[int, int]]:
    """(tile level, how many hashes that level has) for a tree of `size` leaves."""
    level = 0
    while count := size >> (_TILE_HEIGHT * level):
        yield level, count
        level += 1


def _leaves(records: Sequence[dict[str, Any]]) -> bytes:
    """The records' hashes, which are their RFC 6962 leaf hashes already, as one blob (one `fromhex` call)."""
    leaves = bytes.fromhex("".join([record["hash"] for record in records]))
    if len(leaves) != _HASH * len(records):
        raise ValueError("a record's hash is not 32 bytes in hex")
    return leaves


def _grow(state: TreeState, leaves: bytes) -> tuple[TreeState, dict[tuple[int, int], bytes]] | None:
    """The tree with `leaves` (32-byte hashes, concatenated) appended, and every tile they touch, whole.

    Level by level rather than leaf by leaf (`CompactRange.append`): the nodes a batch completes at level L + 1
    are the pairs of those it completes at level L, with the compact range's node at L as the first left
    sibling when the batch starts on a right child. Each level's new nodes are one blob, hashed pair by pair
    in one list comprehension (RFC 6962 `hash_children` inline, a slice and one concatenation per node), and the
    first level where the batch completes no node ends the walk: every larger subtree of the compact range is
    the old one (a batch of 100 on a tree of 200,000 walks 8 levels, not 18). Together ≈ 17 % less time than
    node lists through `hash_children` and every level. None if a partial tile the tree needs is missing from
    `state.edges`.
    """
    old, size = state.size, state.size + len(leaves) // _HASH
    nodes = leaves  # the level's new nodes (indexes first … end - 1), concatenated
    compact: list[bytes] = []  # smallest subtree first
    tiles: dict[tuple[int, int], bytes] = {}
    edges = dict(state.edges)
    sha256, pair = hashlib.sha256, 2 * _HASH
    for level in range(size.bit_length()):
        first, end = old >> level, size >> level  # the level's new nodes: indexes first … end - 1
        if first == end:  # none from here up: the compact range's larger subtrees are the old ones
            compact.extend(reversed(state.compact[: first.bit_count()]))
            break
        tile_level, rise = divmod(level, _TILE_HEIGHT)
        if not rise:
            held = first % _WIDTH
            blob = (edges.get(tile_level, b"") + nodes) if held else nodes
            if len(blob) != (end - first + held) * _HASH:
                return None
            for at in range(0, len(blob), _WIDTH * _HASH):
                tiles[tile_level, (first - held + at // _HASH) // _WIDTH] = blob[at : at + _WIDTH * _HASH]
            if end % _WIDTH:
                edges[tile_level] = tiles[tile_level, end // _WIDTH]
            else:
                edges.pop(tile_level, None)
        if first & 1:  # the batch starts on a right child: its left sibling is in the compact range
            nodes = state.compact[(old >> (level + 1)).bit_count()] + nodes
        if end & 1:
            compact.append(nodes[-_HASH:])
        nodes = b"".join([sha256(_NODE + nodes[at : at + pair]).digest() for at in range(0, len(nodes) - _HASH, pair)])
    return TreeState(size, tuple(reversed(compact)), state.origin, edges), tiles


def _upserts(agent_id: str, tiles: dict[tuple[int, int], bytes]) -> list[Step]:
    """The statements that write these tiles, whole, over what each held."""
    rows = list(tiles.items())
    steps: list[Step] = []
    for start in range(0, len(rows), _ROWS):
        chunk = rows[start : start + _ROWS]
        params: dict[str, Any] = {"a": agent_id}
        for i, ((level, idx), hashes) in enumerate(chunk):
            params[f"l{i}"], params[f"i{i}"], params[f"h{i}"] = level, idx, hashes
        steps.append((_UPSERTS[len(chunk)], params))
    return steps


class SqlNodeStore:
    """`hashed.protocol.NodeStore` over one agent's `merkle_tiles` rows: one indexed query per call.

    A node of level 4·L + r (r < 4) is the root of 2^r consecutive hashes of tile level L, all in one tile.

    Args:
        conn: a synchronous connection (`AsyncConnection.run_sync` hands one over).
        agent_id: whose tree.
    """

    def __init__(self, conn: Connection, agent_id: str) -> None:
        self._conn = conn
        self._agent = agent_id

    def get_nodes(self, coords: Sequence[tuple[int, int]]) -> list[bytes]:
        """See `hashed.protocol.NodeStore`."""
        if not coords:
            return []
        where = {_tile_of(level, idx)[:2] for level, idx in coords}
        # One OR of primary-key lookups (each term names the whole key, so SQLite and PostgreSQL both use it).
        wanted = [
            and_(_TILES.c.agent_id == self._agent, _TILES.c.level == level, _TILES.c.idx == idx)
            for level, idx in sorted(where)
        ]
        rows = self._conn.execute(select(_TILES.c.level, _TILES.c.idx, _TILES.c.hashes).where(or_(*wanted)))
        found = {(row.level, row.idx): bytes(row.hashes) for row in rows}
        nodes = []
        for level, idx in coords:
            tile_level, tile_idx, start, count = _tile_of(level, idx)
            held = found.get((tile_level, tile_idx), b"")
            if len(held) < (start + count) * _HASH:
                raise LookupError(f"no tree node at (level, index) {(level, idx)} for agent {self._agent}")
            nodes.append(_root(held[start * _HASH : (start + count) * _HASH]))
        return nodes


def _tile_of(level: int, idx: int) -> tuple[int, int, int, int]:
    """Where node (level, idx) lives: tile level, tile index, first hash in the tile, hashes it covers."""
    tile_level, rise = divmod(level, _TILE_HEIGHT)
    first = idx << rise
    return tile_level, first // _WIDTH, first % _WIDTH, 1 << rise


def _root(hashes: bytes) -> bytes:
    """The root of a perfect subtree over concatenated hashes (a power of two of them)."""
    level = [hashes[i : i + _HASH] for i in range(0, len(hashes), _HASH)]
    while len(level) > 1:
        level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
