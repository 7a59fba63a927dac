"""The chapter 05 checkers accept the right answers and turn down typical wrong ones with a reason."""

import tempfile
from pathlib import Path

import numpy as np

from oml_helpers import exercises as ex
from oml_helpers.storage import EmbeddingStore
from verdicts import says as _says


def _precision(store, k, extra=1, drop_self=True, divide_by=None):
    """Per-label precision@k from store.search; the arguments make the typical mistakes."""
    ids, vectors, metadata = store.load()
    labels = metadata["label"].to_numpy(int)
    found = store.search(vectors, k=k + extra).ids
    if drop_self:
        found = np.stack([row[row != i][:k] for i, row in zip(ids, found)])
    else:
        found = found[:, :k]
    hits = labels[np.searchsorted(ids, found)] == labels[:, None]
    precision = hits.sum(axis=1) / (divide_by or hits.shape[1])
    return {int(d): float(precision[labels == d].mean()) for d in np.unique(labels)}


def test_precision_per_label():
    _says(ex.check_precision_per_label(_precision), ex.RIGHT, "brute force")
    with tempfile.TemporaryDirectory() as folder:  # the chapter's store: its values in the message
        with EmbeddingStore.create(Path(folder) / "s.db", model_name="t", dim=2) as store:
            store.add([1, 2, 3, 4], np.array([[0, 0], [0, 1], [5, 0], [5, 1]], np.float32), labels=[0, 0, 1, 2])
            _says(ex.check_precision_per_label(_precision, store), ex.RIGHT, "{0: 0.2, 1: 0.0, 2: 0.0}")
            _says(ex.check_precision_per_label(lambda s, k: 0.5, store), ex.WRONG, "return a dict")
    _says(ex.check_precision_per_label(lambda store, k: None), ex.WRONG, "returned None")  # the stub
    _says(ex.check_precision_per_label(lambda s, k: _precision(s, k, drop_self=False)), ex.WRONG,
          "its own neighbour")
    _says(ex.check_precision_per_label(lambda s, k: _precision(s, k, extra=0)), ex.WRONG, "k - 1")
    _says(ex.check_precision_per_label(lambda s, k: _precision(s, k, extra=0, divide_by=k)), ex.WRONG, "k - 1")
    _says(ex.check_precision_per_label(lambda s, k: 0.5), ex.WRONG, "return a dict")
    _says(ex.check_precision_per_label(lambda s, k: {0: 1.0, 1: 1.0}), ex.WRONG, "your labels are")

    def overall(store, k):
        per_label = _precision(store, k)
        mean = float(np.mean(list(per_label.values())))
        return {label: mean for label in per_label}

    _says(ex.check_precision_per_label(overall), ex.WRONG, "same value")
    _says(ex.check_precision_per_label(lambda s, k: {d: v + 0.1 for d, v in _precision(s, k).items()}),
          ex.WRONG, "brute force gives")


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
