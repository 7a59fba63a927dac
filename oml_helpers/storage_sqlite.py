"""The SQLite side of ``oml_helpers.storage``: connection, schema, and the chunked vector layout.

Metadata is one row per item in ``items``. Vectors live in ``chunks``: each row holds up to
``chunk_rows`` vectors as one float32 BLOB plus the int64 ids they belong to, in the same order, so
a cold load is a few hundred large reads and ``np.frombuffer``, not one Python object per item. Each
chunk also keeps the vectors' int8 codes and row statistics (``storage_search.quantize_int8``), written
with the vectors, for the search's shortlist.
``items.chunk`` says which chunk holds an item's vector. Every function here runs inside the
caller's transaction; the functions that write keep ``items`` and ``chunks`` in step.
"""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pandas as pd

from oml_helpers.storage_parts import StoreError, StoreFileError
from oml_helpers.storage_search import quantize_int8

SCHEMA_VERSION = 3  # 1: one float32 BLOB per item (slow cold load); 2: vectors in chunks; 3: + int8 codes
APPLICATION_ID = 0x4F4D4C45  # "OMLE", written in the file header: marks the file as an embedding store
BUSY_TIMEOUT_MS = 10_000
MMAP_BYTES = 1 << 30  # read through a memory map: fewer copies on a full load
PAGE_SIZE = 65_536  # large pages: a chunk BLOB spans few overflow pages
CHUNK_BYTES = 1 << 20  # about 1 MiB of vectors per chunk
ID_DTYPE, VECTOR_DTYPE = np.dtype("<i8"), np.dtype("<f4")  # fixed byte order: files move between machines
CODE_DTYPE, STATS_DTYPE = np.dtype("i1"), np.dtype("<f4")  # int8 codes; scale, residual, squared norm

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chunks (
    chunk INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n > 0),
    ids BLOB NOT NULL CHECK (length(ids) = 8 * n),
    vectors BLOB NOT NULL CHECK (length(vectors) = 4 * {dim} * n),
    codes BLOB NOT NULL CHECK (length(codes) = {dim} * n),
    stats BLOB NOT NULL CHECK (length(stats) = 12 * n));
CREATE TABLE items (
    id INTEGER PRIMARY KEY, chunk INTEGER NOT NULL, label INTEGER, path TEXT, split TEXT,
    is_query INTEGER CHECK (is_query IN (0, 1)), is_gallery INTEGER CHECK (is_gallery IN (0, 1)));
"""


def chunk_rows_for(dim: int) -> int:
    """Vectors per chunk for a dimension: about ``CHUNK_BYTES`` of float32."""
    return max(1, CHUNK_BYTES // (4 * dim))


def connect(path: Path) -> sqlite3.Connection:
    """A connection with WAL, busy timeout and durable commits; we issue BEGIN/COMMIT ourselves."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes effect on a new, empty file
    conn.execute("PRAGMA journal_mode = WAL")  # readers read while one writer writes
    conn.execute("PRAGMA synchronous = FULL")  # each commit is on disk when add() returns
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


def create_schema(conn: sqlite3.Connection, meta: Dict[str, object], dim: int) -> None:
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    for statement in SCHEMA.format(dim=int(dim)).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])


