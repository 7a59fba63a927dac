"""The chapter 05 checkers accept the right answers and turn down typical wrong ones with a reason."""

import numpy as np

from oml_helpers import exercises as ex
from verdicts import says as _says


def _read_vector(blob, dim):
    for dtype in (np.float32, np.float64):
        if len(blob) == np.dtype(dtype).itemsize * dim:
            return np.frombuffer(blob, dtype).astype(np.float32)
    raise ValueError(f"{len(blob)} bytes is not {dim} float32 or float64 numbers")


def test_read_vector():
    _says(ex.check_read_vector(_read_vector), ex.RIGHT, "refused")
    _says(ex.check_read_vector(lambda blob, dim: None), ex.WRONG, "returned None")  # the stub
    _says(ex.check_read_vector(lambda blob, dim: np.frombuffer(blob, np.float64)), ex.WRONG, "hard-coded dtype")
    _says(ex.check_read_vector(lambda blob, dim: np.frombuffer(blob, np.float32)), ex.WRONG, "hard-coded dtype")
    _says(ex.check_read_vector(lambda b, d: np.frombuffer(b, np.float32 if len(b) == 4 * d else np.float64)),
          ex.WRONG, "float32 (the store's dtype)")
    lenient = lambda b, d: np.frombuffer(b[: 4 * d], np.float32) if len(b) != 8 * d else _read_vector(b, d)  # noqa: E731
    _says(ex.check_read_vector(lenient), ex.WRONG, "raise ValueError")

    def refuses_float64(blob, dim):
        if len(blob) != 4 * dim:
            raise ValueError("not float32")
        return np.frombuffer(blob, np.float32)

    _says(ex.check_read_vector(refuses_float64), ex.WRONG, "it is a valid vector")


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
