"""The parts of ``oml_helpers.storage``: errors, input checks, SQLite access and the search kernel."""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4F4D4C45  # "OMLE", written in the file header: marks the file as an embedding store
BUSY_TIMEOUT_MS = 10_000
MMAP_BYTES = 1 << 30  # read through a memory map: about a third faster for a full load


class StoreError(ValueError):
    """Base class of the store's errors; nothing was written when one is raised."""


class StoreFileError(StoreError):
    """The path holds no store: missing, not a SQLite database, another schema, or already taken."""


class EmbeddingError(StoreError):
    """Vectors (or queries) of the wrong shape, dimension or dtype, or with NaN/inf values."""


class MetadataError(StoreError):
    """Ids or metadata of the wrong type or length."""


class DuplicateIdError(StoreError):
    """Ids repeated within a batch or already stored."""


class UnknownIdError(StoreError):
    """Ids given to ``update`` or ``delete`` that are not stored."""



def check_vectors(x: Any, n: Optional[int], dim: int, what: str = "embeddings") -> np.ndarray:
    """``x`` as a C-contiguous float32 ``[n, dim]`` array of finite values (any ``n`` when ``n`` is None).

    Raises:
        EmbeddingError: Naming the problem and the fix.
    """
    if not isinstance(x, np.ndarray):
        raise EmbeddingError(f"{what} must be a numpy array, got {type(x).__name__}; for a torch tensor use .numpy().")
    if x.dtype != np.float32:
        raise EmbeddingError(f"{what}: dtype is {x.dtype}, the store keeps float32: pass x.astype(np.float32).")
    if x.ndim != 2 or x.shape[1] != dim or (n is not None and x.shape[0] != n):
        raise EmbeddingError(f"{what}: shape is {x.shape}, the store needs ({'n' if n is None else n}, {dim}).")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise EmbeddingError(f"{what}: {bad.sum()} row(s) hold NaN or inf, first at row {bad.argmax()}.")
    return np.ascontiguousarray(x)


def check_ids(ids: Any) -> np.ndarray:
    """``ids`` as a 1-D int64 array; raises MetadataError otherwise."""
    array = np.asarray(ids)
    if array.ndim != 1 or not (array.dtype.kind in "iu" or array.size == 0):
        raise MetadataError(f"ids must be a 1-D list of integers, got {array.dtype} with shape {array.shape}.")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise MetadataError("ids must fit in a signed 64-bit integer (SQLite's INTEGER).")
    return array.astype(np.int64)


def check_metadata(n: int, *columns: Optional[Sequence]) -> List[Optional[list]]:
    """Each metadata list as plain Python values (None for empty cells), or None where not given."""
    kinds = {"label": ((int, np.integer), "int"), "path": (str, "str"), "split": (str, "str"),
             "is_query": ((bool, np.bool_), "bool"), "is_gallery": ((bool, np.bool_), "bool")}
    checked = []
    for (name, (kind, kind_name)), values in zip(kinds.items(), columns):
        if values is None:
            checked.append(None)
            continue
        values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values]
        if len(values) != n:
            raise MetadataError(f"{name} has {len(values)} values for {n} ids; give one per id (None for empty).")
        bad = [v for v in values if v is not None and (not isinstance(v, kind) or (kind_name == "int" and isinstance(v, bool)))]
        if bad:
            raise MetadataError(f"{name} must hold {kind_name} or None, got {bad[0]!r} ({type(bad[0]).__name__}).")
        checked.append([v if v is None or isinstance(v, str) else int(v) for v in values])
    return checked


def top_k(matrix: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray, k: int, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``[n_queries, k]`` of the nearest rows and their distances, nearest first."""
    n_queries = len(queries)
    if k == 0:
        return np.zeros((n_queries, 0), dtype=np.int64), np.zeros((n_queries, 0), dtype=np.float32)
    # The whole cost: one matrix product (a matrix-vector product for one query, as numpy would do).
    scores = (matrix @ queries[0])[None] if n_queries == 1 else queries @ matrix.T
    if metric == "euclidean":  # |q - x|^2 = |q|^2 - 2 q.x + |x|^2; |q|^2 does not change the order
        scores *= -2
        scores += sq_norms
    else:
        norms = np.sqrt(sq_norms)
        scores /= -np.where(norms > 0, norms, np.inf)
    top = np.argpartition(scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(np.arange(k), (n_queries, 1))
    neighbours = matrix[top]  # [n_queries, k, dim]: exact distances for the few found
    if metric == "euclidean":
        distances = np.sqrt(((neighbours - queries[:, None, :]) ** 2).sum(-1))
    else:
        q_norms = np.linalg.norm(queries, axis=1)[:, None]
        denominator = q_norms * np.sqrt(sq_norms[top])
        dots = np.einsum("qkd,qd->qk", neighbours, queries)
        distances = 1 - np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)
    order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(top, order, 1), np.take_along_axis(distances, order, 1).astype(np.float32)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with WAL, busy timeout and durable commits; we issue BEGIN/COMMIT ourselves."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly one call.
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")  # readers read while one writer writes
    conn.execute("PRAGMA synchronous = FULL")  # each commit is on disk when add() returns
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


def read_meta(path: Path) -> dict:
    """The meta table of a store, read through a read-only connection; StoreFileError if it is no store."""
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as ro:
            app_id, version = (ro.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version"))
            tables = [r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if app_id != APPLICATION_ID or not {"meta", "items"} <= set(tables):
                raise StoreFileError(f"{path} is a SQLite database but not an embedding store (tables: {tables}). "
                                     "Give the path of a store made by EmbeddingStore.create.")
            if version != SCHEMA_VERSION:
                raise StoreFileError(f"{path} has store schema version {version}; this code reads version "
                                     f"{SCHEMA_VERSION}. Use the matching oml_helpers version.")
            return dict(ro.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise StoreFileError(f"{path} could not be read as a SQLite database ({e}); is it damaged?") from e


def read_vectors(conn: sqlite3.Connection, dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """All ids (int64 ``[n]``) and vectors (read-only float32 ``[n, dim]``) sorted by id, with one query."""
    ids: List[int] = []
    vectors: List[bytes] = []
    # Streaming the rows (no fetchall) creates no list of 100k tuples: about twice faster, as the
    # garbage collector then has nothing to scan.
    for item_id, vector in conn.execute("SELECT id, vector FROM items ORDER BY id"):
        ids.append(item_id)
        vectors.append(vector)
    matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(len(ids), dim)
    return np.array(ids, dtype=np.int64), matrix


def read_filter_columns(conn: sqlite3.Connection) -> pd.DataFrame:
    """id, path, label, split, is_query and is_gallery of every item, sorted by id, with nullable dtypes."""
    rows = conn.execute("SELECT id, path, label, split, is_query, is_gallery FROM items ORDER BY id").fetchall()
    ids, paths, labels, splits, is_query, is_gallery = zip(*rows) if rows else ((),) * 6
    return pd.DataFrame({"id": np.array(ids, dtype=np.int64), "path": pd.array(paths, dtype=object),
                         "label": pd.array(labels, dtype="Int64"),
                         "split": pd.array(splits, dtype=object), "is_query": pd.array(is_query, dtype="boolean"),
                         "is_gallery": pd.array(is_gallery, dtype="boolean")})
