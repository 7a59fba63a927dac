"""The search kernel of ``oml_helpers.storage``: an int8 shortlist with a proven error bound, then exact distances.

A search reads every stored vector once, so its speed is set by how many bytes it reads. Next to its
float32 vectors, the store keeps each vector as int8 codes with one scale per row (``quantize_int8``): a
quarter of the bytes. A search computes approximate scores from the codes with an exact integer
matrix product (``torch._int_mm``), widens them by a bound on the quantisation error that holds for
every row, keeps every row that could still be among the ``k`` nearest, and ranks those candidates by
their exact float64 distance. The answer is the exact top ``k``, as from a float64 brute force.

Where the int8 product is unavailable, fails a spot check against numpy (it returns garbage for
dimension 1 in torch 2.14) or could overflow int32 (dimension over 133,000), the shortlist comes from
one float32 product instead, as before. The store accepts nonzero rows whose largest value is between
1e-15 and 1e15, so that squared norms stay normal float32 numbers.
"""

from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

import numpy as np

if TYPE_CHECKING:
    import torch

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


class MetricTerms(NamedTuple):
    """What a metric's approximate scores need from the stored rows."""

    weight: "torch.Tensor"  # float32 [n]: multiplies each row's int8 dot product (with the query's scale)
    offset: Optional["torch.Tensor"]  # float32 [n] added per row (euclidean: |x|^2), or None
    factor: float  # how many times the dot product's error enters a score (euclidean: 2)
    largest_residual: float  # the largest r_x (cosine: r_x / |x|)
    largest_norm: float  # the largest |x| + r_x (cosine: 1 + r_x / |x|)


def _float_tensor(array: np.ndarray) -> "torch.Tensor":
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class Int8Index:
    """The int8 codes of stored vectors and the per-row numbers a search needs, computed once per load."""

    def __init__(self, codes: np.ndarray, stats: np.ndarray):
        """
        Args:
            codes, stats: ``quantize_int8`` of the stored vectors, in row order.
        """
        self.codes, self.stats = codes, stats
        scale, residual, sq_norms = (stats[:, i].astype(np.float64) for i in range(3))
        norms = np.sqrt(sq_norms)
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        relative = (residual * inverse).max(initial=0)
        self.terms = {  # score = weight * dot + offset; euclidean: |x|^2 - 2 q.x, cosine: -q.x / |x| (0 for x = 0)
            "euclidean": MetricTerms(_float_tensor(-2 * scale), _float_tensor(sq_norms), 2.0,
                                     residual.max(initial=0), (norms + residual).max(initial=0)),
            "cosine": MetricTerms(_float_tensor(-scale * inverse), None, 1.0, relative, 1 + relative),
        }
        self.spots = np.unique(np.linspace(0, len(codes) - 1, num=min(len(codes), 8)).astype(np.int64))

    @property
    def sq_norms(self) -> np.ndarray:
        """float32 ``[n]`` squared norms of the rows."""
        return self.stats[:, 2]

    def subset(self, rows: np.ndarray) -> "Int8Index":
        """The index of some rows only (for a filtered search).

        Args:
            rows: Row positions to keep.

        Returns:
            A new index over those rows, in that order.
        """
        return Int8Index(self.codes[rows], self.stats[rows])

    def _prepare(self, queries: np.ndarray, metric: str) -> Tuple[MetricTerms, np.ndarray, np.ndarray, np.ndarray]:
        """The metric's terms, the queries' codes and scales, and each query's ``margin``.

        With ``q ~ s_q c_q`` and ``x ~ s_x c_x`` (residual norms ``r_q``, ``r_x``), the error of
        ``s_q s_x (c_q . c_x)`` as ``q . x`` is at most ``|q| r_x + r_q (|x| + r_x)``; with the largest terms
        over the rows (for cosine, divided by ``|x|``), ``margin`` bounds the error of every row's score.
        """
        terms = self.terms[metric]
        query_codes, query_stats = quantize_int8(queries)
        query_norms, query_residual = np.linalg.norm(queries.astype(np.float64), axis=1), query_stats[:, 1]
        margin = terms.factor * (query_norms * terms.largest_residual + query_residual * terms.largest_norm)
        margin += ROUNDING_SLACK * (query_norms + query_residual + terms.largest_norm) ** 2  # float32 rounding
        return terms, query_codes, query_stats[:, :1], margin

    def _scores(self, terms: MetricTerms, query_codes: np.ndarray, query_scale: np.ndarray) -> Optional["torch.Tensor"]:
        """Approximate float32 scores ``[n_queries, n]``, lower is nearer; None if the int8 product is unusable."""
        import torch

        dots = _int8_dots(query_codes, self.codes, self.spots)
        if dots is None:
            return None
        scores = dots.float().mul_(terms.weight).mul_(torch.from_numpy(query_scale))
        return scores if terms.offset is None else scores.add_(terms.offset)

    def approximate_scores(self, queries: np.ndarray, metric: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Every row's approximate score and each query's margin, to see (or test) the bound.

        Args:
            queries: float32 ``[n_queries, dim]``.
            metric: ``"euclidean"`` (score ``|x|^2 - 2 q.x``) or ``"cosine"`` (score ``-q.x / |x|``).

        Returns:
            ``(scores [n_queries, n], margin [n_queries])`` with ``|score - exact score| <= margin``, or None
            if the int8 product is unusable here.
        """
        terms, query_codes, query_scale, margin = self._prepare(queries, metric)
        scores = self._scores(terms, query_codes, query_scale)
        return None if scores is None else (scores.numpy(), margin)

    def shortlist(self, queries: np.ndarray, k: int, metric: str) -> Optional[List[np.ndarray]]:
        """Rows that may hold each query's top ``k``; None if the int8 product is unusable here.

        The ``k``-th smallest approximate score plus the margin is at least the true ``k``-th score, and a
        row whose approximate score is more than that plus another margin cannot be in the top ``k``.

        Args:
            queries: float32 ``[n_queries, dim]``.
            k: Neighbours wanted, at most the number of rows.
            metric: ``"euclidean"`` or ``"cosine"``.

        Returns:
            One array of row positions per query, or None.
        """
        import torch

        if self.codes.shape[1] * INT8_MAX ** 2 > np.iinfo(np.int32).max:  # int32 sums could wrap around
            return None
        terms, query_codes, query_scale, margin = self._prepare(queries, metric)
        width = _float_tensor(2 * margin)
        shortlists = []
        for start in range(0, len(queries), QUERY_BLOCK):  # torch from here: its top-k beats np.partition 4x
            block = slice(start, start + QUERY_BLOCK)
            scores = self._scores(terms, query_codes[block], query_scale[block])
            if scores is None:
                return None
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
