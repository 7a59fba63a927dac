"""The store's SQLite file: its schema, how it is created, how it is opened.

A store is a SQLite file whose header carries ``APPLICATION_ID`` ("OMLE") and
``SCHEMA_VERSION``; ``meta`` records the model name, dimension, dtype and schema
version. Creating checks the arguments before anything is written and removes a
half-made file; opening reads the header read-only first, so a file that is not a
store is left untouched.
"""

import sqlite3
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from oml_helpers.storage_checks import (
    VECTOR_DTYPE,
    StoreError,
    StoreFileError,
    read_meta,
)
from oml_helpers.storage_snapshot import SNAPSHOT_SCHEMA

# 5: rows plus a snapshot; 4: one float32 BLOB per item; 3: chunks and int8 codes
SCHEMA_VERSION = 5
# "OMLE" in the file header: marks the file as an embedding store
APPLICATION_ID = 0x4F4D4C45
# Chapter 05 prints these statements as SQLite stores them: the line breaks are
# part of the text.
SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE items (id INTEGER PRIMARY KEY, label INTEGER, path TEXT, "
    "split TEXT,\n"
    "    is_query INTEGER CHECK (is_query IN (0, 1)), "
    "is_gallery INTEGER CHECK (is_gallery IN (0, 1)),\n"
    "    vector BLOB NOT NULL CHECK "
    "(typeof(vector) = 'blob' AND length(vector) = {nbytes}))",
) + SNAPSHOT_SCHEMA


def connect(path: Path) -> sqlite3.Connection:
    """A connection with WAL, a busy timeout and durable commits; the store issues
    BEGIN and COMMIT itself.

    Args:
        path: The SQLite file.

    Returns:
        The connection, in autocommit mode (``isolation_level=None``).
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    # new files only: a full read visits fewer pages
    conn.execute("PRAGMA page_size = 65536")
    # reads map the file instead of copying pages
    conn.execute("PRAGMA mmap_size = 1073741824")
    # readers read while one writer writes
    conn.execute("PRAGMA journal_mode = WAL")
    # a commit is on disk when add() returns
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def create_file(
    path: Path, model_name: str, dim: int, dtype: str
) -> sqlite3.Connection:
    """Create an empty store file with its schema and ``meta``.

    Args:
        path: Where to create it; must not exist.
        model_name: The model whose embeddings the store will hold.
        dim: The embeddings' dimension, a positive integer.
        dtype: Only ``"float32"``.

    Returns:
        A connection to the new file.

    Raises:
        StoreFileError: If the file exists. StoreError: If ``dim`` or ``dtype`` is
            not usable. Nothing is left behind on any error.
    """
    if path.exists():
        raise StoreFileError(
            f"{path} already exists. Open it with EmbeddingStore.open, "
            "or delete it first."
        )
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise StoreError(f"dim must be a positive integer, got {dim!r}.")
    if dtype != "float32":
        raise StoreError(
            f"dtype={dtype!r} is not supported; the store keeps float32 vectors."
        )
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        nbytes = str(VECTOR_DTYPE.itemsize * int(dim))
        for statement in SCHEMA:
            conn.execute(statement.replace("{nbytes}", nbytes))
        meta = {
            "schema_version": SCHEMA_VERSION,
            "model_name": model_name,
            "dim": int(dim),
            "dtype": dtype,
            "generation": 0,
        }
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    return conn


def open_file(path: Path) -> Tuple[sqlite3.Connection, Dict[str, str]]:
    """Open an existing store file, after checking read-only that it is one.

    Args:
        path: The store's file.

    Returns:
        ``(connection, meta)``, meta being the ``meta`` table as a dict.

    Raises:
        StoreFileError: If there is no file, or it is not a store of this schema;
            the file is left untouched.
    """
    if not path.is_file():
        raise StoreFileError(
            f"No store at {path}. Check the path, "
            "or make one with EmbeddingStore.create."
        )
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise StoreFileError(
                f"{path} is not a SQLite database, so not an embedding store."
            )
    # read-only: nothing is written to a file that is not a store
    meta = read_meta(path, APPLICATION_ID, SCHEMA_VERSION)
    return connect(path), meta
