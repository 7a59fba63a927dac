"""The search kernel of ``oml_helpers.storage``: an int8 shortlist with a proven error bound, then exact distances.

A search reads every stored vector once, so its speed is set by how many bytes it reads. Next to its
float32 vectors, the store keeps each vector as int8 codes with one scale per row (``quantize_int8``): a
quarter of the bytes. A search computes approximate scores from the codes with an exact integer
matrix product (``torch._int_mm``), widens them by a bound on the quantisation error that holds for
every row, keeps every row that could still be among the ``k`` nearest, and ranks those candidates by
their exact float64 distance. The answer is the exact top ``k``, as from a float64 brute force.

Where the int8 product is unavailable or fails a spot check against numpy (it returns garbage for
dimension 1 in torch 2.14), the shortlist comes from one float32 product instead, as before.
"""

from typing import List, Optional, Tuple

import numpy as np

QUERY_BLOCK = 64  # queries scored together: bounds the temporary [block, n] arrays
INT8_MAX = 127
ROUNDING_SLACK = 1e-5  # relative; covers float32 arithmetic on the scores, far below the quantisation bound


def quantize_int8(vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """int8 codes of float32 vectors, one scale per row (``vector ~ scale * codes``), and row statistics.

    Args:
        vectors: float32 ``[n, dim]``.

    Returns:
        ``codes`` int8 ``[n, dim]``, and ``stats`` float32 ``[n, 3]``: each row's ``scale``, ``residual``
        (an upper bound on the norm of ``vector - scale * codes``, rounded up so that it stays one) and
        squared norm (the last two computed in float64).
    """
    scale = np.abs(vectors).max(axis=1, initial=0) / np.float32(INT8_MAX)
    codes = np.rint(vectors / np.where(scale > 0, scale, 1)[:, None])
    np.clip(codes, -INT8_MAX, INT8_MAX, out=codes)
    difference = np.multiply(codes, scale[:, None], dtype=np.float64)  # exact: 8-bit codes times a float32
    np.subtract(vectors, difference, out=difference)
    residual = np.sqrt(np.einsum("ij,ij->i", difference, difference)).astype(np.float32)
    residual = np.nextafter(residual, np.float32(np.inf))  # rounded up: never below the float64 value
    sq_norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64).astype(np.float32)
    return codes.astype(np.int8), np.stack([scale, residual, sq_norms], axis=1)


def _int8_dots(query_codes: np.ndarray, codes: np.ndarray, spots: np.ndarray) -> Optional["torch.Tensor"]:
    """Exact int32 dot products ``[n_queries, n]`` of int8 codes, or None where torch cannot give them.

    ``torch._int_mm`` is a private op, so its answer is checked against numpy on the rows ``spots``.
    """
    import torch  # here, not at the top: opening and writing a store stay free of torch's import time

    try:
        dots = torch._int_mm(torch.from_numpy(query_codes), torch.from_numpy(codes).T)
    except (AttributeError, RuntimeError):  # absent, or refusing on some builds
        return None
    expected = query_codes.astype(np.int32) @ codes[spots].astype(np.int32).T
    return dots if np.array_equal(dots[:, spots].numpy(), expected) else None


