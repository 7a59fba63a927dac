"""Reading a store's ids, vectors and metadata into the in-memory cache that
``EmbeddingStore`` searches, and saving that cache as the snapshot.

The cache is a dict: ``ids`` (int64, ascending), ``matrix`` (float32, the same
order), ``sq`` (float64 squared norms), ``version`` (SQLite's ``PRAGMA
data_version`` when it was read) and, once a filter needed it, ``meta`` (a
DataFrame of the metadata columns). It is read from the fresh snapshot when there
is one (one SELECT), else from the rows (one tuple and one ``bytes`` per row, which
also finds a vector damaged behind the store's back).
"""

import sqlite3
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from oml_helpers.storage_checks import VECTOR_DTYPE, StoreFileError, damaged_error
from oml_helpers.storage_snapshot import Matrix, read_snapshot, write_snapshot

# rows joined at a time when the vectors are read: bounds the extra memory
READ_ROWS = 8192
# the metadata columns in the order the cache's reads select them
META_SELECT = "path, label, split, is_query, is_gallery"


def read_rows(
    conn: sqlite3.Connection, path: Path, dim: int, with_meta: bool
) -> Tuple[Matrix, Optional[list]]:
    """Every item's id and vector (and metadata) from the rows, in id order.

    Args:
        conn: The store's connection, inside a transaction.
        path: The store's file, named in errors.
        dim: The store's dimension.
        with_meta: Also read the five metadata columns.

    Returns:
        ``((ids, vectors), columns)``: columns is a list of five lists in
        ``META_SELECT`` order, or None without ``with_meta``.

    Raises:
        StoreFileError: If a stored vector is not a float32 BLOB of ``dim`` values.
    """
    n = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    ids, matrix, at = np.empty(n, np.int64), np.empty((n, dim), np.float32), 0
    columns = "id, vector" + (f", {META_SELECT}" if with_meta else "")
    cursor = conn.execute(f"SELECT {columns} FROM items ORDER BY id")
    meta = []
    while rows := cursor.fetchmany(READ_ROWS):
        batch_ids, blobs, *rest = zip(*rows)
        try:
            joined = b"".join(blobs)
        except TypeError:  # a value that is not a BLOB
            joined = b""
        if len(joined) != len(blobs) * dim * VECTOR_DTYPE.itemsize:
            raise damaged_error(path, dim, batch_ids, blobs)
        ids[at : at + len(rows)] = batch_ids
        matrix[at : at + len(rows)] = np.frombuffer(joined, VECTOR_DTYPE).reshape(
            len(rows), dim
        )
        at = at + len(rows)
        if with_meta:
            meta.append(rest)
    if not with_meta:
        return (ids, matrix), None
    return (ids, matrix), [[v for part in meta for v in part[i]] for i in range(5)]


def read_cache(
    conn: sqlite3.Connection, path: Path, dim: int, version: int, with_meta: bool
) -> dict:
    """The cache of every item, in one read transaction: from the snapshot if it is
    fresh, else from the rows.

    Args:
        conn: The store's connection, outside a transaction.
        path: The store's file, named in errors.
        dim: The store's dimension.
        version: ``PRAGMA data_version`` now, kept in the cache.
        with_meta: Also read the metadata (needed by filters and ``load``).

    Returns:
        The cache dict (see the module's docstring).
    """
    conn.execute("BEGIN")  # a consistent snapshot while others write
    try:
        matrix, columns = read_snapshot(conn, dim), None
        if matrix is None:
            matrix, columns = read_rows(conn, path, dim, with_meta)
        elif with_meta:
            rows = conn.execute(
                f"SELECT id, {META_SELECT} FROM items ORDER BY id"
            ).fetchall()
            ids, *columns = map(list, zip(*rows)) if rows else [[]] * 6
            if not np.array_equal(ids, matrix[0]):
                raise StoreFileError(
                    f"{path} is damaged: its snapshot's ids are not the rows' ids."
                )
    finally:
        conn.execute("COMMIT")
    return cache_of(matrix, version, columns)


def cache_of(matrix: Matrix, version: int, columns: Optional[list] = None) -> dict:
    """The in-memory cache of ``matrix``, with metadata if ``columns`` are given.

    Args:
        matrix: ``(ids, vectors)`` in id order.
        version: ``PRAGMA data_version`` the matrix belongs to.
        columns: The five metadata lists in ``META_SELECT`` order, or None.

    Returns:
        The cache dict (see the module's docstring).
    """
    ids, vectors = matrix
    cache = {
        "ids": ids,
        "matrix": vectors,
        "version": version,
        "sq": np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64),
    }
    if columns is not None:
        paths, labels, splits, is_query, is_gallery = columns
        cache["meta"] = pd.DataFrame(
            {
                "id": ids,
                "path": pd.array(paths, dtype=object),
                "label": pd.array(labels, dtype="Int64"),
                "split": pd.array(splits, dtype=object),
                "is_query": pd.array(is_query, dtype="boolean"),
                "is_gallery": pd.array(is_gallery, dtype="boolean"),
            }
        )
    return cache


def save_snapshot(
    conn: sqlite3.Connection, path: Path, dim: int, cache: Optional[dict]
) -> None:
    """Write the current ids and vectors as a fresh snapshot, in one write
    transaction of its own.

    From ``cache`` if no other connection wrote since it was read, else from the
    rows. The snapshot stays stale if another writer holds the file or a row is
    damaged: the rows stay the truth, and a later save tries again.

    Args:
        conn: The store's connection, outside a transaction.
        path: The store's file, named in errors.
        dim: The store's dimension.
        cache: The store's cache, or None.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        # locked by another writer past the timeout: try at a later close
        return
    try:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if cache is not None and cache["version"] == version:
            matrix = cache["ids"], cache["matrix"]
        elif read_snapshot(conn, dim) is not None:
            # already fresh (another store saved it)
            matrix = None
        else:
            matrix, _ = read_rows(conn, path, dim, with_meta=False)
        if matrix is not None:
            write_snapshot(conn, *matrix)
        conn.execute("COMMIT")
    except StoreFileError:
        # a row damaged behind the store's back: the snapshot stays stale
        conn.execute("ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
