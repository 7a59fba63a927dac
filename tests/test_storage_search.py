"""Tests of the store's exact search: the float32 margin holds, the shortlist keeps the true top
k."""

import numpy as np
import pytest

from oml_helpers import storage_search
from oml_helpers.storage import float32_scores, shortlists, top_k


def exact_top_k(x: np.ndarray, queries: np.ndarray, k: int, metric: str):
    """float64 brute force, ties to the lower row: the answer the search must give."""
    x64, q64 = x.astype(np.float64), queries.astype(np.float64)
    if metric == "euclidean":
        d = np.sqrt(((q64[:, None, :] - x64[None]) ** 2).sum(axis=2))
    else:
        denominator = np.linalg.norm(q64, axis=1)[:, None] * np.linalg.norm(x64, axis=1)[None]
        d = 1 - np.divide(
            q64 @ x64.T, denominator, out=np.zeros_like(denominator), where=denominator > 0
        )
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


def exact_scores(x: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """The scores the float32 product approximates, in float64: |x|^2 - 2 q.x, or -q.x / |x| (0
    for x = 0)."""
    x64, q64 = x.astype(np.float64), queries.astype(np.float64)
    if metric == "euclidean":
        return (x64**2).sum(axis=1) - 2 * q64 @ x64.T
    norms = np.linalg.norm(x64, axis=1)
    return -(q64 @ x64.T) * np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)


def squared_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


def search(x: np.ndarray, queries: np.ndarray, k: int, metric: str):
    return top_k(x, squared_norms(x), queries, k, metric)


def hard_cases():
    """Data where a careless shortlist or margin goes wrong."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64)
    yield (
        "near duplicates 1e-4 apart",
        (base / np.linalg.norm(base) + 1e-4 * rng.standard_normal((3000, 64))),
    )
    yield (
        "norms from 1e-3 to 1e3",
        rng.standard_normal((2000, 32)) * np.logspace(-3, 3, 2000)[:, None],
    )
    with_zeros = rng.standard_normal((500, 16))
    with_zeros[::7] = 0
    yield "zero rows", with_zeros
    yield "exact ties", np.repeat(rng.standard_normal((50, 8)), 4, axis=0)
    yield (
        "one large coordinate",
        np.hstack([1e4 * rng.standard_normal((800, 1)), rng.standard_normal((800, 47))]),
    )
    yield "dimension 1", rng.standard_normal((500, 1))
    yield "dimension 3", rng.standard_normal((1000, 3))
    yield "dimension 1100", rng.standard_normal((300, 1100))
    yield "tiny values near 1e-15", rng.uniform(0.5, 1, (300, 8)) * 1e-15


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("name, x", list(hard_cases()), ids=[name for name, _ in hard_cases()])
def test_search_is_exact(name, x, metric):
    x = x.astype(np.float32)
    queries = np.vstack([x[:40], x[:5] * np.float32(1.001), np.zeros((1, x.shape[1]), np.float32)])
    for k in (1, 10, len(x)):
        order, distances = exact_top_k(x, queries, k, metric)
        found, got = search(x, queries, k, metric)
        assert np.array_equal(found, order), (name, metric, k)
        assert np.allclose(got, distances, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("name, x", list(hard_cases()), ids=[name for name, _ in hard_cases()])
def test_every_float32_score_is_within_the_margin(name, x, metric):
    x = x.astype(np.float32)
    rng = np.random.default_rng(7)
    queries = np.vstack(
        [
            x[:5] + rng.standard_normal((5, x.shape[1])).astype(np.float32) * np.abs(x[:5]).max(),
            rng.standard_normal((5, x.shape[1])).astype(np.float32) * np.float32(10.0),
        ]
    )
    scores, margin = float32_scores(x, squared_norms(x), queries, metric)
    error = np.abs(scores - exact_scores(x, queries, metric))
    assert np.all(error <= margin[:, None]), (name, metric, float((error / margin[:, None]).max()))


def test_the_margin_is_not_loose_by_orders_of_magnitude():
    # Sums of many equal-signed products round the most: the margin must cover such an error, and
    # stay within a factor of a few hundred of it (a margin 1e6 times too large would make every row
    # a candidate).
    x = np.full((1, 4096), 1 + 2**-12, np.float32)
    q = np.full((1, 4096), 1 - 2**-12, np.float32)
    scores, margin = float32_scores(x, squared_norms(x), q, "euclidean")
    error = abs(float(scores[0, 0]) - float(exact_scores(x, q, "euclidean")[0, 0]))
    assert error <= margin[0] <= 1e4 * max(error, 2**-24)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_shortlist_holds_the_top_k_and_is_short(metric):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[:50] + 0.01 * rng.standard_normal((50, 128)).astype(np.float32)
    found = shortlists(x, squared_norms(x), queries, 10, metric)
    order, _ = exact_top_k(x, queries, 10, metric)
    for row, shortlist in zip(order, found):
        assert set(row) <= set(shortlist)
    assert max(map(len, found)) < 0.01 * len(x)  # a shortlist, not the whole store


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_near_ties_below_float32_resolution(metric):
    # Neighbours whose distances differ by less than float32 can resolve: the float32 scores tie or
    # swap them, and only the float64 ranking of the shortlist orders them right.
    rng = np.random.default_rng(2)
    base = rng.standard_normal(32)
    base /= np.linalg.norm(base)
    x = (base + 1e-6 * rng.standard_normal((4000, 32))).astype(np.float32)
    queries = (base + 1e-6 * rng.standard_normal((20, 32))).astype(np.float32)
    order, _ = exact_top_k(x, queries, 10, metric)
    assert np.array_equal(search(x, queries, 10, metric)[0], order)


def test_queries_are_scored_in_blocks(monkeypatch):
    monkeypatch.setattr(storage_search, "SCORE_BLOCK", 4 * 300)  # 4 queries at a time for 300 rows
    x = np.random.default_rng(4).standard_normal((300, 16)).astype(np.float32)
    found, _ = search(x, x[:11], 3, "euclidean")
    assert np.array_equal(found, exact_top_k(x, x[:11], 3, "euclidean")[0])