class Int8Index:
    """The int8 codes of stored vectors and the per-row numbers a search needs, computed once per load."""

    def __init__(self, codes: np.ndarray, stats: np.ndarray):
        """
        Args:
            codes, stats: ``quantize_int8`` of the stored vectors, in row order.
        """
        import torch

        self.codes, self.stats = codes, stats
        scale, residual, sq_norms = (stats[:, i].astype(np.float64) for i in range(3))
        norms = np.sqrt(sq_norms)
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        # Per metric: the dot products' weight per row, an offset per row, and the largest error terms.
        self.euclidean = (as_tensor(-2 * scale), as_tensor(sq_norms), residual.max(initial=0),
                          (norms + residual).max(initial=0))
        self.cosine = (as_tensor(-scale * inverse), None, (residual * inverse).max(initial=0))
        self.spots = np.unique(np.linspace(0, len(codes) - 1, num=min(len(codes), 8)).astype(np.int64))

    def subset(self, rows: np.ndarray) -> "Int8Index":
        """The index of some rows only (for a filtered search)."""
        return Int8Index(self.codes[rows], self.stats[rows])

    def shortlist(self, queries: np.ndarray, k: int, metric: str) -> Optional[List[np.ndarray]]:
        """Rows that may hold each query's top ``k``; None if the int8 product is unusable here.

        With ``q ~ s_q c_q`` and ``x ~ s_x c_x`` (residual norms ``r_q``, ``r_x``), the error of
        ``s_q s_x (c_q . c_x)`` as ``q . x`` is at most ``|q| r_x + r_q (|x| + r_x)``. Its largest value over
        the rows (for cosine, divided by ``|x|``) bounds every score's error by one ``margin`` per query.
        The ``k``-th smallest score plus the margin is then at least the true ``k``-th score, and a row
        scoring more than that plus another margin cannot be in the top ``k``.
        """
        import torch

        query_codes, query_stats = quantize_int8(queries)
        query_residual = query_stats[:, 1].astype(np.float64)
        query_norms = np.linalg.norm(queries.astype(np.float64), axis=1)
        if metric == "euclidean":  # score |x|^2 - 2 q.x: the squared distance less |q|^2
            weight, offset, largest_residual, largest = self.euclidean
            margin = 2 * (query_norms * largest_residual + query_residual * largest)
            margin += ROUNDING_SLACK * (query_norms + query_residual + largest) ** 2
        else:  # score -q.x / |x|: |q| times (cosine distance - 1); zero rows score 0 exactly
            weight, offset, relative = self.cosine
            margin = query_norms * relative + query_residual * (1 + relative)
            margin += ROUNDING_SLACK * (query_norms + query_residual) * (1 + relative)
        width = torch.from_numpy(2 * margin).float()
        shortlists = []
        for start in range(0, len(queries), QUERY_BLOCK):  # torch from here: its top-k beats np.partition 4x
            block = slice(start, start + QUERY_BLOCK)
            dots = _int8_dots(query_codes[block], self.codes, self.spots)
            if dots is None:
                return None
            scores = dots.float().mul_(weight).mul_(torch.from_numpy(query_stats[block, :1]))
            if offset is not None:
                scores.add_(offset)
            kth = scores.topk(k, dim=1, largest=False).values[:, -1]
            keep = scores <= (kth + width[block])[:, None]
            shortlists += [np.flatnonzero(row) for row in keep.numpy()]
        return shortlists


def _shortlist_float32(matrix: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray, k: int,
                       metric: str) -> List[np.ndarray]:
    """Rows that may hold each query's top ``k``, from one float32 matrix product.

    The expansion |q|^2 - 2 q.x + |x|^2 loses digits to cancellation when neighbours are very close, so
    rows within a small tolerance of the ``k``-th score are kept too.
    """
    scores = (matrix @ queries[0])[None] if len(queries) == 1 else queries @ matrix.T
    query_sq_norms = np.einsum("ij,ij->i", queries, queries)
    if metric == "euclidean":
        scores *= -2
        scores += sq_norms
        tolerance = 1e-5 * (query_sq_norms + (sq_norms.max() if len(sq_norms) else 0))
    else:
        norms = np.sqrt(sq_norms)
        scores /= -np.where(norms > 0, norms, np.inf)
        tolerance = 1e-5 * np.sqrt(query_sq_norms)
    return _within(scores, k, tolerance)


def _within(scores: np.ndarray, k: int, width: np.ndarray) -> List[np.ndarray]:
    """For each row of ``scores``, the columns scoring at most its ``k``-th smallest score plus ``width``."""
    kth = np.partition(scores, k - 1, axis=1)[:, k - 1] if k < scores.shape[1] else scores.max(axis=1)
    return [np.flatnonzero(row <= limit) for row, limit in zip(scores, kth + width)]


def top_k(matrix: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray, k: int, metric: str,
          index: Optional[Int8Index] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``[n_queries, k]`` of the rows nearest to each query and their distances, nearest first.

    Args:
        matrix: float32 ``[n, dim]`` vectors.
        sq_norms: float32 ``[n]`` squared norms of the rows.
        queries: float32 ``[n_queries, dim]``.
        k: Neighbours per query, at most ``n``.
        metric: ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity; zero vectors give 1).
        index: The rows' ``Int8Index``, for the int8 shortlist; without it, the shortlist is float32.

    Returns:
        Row indices int64 and distances float32, both ``[n_queries, k]``; ties go to the lower row.
    """
    n_queries = len(queries)
    if k == 0:
        return np.zeros((n_queries, 0), dtype=np.int64), np.zeros((n_queries, 0), dtype=np.float32)
    shortlists = None if index is None else index.shortlist(queries, k, metric)
    if shortlists is None:
        shortlists = _shortlist_float32(matrix, sq_norms, queries, k, metric)
    found = np.empty((n_queries, k), dtype=np.int64)
    distances = np.empty((n_queries, k), dtype=np.float64)
    for i, (query, candidates) in enumerate(zip(queries.astype(np.float64), shortlists)):
        vectors = matrix[candidates].astype(np.float64)
        if metric == "euclidean":
            exact = np.sqrt(((vectors - query) ** 2).sum(axis=1))
        else:
            denominator = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
            exact = 1 - np.divide(vectors @ query, denominator, out=np.zeros(len(vectors)), where=denominator > 0)
        best = np.lexsort((candidates, exact))[:k]
        found[i], distances[i] = candidates[best], exact[best]
    return found, distances.astype(np.float32)
