"""Tests of oml_helpers.storage_search: int8 codes, the error bound of the shortlist, exact answers, fallback."""

import numpy as np
import pytest
import torch

from oml_helpers import storage_search
from oml_helpers.storage_search import Int8Index, _int8_dots, quantize_int8, top_k


def exact_top_k(x: np.ndarray, queries: np.ndarray, k: int, metric: str):
    """float64 brute force, ties to the lower row: the answer the search must give."""
    x64, q64 = x.astype(np.float64), queries.astype(np.float64)
    if metric == "euclidean":
        d = np.sqrt(((q64[:, None, :] - x64[None]) ** 2).sum(axis=2))
    else:
        denominator = np.linalg.norm(q64, axis=1)[:, None] * np.linalg.norm(x64, axis=1)[None]
        d = 1 - np.divide(q64 @ x64.T, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


def search(x: np.ndarray, queries: np.ndarray, k: int, metric: str, int8: bool = True):
    codes, stats = quantize_int8(x)
    return top_k(x, stats[:, 2], queries, k, metric, Int8Index(codes, stats) if int8 else None)


def hard_cases():
    """Data where a careless shortlist or bound goes wrong."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64)
    yield "near duplicates 1e-4 apart", (base / np.linalg.norm(base) + 1e-4 * rng.standard_normal((3000, 64)))
    yield "norms from 1e-3 to 1e3", rng.standard_normal((2000, 32)) * np.logspace(-3, 3, 2000)[:, None]
    with_zeros = rng.standard_normal((500, 16))
    with_zeros[::7] = 0
    yield "zero rows", with_zeros
    yield "exact ties", np.repeat(rng.standard_normal((50, 8)), 4, axis=0)
    yield "one large coordinate", np.hstack([1e4 * rng.standard_normal((800, 1)), rng.standard_normal((800, 47))])
    yield "dimension 3", rng.standard_normal((1000, 3))
    yield "dimension 1100 (dot products beyond 2**24)", rng.standard_normal((300, 1100))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("name, x", list(hard_cases()), ids=[name for name, _ in hard_cases()])
def test_int8_search_is_exact(name, x, metric):
    x = x.astype(np.float32)
    queries = np.vstack([x[:40], x[:5] + np.float32(1e-3), np.zeros((1, x.shape[1]), np.float32)])
    for k in (1, 10, len(x)):
        order, distances = exact_top_k(x, queries, k, metric)
        found, got = search(x, queries, k, metric)
        assert np.array_equal(found, order), (name, metric, k)
        assert np.allclose(got, distances, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_shortlist_holds_the_top_k_and_is_short(metric):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[:50] + 0.01 * rng.standard_normal((50, 128)).astype(np.float32)
    shortlists = Int8Index(*quantize_int8(x)).shortlist(queries, 10, metric)
    assert shortlists is not None, "the int8 product should work for dimension 128"
    order, _ = exact_top_k(x, queries, 10, metric)
    for row, shortlist in zip(order, shortlists):
        assert set(row) <= set(shortlist)
    assert max(map(len, shortlists)) < 0.02 * len(x)  # a shortlist, not the whole store


def test_quantize_bounds_its_error():
    rng = np.random.default_rng(2)
    x = np.vstack([rng.standard_normal((300, 33)) * rng.uniform(1e-4, 1e4, (300, 1)), np.zeros((2, 33))]).astype(np.float32)
    codes, stats = quantize_int8(x)
    scale, residual, sq_norm = stats.T
    assert codes.dtype == np.int8 and codes.min() >= -127 and codes.max() <= 127
    error = np.linalg.norm(x.astype(np.float64) - scale.astype(np.float64)[:, None] * codes, axis=1)
    assert np.all(error <= residual)
    assert np.all(residual <= 1.01 * error + 1e-30)  # a tight bound, not a loose one
    assert np.all(scale[-2:] == 0) and np.all(codes[-2:] == 0)
    assert np.allclose(sq_norm, (x.astype(np.float64) ** 2).sum(axis=1), rtol=1e-6)


def exact_scores(x: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """The scores the int8 index approximates, in float64: |x|^2 - 2 q.x, or -q.x / |x| (0 for x = 0)."""
    x64, q64 = x.astype(np.float64), queries.astype(np.float64)
    if metric == "euclidean":
        return (x64 ** 2).sum(axis=1) - 2 * q64 @ x64.T
    norms = np.linalg.norm(x64, axis=1)
    return -(q64 @ x64.T) * np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("name, x", list(hard_cases()), ids=[name for name, _ in hard_cases()])
def test_every_approximate_score_is_within_the_margin(name, x, metric):
    x = x.astype(np.float32)
    rng = np.random.default_rng(7)
    queries = np.vstack([x[:5] + rng.standard_normal((5, x.shape[1])).astype(np.float32),  # not stored rows
                         rng.standard_normal((5, x.shape[1])).astype(np.float32) * np.float32(10.0)])
    scores, margin = Int8Index(*quantize_int8(x)).approximate_scores(queries, metric)
    error = np.abs(scores - exact_scores(x, queries, metric))
    assert np.all(error <= margin[:, None]), (name, metric, float((error / margin[:, None]).max()))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_the_margin_is_tight(metric):
    # x = [1, 1/254] is coded [127, 0] (scale 1/127), residual 1/254; q = [0, 1] is coded (almost) exactly.
    # The error of q.x is then |q| r_x, the bound itself: the margin is that plus a little rounding slack,
    # so a margin missing a term or a factor would be wrong here.
    x, q = np.array([[1, 1 / 254]], np.float32), np.array([[0, 1]], np.float32)
    scores, margin = Int8Index(*quantize_int8(x)).approximate_scores(q, metric)
    error = np.abs(scores - exact_scores(x, q, metric))
    assert 0.95 * margin[0] <= error[0, 0] <= margin[0]


@pytest.mark.parametrize("dim", [1, 2, 7, 64])
def test_int8_dots_are_exact_or_refused(dim):
    # torch._int_mm is a private op; with dimension 1 it returned garbage in torch 2.14.1. Its answers
    # are spot-checked against numpy on the index's few rows, so it may refuse (None) but never answers
    # wrongly: checked here on every row.
    rng = np.random.default_rng(dim)
    q, c = (rng.integers(-127, 128, shape).astype(np.int8) for shape in [(3, dim), (500, dim)])
    dots = _int8_dots(q, c, Int8Index(c, np.ones((len(c), 3), np.float32)).spots)
    assert dots is None or np.array_equal(dots.numpy(), q.astype(np.int64) @ c.astype(np.int64).T)
    if dim > 1:
        assert dots is not None


def test_dimensions_whose_int32_sums_could_wrap_use_float32():
    # 127**2 * 140_000 > 2**31: the int32 dot products would wrap around (and numpy's int32 check too).
    x = np.stack([np.ones(140_000), -np.ones(140_000), np.r_[np.ones(70_000), -np.ones(70_000)]]).astype(np.float32)
    assert Int8Index(*quantize_int8(x)).shortlist(x[:1], 1, "euclidean") is None
    found, distances = search(x, x[:1], 1, "euclidean")
    assert found[0, 0] == 0 and distances[0, 0] == 0


@pytest.mark.parametrize("broken", ["missing", "garbage"])
def test_falls_back_to_float32_when_the_int8_product_is_unusable(monkeypatch, broken):
    def garbage(a, b):
        return torch.full((a.shape[0], b.shape[1]), 7, dtype=torch.int32)

    def missing(a, b):
        raise RuntimeError("_int_mm: not supported on this build")

    monkeypatch.setattr(torch, "_int_mm", garbage if broken == "garbage" else missing)
    x = np.random.default_rng(3).standard_normal((400, 24)).astype(np.float32)
    assert Int8Index(*quantize_int8(x)).shortlist(x[:4], 5, "euclidean") is None
    for metric in ("euclidean", "cosine"):
        found, _ = search(x, x[:30], 5, metric)
        assert np.array_equal(found, exact_top_k(x, x[:30], 5, metric)[0])


def test_queries_are_scored_in_blocks(monkeypatch):
    monkeypatch.setattr(storage_search, "QUERY_BLOCK", 4)
    x = np.random.default_rng(4).standard_normal((300, 16)).astype(np.float32)
    found, _ = search(x, x[:11], 3, "euclidean")
    assert np.array_equal(found, exact_top_k(x, x[:11], 3, "euclidean")[0])


def test_float32_and_int8_shortlists_agree():
    x = np.random.default_rng(5).standard_normal((1000, 40)).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        a, da = search(x, x[:25], 7, metric, int8=True)
        b, db = search(x, x[:25], 7, metric, int8=False)
        assert np.array_equal(a, b) and np.array_equal(da, db)
