"""The chapter 05 checkers accept the right answers and turn down typical wrong ones with a reason."""

import numpy as np

from oml_helpers import exercises as ex
from verdicts import says as _says


def test_storage_bytes():
    _says(ex.check_storage_bytes(100_000 * 64 * 4, 100_000 * 64 * 8), ex.RIGHT, "25,600,000")
    _says(ex.check_storage_bytes(100_000 * 64 * 32, 100_000 * 64 * 64), ex.WRONG, "bits")
    _says(ex.check_storage_bytes(64 * 4, 64 * 8), ex.WRONG, "one vector")
    _says(ex.check_storage_bytes(25.6, 51.2), ex.WRONG, "bytes")
    _says(ex.check_storage_bytes(..., ...), ex.WRONG, "is still `...`")  # the student stub
    _says(ex.check_storage_bytes(100_000 * 64 * 8, 100_000 * 64 * 4), ex.WRONG, "other dtype")


def _parametrised(conn, split):
    return dict(conn.execute("SELECT label, count(*) FROM items WHERE split = ? GROUP BY label", (split,)).fetchall())


def _formatted(conn, split):
    return dict(conn.execute(f"SELECT label, count(*) FROM items WHERE split = '{split}' GROUP BY label").fetchall())


def _no_where(conn, split):
    return dict(conn.execute("SELECT label, count(*) FROM items GROUP BY label").fetchall())


def test_counts_per_label():
    _says(ex.check_counts_per_label(_parametrised), ex.RIGHT, "harmless")
    _says(ex.check_counts_per_label(lambda conn, split: None), ex.WRONG, "returned None")  # a stub
    _says(ex.check_counts_per_label(_formatted), ex.WRONG, "rewrote your WHERE clause", "? parameter")
    _says(ex.check_counts_per_label(_no_where), ex.WRONG, "all splits", "WHERE split = ?")
    broken = lambda conn, split: dict(conn.execute(f'SELECT label, count(*) FROM items WHERE split = "{split}" GROUP BY label').fetchall())  # noqa: E731
    _says(ex.check_counts_per_label(broken), ex.WRONG, "? parameter")


def _cosine(ids, vectors, query, k, normalise=True, descending=False, similarity=False, start=0):
    if normalise:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        query = query / np.linalg.norm(query)
    distances = 1 - vectors @ query
    order = np.argsort(distances, kind="stable")
    if descending:
        order = order[::-1]
    order = order[start:start + k]
    return ids[order], (1 - distances[order]) if similarity else distances[order]


def test_cosine_top_k():
    _says(ex.check_cosine_top_k(_cosine), ex.RIGHT)
    _says(ex.check_cosine_top_k(lambda *a: None), ex.WRONG, "returned None")  # the stub
    _says(ex.check_cosine_top_k(lambda *a: _cosine(*a, normalise=False)), ex.WRONG, "dot product")
    _says(ex.check_cosine_top_k(lambda *a: _cosine(*a, descending=True)), ex.WRONG, "farthest")
    _says(ex.check_cosine_top_k(lambda *a: _cosine(*a, similarity=True)), ex.WRONG, "similarities")
    _says(ex.check_cosine_top_k(lambda i, v, q, k: _cosine(i, v, q, k + 1)), ex.WRONG, "exactly k")
    _says(ex.check_cosine_top_k(lambda *a: _cosine(*a, start=1)), ex.WRONG, "skipped the nearest")
