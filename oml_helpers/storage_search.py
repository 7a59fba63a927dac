"""The store's exact top-k search: a float32 matrix product with a proven error
margin, then float64.

A float32 product picks a shortlist that provably holds the true top ``k``
(``float32_scores``), float64 distances rank it, so the answers are a float64 brute
force's. numpy only.
"""

from typing import List

import numpy as np

SCORE_BLOCK = 1 << 25  # float32 scores computed at a time (128 MiB)
U = 2.0**-24  # float32's unit roundoff


def float32_scores(
    matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, metric: str
) -> tuple:
    """Scores ``[n_queries, n]`` from one float32 matrix product, lower is nearer,
    and each query's margin.

    Scores are ``|x|^2 - 2 q.x`` (euclidean) or ``-q.x / |x|`` (cosine; 0 for x =
    0), and every one is within ``margin`` of its exact value: ``gamma_d |q| |x|``
    bounds the error of a float32 dot product of ``d`` terms in any order, and a few
    ``u`` cover the float32 norms and the last operations.
    """
    d, largest, q_norms = (
        matrix.shape[1],
        np.sqrt(sq.max(initial=0)),
        np.linalg.norm(queries.astype(np.float64), axis=1),
    )
    gamma = d * U / (1 - d * U) if d * U < 0.5 else np.inf
    scores = (
        (matrix @ queries[0])[None] if len(queries) == 1 else queries @ matrix.T
    )
    if metric == "euclidean":
        scores *= -2
        scores += sq.astype(np.float32)
        margin = (2 * gamma + 3 * U) * q_norms * largest + 3 * U * largest**2
    else:
        norms = np.sqrt(sq)
        scores *= -np.divide(
            1.0, norms, out=np.zeros_like(norms), where=norms > 0
        ).astype(np.float32)
        margin = (gamma + 3 * U) * q_norms
    # 1.01: the bound's own rounding; 2**-90: underflow
    return scores, 1.01 * margin + d * 2.0**-90


def shortlists(
    matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, k: int, metric: str
) -> List[np.ndarray]:
    """Rows that may hold each query's ``k`` nearest: those scoring within twice the
    margin of the ``k``-th.

    At least ``k`` rows truly score at most the ``k``-th float32 score plus the
    margin, so a row of the true top ``k`` cannot score, in float32, above that plus
    a second margin.
    """
    found: List[np.ndarray] = []
    # bounds the [block, n] float32 scores
    block = max(1, SCORE_BLOCK // max(len(matrix), 1))
    for start in range(0, len(queries), block):
        scores, margin = float32_scores(
            matrix, sq, queries[start : start + block], metric
        )
        kth = np.partition(scores, k - 1, axis=1)[:, k - 1]
        rows, columns = np.nonzero(scores <= (kth + 2 * margin)[:, None])
        found += np.split(columns, np.searchsorted(rows, np.arange(1, len(scores))))
    return found


def top_k(
    matrix: np.ndarray, sq: np.ndarray, queries: np.ndarray, k: int, metric: str
) -> tuple:
    """Rows (int64) of ``matrix`` nearest to each query and their float32 distances,
    both ``[n_queries, k]``,
    ranked in float64, ties to the lower row; ``sq``: the rows' float64 squared
    norms; ``k`` at most ``n``."""
    found = np.zeros((len(queries), k), np.int64)
    distances = np.zeros((len(queries), k), np.float64)
    if k == 0:
        return found, distances.astype(np.float32)
    for i, (query, rows) in enumerate(
        zip(queries.astype(np.float64), shortlists(matrix, sq, queries, k, metric))
    ):
        vectors = matrix[rows].astype(np.float64)
        if metric == "euclidean":
            exact = np.sqrt(((vectors - query) ** 2).sum(axis=1))
        else:
            denominator = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
            exact = 1 - np.divide(
                vectors @ query,
                denominator,
                out=np.zeros(len(rows)),
                where=denominator > 0,
            )
        best = np.lexsort((rows, exact))[:k]
        found[i], distances[i] = rows[best], exact[best]
    return found, distances.astype(np.float32)
