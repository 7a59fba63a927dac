"""The store's snapshot: all ids and vectors as two BLOBs, a derived copy of
``items`` for a fast open.

Why: Python's ``sqlite3`` builds a tuple and a ``bytes`` object for every row it
returns, so reading 100,000 one-row-per-item vectors costs about 70-125 ms on the
development machine (2 AMD EPYC cores) before any numpy work: more than 4x
``np.load`` of the same ``.npy`` at d=128. The snapshot holds the same numbers in
one row (``ids``: int64, ascending; ``vectors``: float32, the same order), read with
one ``np.frombuffer``-like copy. ``items`` stays the source of truth, and the
snapshot is used only while its ``generation`` equals ``meta``'s and its lengths fit
the row count:

- a store's write of ids or vectors bumps ``meta``'s generation (the snapshot is
  stale from then on) and drops the triggers; its ``close`` writes a new snapshot
  and creates them again, so a batch of writes rewrites the snapshot once, not once
  per write;
- while the snapshot is fresh, triggers bump the generation on any INSERT, DELETE
  and UPDATE of ``id`` or ``vector`` made by anyone else (a plain ``sqlite3``
  script, say).
"""

import sqlite3
from typing import Optional, Tuple

import numpy as np

from oml_helpers.storage_checks import VECTOR_DTYPE

IDS_DTYPE = np.dtype("<i8")
BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'generation'"
TRIGGERS = {
    f"items_{name}": (
        f"CREATE TRIGGER items_{name} AFTER {event} ON items BEGIN {BUMP}; END"
    )
    for name, event in (
        ("inserted", "INSERT"),
        ("deleted", "DELETE"),
        ("changed", "UPDATE OF id, vector"),
    )
}
SNAPSHOT_SCHEMA = (
    "CREATE TABLE snapshot (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "generation INTEGER NOT NULL, ids BLOB NOT NULL, vectors BLOB NOT NULL)",
    # an empty store's snapshot is fresh
    "INSERT INTO snapshot VALUES (1, 0, x'', x'')",
) + tuple(TRIGGERS.values())

# ids int64 [n] ascending, vectors float32 [n, dim]
Matrix = Tuple[np.ndarray, np.ndarray]


# bytes of the snapshot's row beside its two BLOBs (header, generation): generous
ROW_OVERHEAD = 64
# BLOB bytes read at a time: a SELECT of the whole BLOBs measured 4-8x np.load
READ_BYTES = 1 << 20


def mark_stale(conn: sqlite3.Connection) -> None:
    """Make the snapshot stale and drop the triggers, inside a store's write
    transaction.

    A trigger runs once per row, and a bump per row measured 2-2.5x the time of a
    100,000-row ``add``; with the snapshot already stale the triggers have nothing
    left to do.
    """
    conn.execute(BUMP)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def read_blob(conn: sqlite3.Connection, column: str, out: np.ndarray) -> None:
    """Copy the snapshot's BLOB ``column`` into ``out`` (C-contiguous, of the
    BLOB's size), a MiB at a time."""
    view = memoryview(out.reshape(-1)).cast("B")
    with conn.blobopen("snapshot", column, 1, readonly=True) as blob:
        for start in range(0, len(view), READ_BYTES):
            view[start : start + READ_BYTES] = blob.read(READ_BYTES)


def read_snapshot(conn: sqlite3.Connection, dim: int) -> Optional[Matrix]:
    """``(ids, vectors)`` from the snapshot if it is fresh, else None; call it
    inside a transaction.

    Fresh: its generation is meta's and its BLOBs are ``8 n`` and ``4 n dim`` bytes
    for the ``n`` rows.
    """
    fresh, n_ids, n_vectors, n = conn.execute(
        "SELECT generation = "
        "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), "
        "length(ids), length(vectors), (SELECT count(*) FROM items) "
        "FROM snapshot WHERE one = 1"
    ).fetchone() or (0, 0, 0, 0)
    if not (
        fresh
        and n_ids == n * IDS_DTYPE.itemsize
        and n_vectors == n * dim * VECTOR_DTYPE.itemsize
    ):
        return None
    ids, vectors = np.empty(n, IDS_DTYPE), np.empty((n, dim), VECTOR_DTYPE)
    if n:
        read_blob(conn, "ids", ids)
        read_blob(conn, "vectors", vectors)
    return ids, vectors


def write_snapshot(
    conn: sqlite3.Connection, ids: np.ndarray, vectors: np.ndarray
) -> None:
    """Replace the snapshot with ``ids`` and ``vectors`` at a new generation and
    create the triggers;
    call it inside a write transaction. A matrix whose row would pass SQLite's
    length limit (1 GB by default, about 650,000 vectors at d=384) leaves no
    snapshot: opens then read the rows.
    """
    ids, vectors = (
        np.ascontiguousarray(ids, IDS_DTYPE),
        np.ascontiguousarray(vectors, VECTOR_DTYPE),
    )
    conn.execute(BUMP)  # a new generation: any older snapshot is stale
    # SQLite's length limit caps a row too
    if ids.nbytes + vectors.nbytes + ROW_OVERHEAD > conn.getlimit(
        sqlite3.SQLITE_LIMIT_LENGTH
    ):
        conn.execute("DELETE FROM snapshot")
        return
    for sql in TRIGGERS.values():
        conn.execute(sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
    conn.execute(
        "INSERT OR REPLACE INTO snapshot VALUES "
        "(1, (SELECT value FROM meta WHERE key = 'generation'), ?, ?)",
        (memoryview(ids), memoryview(vectors.reshape(-1))),
    )


def with_added(before: Matrix, ids: np.ndarray, vectors: np.ndarray) -> Matrix:
    """``before`` with new (not stored) ``ids`` and their ``vectors``, in id
    order."""
    all_ids = np.concatenate([before[0], ids])
    matrix = np.concatenate([before[1], vectors])
    if len(all_ids) > 1 and not np.all(all_ids[1:] > all_ids[:-1]):
        order = np.argsort(all_ids, kind="stable")
        all_ids, matrix = all_ids[order], matrix[order]
    return all_ids, matrix


def with_updated(before: Matrix, ids: np.ndarray, vectors: np.ndarray) -> Matrix:
    """``before`` with the stored ``ids``' vectors replaced by ``vectors``."""
    matrix = before[1].copy()
    matrix[np.searchsorted(before[0], ids)] = vectors
    return before[0], matrix


def with_deleted(before: Matrix, ids: np.ndarray) -> Matrix:
    """``before`` without the stored ``ids``."""
    keep = ~np.isin(before[0], ids)
    return before[0][keep], before[1][keep]