def read_meta(path: Path) -> dict:
    """The meta table of a store, read through a read-only connection; StoreFileError if it is no store."""
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as ro:
            app_id, version = (ro.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version"))
            tables = [r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if app_id != APPLICATION_ID or not {"meta", "items"} <= set(tables):
                raise StoreFileError(f"{path} is a SQLite database but not an embedding store (tables: {tables}). "
                                     "Give the path of a store made by EmbeddingStore.create.")
            if version != SCHEMA_VERSION or "chunks" not in tables:
                raise StoreFileError(f"{path} has store schema version {version}; this code reads version "
                                     f"{SCHEMA_VERSION}. Use the matching oml_helpers version, or create the "
                                     "store again from your embeddings with EmbeddingStore.create.")
            return dict(ro.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise StoreFileError(f"{path} could not be read as a SQLite database ({e}); is it damaged?") from e


def read_vectors(conn: sqlite3.Connection, dim: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All ids, vectors, int8 codes and row statistics in storage order: one read per chunk.

    Returns:
        int64 ``[n]``, float32 ``[n, dim]``, int8 ``[n, dim]`` and float32 ``[n, 3]``, each allocated once
        and filled chunk by chunk, so the peak memory is the arrays plus one chunk.
    """
    n = conn.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()[0]
    ids, matrix = np.empty(n, np.int64), np.empty((n, dim), np.float32)
    codes, stats, at = np.empty((n, dim), np.int8), np.empty((n, 3), np.float32), 0
    for count, *blobs in conn.execute("SELECT n, ids, vectors, codes, stats FROM chunks ORDER BY chunk"):
        for array, blob, dtype in zip((ids, matrix, codes, stats), blobs, (ID_DTYPE, VECTOR_DTYPE, CODE_DTYPE, STATS_DTYPE)):
            array[at:at + count] = np.frombuffer(blob, dtype).reshape(array[at:at + count].shape)
        at += count
    if conn.execute("SELECT count(*) FROM items").fetchone()[0] != n:
        raise StoreError("The store is inconsistent: items and chunks disagree. Was it edited by hand?")
    return ids, matrix, codes, stats


def read_filter_columns(conn: sqlite3.Connection) -> pd.DataFrame:
    """id, path, label, split, is_query and is_gallery of every item, sorted by id, with nullable dtypes."""
    rows = conn.execute("SELECT id, path, label, split, is_query, is_gallery FROM items ORDER BY id").fetchall()
    ids, paths, labels, splits, is_query, is_gallery = zip(*rows) if rows else ((),) * 6
    return pd.DataFrame({"id": np.array(ids, dtype=np.int64), "path": pd.array(paths, dtype=object),
                         "label": pd.array(labels, dtype="Int64"),
                         "split": pd.array(splits, dtype=object), "is_query": pd.array(is_query, dtype="boolean"),
                         "is_gallery": pd.array(is_gallery, dtype="boolean")})


def id_rows(conn: sqlite3.Connection, column: str, ids: np.ndarray) -> List[tuple]:
    """``(id, column)`` of the stored ids among ``ids``, in batches under SQLite's limit on parameters.

    ``column`` is one of the store's own column names, never a caller's string; ids are parameters.
    """
    ids, found = np.asarray(ids).tolist(), []
    for start in range(0, len(ids), 30_000):
        part = ids[start:start + 30_000]
        found += conn.execute(f"SELECT id, {column} FROM items WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
    return found


def plan_append(conn: sqlite3.Connection, ids: np.ndarray, vectors: np.ndarray,
                chunk_rows: int) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray, np.ndarray]]]:
    """Where new vectors go: the last chunk is topped up first, then new chunks follow.

    Returns:
        The chunk of each new id, and the chunks to write as ``(chunk, ids, vectors)`` (whole contents).
    """
    last = conn.execute("SELECT chunk, n, ids, vectors FROM chunks ORDER BY chunk DESC LIMIT 1").fetchone()
    pieces, where, start = [], np.empty(len(ids), np.int64), 0
    next_chunk = 0 if last is None else last[0] + 1
    if last is not None and last[1] < chunk_rows and len(ids):
        start = min(chunk_rows - last[1], len(ids))
        old_vectors = np.frombuffer(last[3], VECTOR_DTYPE).reshape(last[1], -1)
        pieces.append((last[0], np.concatenate([np.frombuffer(last[2], ID_DTYPE), ids[:start]]),
                       np.concatenate([old_vectors, vectors[:start]])))
        where[:start] = last[0]
    for number, begin in enumerate(range(start, len(ids), chunk_rows), start=next_chunk):
        pieces.append((number, ids[begin:begin + chunk_rows], vectors[begin:begin + chunk_rows]))
        where[begin:begin + chunk_rows] = number
    return where, pieces


def write_chunks(conn: sqlite3.Connection, pieces: List[Tuple[int, np.ndarray, np.ndarray]]) -> None:
    """Write (or replace) whole chunks, with their vectors' int8 codes and statistics; an empty chunk is deleted."""
    def rows() -> Iterator[tuple]:
        for number, ids, vectors in pieces:
            vectors = np.ascontiguousarray(vectors, VECTOR_DTYPE)
            codes, stats = quantize_int8(vectors)
            yield (number, len(ids), ids.astype(ID_DTYPE).tobytes(), vectors.tobytes(), codes.tobytes(),
                   stats.astype(STATS_DTYPE).tobytes())

    conn.executemany("DELETE FROM chunks WHERE chunk = ?", [(p[0],) for p in pieces if len(p[1]) == 0])
    conn.executemany("INSERT OR REPLACE INTO chunks (chunk, n, ids, vectors, codes, stats) VALUES (?, ?, ?, ?, ?, ?)",
                     (row for row in rows() if row[1] > 0))


def rewrite_chunks(conn: sqlite3.Connection, ids: np.ndarray, dim: int, new_vectors: np.ndarray = None) -> None:
    """Replace the vectors of stored ``ids`` by ``new_vectors``, or, if None, remove them from their chunks.

    Only the chunks holding these ids are read and rewritten. ``items`` must still list the ids.
    """
    located: Dict[int, List[int]] = {}
    for item_id, chunk in id_rows(conn, "chunk", ids):
        located.setdefault(chunk, []).append(item_id)
    row_of = {item_id: row for row, item_id in enumerate(ids.tolist())}
    pieces = []
    for chunk, members in sorted(located.items()):
        n, id_blob, vector_blob = conn.execute("SELECT n, ids, vectors FROM chunks WHERE chunk = ?", (chunk,)).fetchone()
        chunk_ids = np.frombuffer(id_blob, ID_DTYPE)
        chunk_vectors = np.frombuffer(vector_blob, VECTOR_DTYPE).reshape(n, dim).copy()
        hit = np.isin(chunk_ids, members)
        if new_vectors is None:
            pieces.append((chunk, chunk_ids[~hit], chunk_vectors[~hit]))
        else:
            chunk_vectors[hit] = new_vectors[[row_of[i] for i in chunk_ids[hit].tolist()]]
            pieces.append((chunk, chunk_ids, chunk_vectors))
    write_chunks(conn, pieces)
