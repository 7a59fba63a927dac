"""What ``oml_helpers.storage`` accepts: its result types, its errors, and the
checks of every input and file."""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import pandas as pd

METADATA_COLUMNS = ("label", "path", "split", "is_query", "is_gallery")
FILTERS = ("ids", "label", "split", "is_query", "is_gallery")
# nonzero rows' largest |value| in [1e-15, 1e15]: float32 products stay normal
MAX_ABS_VALUE = 1e15
# fixed byte order: a file moves between machines
VECTOR_DTYPE = np.dtype("<f4")
Filter = Union[None, bool, int, str, Sequence[Any]]


class LoadResult(NamedTuple):
    ids: np.ndarray  # int64 [n], ascending
    vectors: np.ndarray  # float32 [n, dim]
    # one row per id: id, path, label, split, is_query, is_gallery
    metadata: pd.DataFrame


class SearchResult(NamedTuple):
    ids: np.ndarray  # int64 [n_queries, k], or [k] for one 1-D query
    distances: np.ndarray  # float32, ascending along the last axis
    paths: np.ndarray  # object (str or None), same shape


class StoreError(ValueError):
    """Base class of the store's errors; nothing was written when one is raised."""


class StoreFileError(StoreError):
    """The path holds no usable store: missing, not SQLite, another schema,
    already taken, or damaged."""


class EmbeddingError(StoreError):
    """Vectors (or queries) of the wrong type, shape or dtype, or with NaN/inf
    values."""


class MetadataError(StoreError):
    """Ids or metadata of the wrong type or length."""


class DuplicateIdError(StoreError):
    """Ids repeated within a batch or already stored."""


class UnknownIdError(StoreError):
    """Ids given to ``update`` or ``delete`` that are not stored."""


def check_vectors(
    x: Any, n: Optional[int], dim: int, what: str = "embeddings"
) -> np.ndarray:
    """``x`` as a C-contiguous float32 ``[n, dim]`` array of finite values (any
    ``n`` if None); else EmbeddingError."""
    if not isinstance(x, np.ndarray):
        raise EmbeddingError(
            f"{what} must be a numpy array, got {type(x).__name__}; "
            "for a torch tensor use .cpu().numpy()."
        )
    if x.dtype != np.float32:
        raise EmbeddingError(
            f"{what}: dtype is {x.dtype}, the store keeps float32: "
            "pass x.astype(np.float32)."
        )
    if x.ndim != 2 or x.shape[1] != dim or (n is not None and x.shape[0] != n):
        raise EmbeddingError(
            f"{what}: shape is {x.shape}, "
            f"the store needs ({'n' if n is None else n}, {dim})."
        )
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise EmbeddingError(
            f"{what}: {bad.sum()} row(s) hold NaN or inf, "
            f"first at row {bad.argmax()}."
        )
    largest = np.abs(x).max(axis=1, initial=0)
    if np.any(largest > MAX_ABS_VALUE) or np.any(
        (largest > 0) & (largest < 1 / MAX_ABS_VALUE)
    ):
        raise EmbeddingError(
            f"{what}: a row's largest value is {largest[largest > 0].min():.3g} to "
            f"{largest.max():.3g}; nonzero rows must lie between "
            f"{1 / MAX_ABS_VALUE:.0e} and {MAX_ABS_VALUE:.0e}: "
            "normalise the embeddings (they are usually of norm about 1)."
        )
    return np.ascontiguousarray(x, VECTOR_DTYPE)


def check_ids(ids: Any, unique: bool = False) -> np.ndarray:
    """``ids`` as 1-D int64; MetadataError otherwise, DuplicateIdError if
    ``unique`` and one repeats."""
    array = np.asarray(ids)
    if array.ndim != 1 or not (array.dtype.kind in "iu" or array.size == 0):
        raise MetadataError(
            "ids must be a 1-D list of integers, "
            f"got {array.dtype} with shape {array.shape}."
        )
    if (
        array.dtype.kind == "u"
        and array.size
        and array.max() > np.iinfo(np.int64).max
    ):
        raise MetadataError(
            "ids must fit in a signed 64-bit integer (SQLite's INTEGER)."
        )
    values, counts = np.unique(array, return_counts=True)
    if unique and len(values) != len(array):
        raise DuplicateIdError(
            f"ids repeat within the batch: {values[counts > 1][:10].tolist()}. "
            "Give each item its own id."
        )
    return array.astype(np.int64)


