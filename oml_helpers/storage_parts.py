"""The parts of ``oml_helpers.storage``: errors, input checks and the search kernel (no SQL here)."""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np


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
        if len(values) != n:
            raise MetadataError(f"{name} has {len(values)} values for {n} ids; give one per id (None for empty).")
        plain = {"int": int, "str": str, "bool": bool}[kind_name]
        if set(map(type, values)) <= {plain, type(None)}:  # the usual case, checked at C speed
            checked.append(list(values))
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