def check_metadata(n: int, *columns: Optional[Sequence]) -> List[Optional[list]]:
    """Each of label, path, split, is_query, is_gallery as plain Python values
    (None: empty), or None if not given."""
    checked: List[Optional[list]] = []
    for name, values in zip(METADATA_COLUMNS, columns):
        if values is None:
            checked.append(None)
            continue
        if len(values) != n:
            raise MetadataError(
                f"{name} has {len(values)} values for {n} ids; "
                "give one per id (None for empty)."
            )
        kind = {"label": int, "path": str, "split": str}.get(name, bool)
        # the usual case, checked at C speed
        if set(map(type, values)) <= {kind, type(None)}:
            checked.append(list(values))
            continue
        values = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else v
            for v in values
        ]
        accepted = {int: (int, np.integer), str: (str,), bool: (bool, np.bool_)}[
            kind
        ]
        bad = [
            v
            for v in values
            if v is not None
            and (
                not isinstance(v, accepted)
                or (kind is int and isinstance(v, (bool, np.bool_)))
            )
        ]
        if bad:
            raise MetadataError(
                f"{name} must hold {kind.__name__} or None, "
                f"got {bad[0]!r} ({type(bad[0]).__name__})."
            )
        checked.append([v if v is None else kind(v) for v in values])
    return checked


def check_search_options(k: Any, metric: str) -> None:
    """StoreError unless ``k`` is a positive integer and ``metric`` one the store
    knows."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise StoreError(f"k must be a positive integer, got {k!r}.")
    if metric not in ("euclidean", "cosine"):
        raise StoreError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")


def select_rows(meta: pd.DataFrame, filters: dict) -> np.ndarray:
    """Rows of ``meta`` whose columns equal (one of) the filters' values; a None
    filter keeps every row."""
    keep = np.ones(len(meta), dtype=bool)
    for column, wanted in filters.items():
        if wanted is not None:
            wanted = (
                [wanted]
                if isinstance(wanted, (bool, int, str, np.generic))
                else list(wanted)
            )
            keep &= (
                meta["id" if column == "ids" else column]
                .isin(wanted)
                .to_numpy(dtype=bool, na_value=False)
            )
    return np.flatnonzero(keep)


def read_meta(path: Path, application_id: int, schema_version: int) -> dict:
    """The ``meta`` table, read through a read-only connection; StoreFileError if
    the file is no store."""
    try:
        with closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as ro:
            app_id, version = (
                ro.execute(f"PRAGMA {p}").fetchone()[0]
                for p in ("application_id", "user_version")
            )
            tables = [
                r[0]
                for r in ro.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            ]
            if app_id != application_id or not {"meta", "items"} <= set(tables):
                raise StoreFileError(
                    f"{path} is a SQLite database but not an embedding store "
                    f"(tables: {tables}). "
                    "Give the path of a store made by EmbeddingStore.create."
                )
            if version != schema_version:
                raise StoreFileError(
                    f"{path} has store schema version {version}; "
                    f"this code reads version {schema_version}. "
                    "Create the store again from your embeddings with "
                    "EmbeddingStore.create, "
                    "or use the oml_helpers version that wrote it."
                )
            return dict(ro.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise StoreFileError(
            f"{path} could not be read as a SQLite database ({e}); is it damaged?"
        ) from e


def damaged_error(
    path: Path, dim: int, ids: Sequence[int], blobs: Sequence[Any]
) -> StoreFileError:
    """The error naming the first item whose vector is not ``dim`` float32
    numbers: the file is damaged."""
    expected = dim * VECTOR_DTYPE.itemsize
    for item_id, blob in zip(ids, blobs):
        if not isinstance(blob, bytes) or len(blob) != expected:
            got = (
                f"{len(blob)} bytes"
                if isinstance(blob, bytes)
                else f"a {type(blob).__name__}"
            )
            return StoreFileError(
                f"{path} is damaged: the vector of item id {item_id} is {got}, "
                f"not {expected} bytes ({dim} float32). "
                "It was written outside EmbeddingStore; "
                "update() or delete() that item, or build the store again."
            )
    return StoreFileError(
        f"{path} is damaged: "
        f"its vectors do not add up to {dim} float32 numbers each."
    )
