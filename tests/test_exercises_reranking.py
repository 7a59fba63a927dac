"""The checkers of chapter 07 accept the right answer and turn down typical wrong ones with a reason."""

import numpy as np
import pytest
import torch


from oml_helpers import exercises as ex
from verdicts import says as _says

from test_exercises_retrieval import _rr


class _Images:
    """Stand-in for a query/gallery dataset: item i is an image filled with the value i."""

    def __init__(self, n_queries: int, n_gallery: int):
        self.n_queries, self.n_gallery = n_queries, n_gallery

    def get_query_ids(self):
        return torch.arange(self.n_queries)

    def get_gallery_ids(self):
        return torch.arange(self.n_gallery) + 100

    def __getitem__(self, i):
        return {"input_tensors": torch.full((1, 2, 2), float(i))}


class _Judge:
    """Stand-in for a pairwise model: its score depends on the two images' values."""

    def predict(self, x1, x2):
        return ((x2 - x1).abs().mean(dim=(1, 2, 3)) % 7) / 10


def _cut_by_hand(rr, keep, top_n=5):
    hit = kept = n_right = 0
    for q, (ids, gt) in enumerate(zip(rr.retrieved_ids, rr.gt_ids)):
        for i in ids[:top_n].tolist():
            right = i in gt.tolist()
            k = keep(q, i)
            kept, hit, n_right = kept + k, hit + (k and right), n_right + right
    return hit / kept, hit / n_right


def test_cut_after_rerank():
    rr = _rr(seed=1)
    dataset, model, th = _Images(12, 40), _Judge(), 0.35
    score = lambda q, i: (abs(100 + i - q) % 7) / 10
    truth = _cut_by_hand(rr, lambda q, i: score(q, i) < th)
    above = _cut_by_hand(rr, lambda q, i: score(q, i) >= th)
    d = {(q, int(i)): float(x) for q, (ids, ds) in enumerate(zip(rr.retrieved_ids, rr.distances))
         for i, x in zip(ids, ds)}
    by_distance = _cut_by_hand(rr, lambda q, i: d[q, i] < th)
    assert len({truth, truth[::-1], above, by_distance}) == 4  # the wrong answers differ from the right one
    check = lambda p, r: ex.check_cut_after_rerank(p, r, rr, dataset, model, th, extractor_threshold=0.6)
    _says(check(*truth), ex.RIGHT, f"precision {truth[0]:.3f}, recall {truth[1]:.3f}")
    _says(check(*truth[::-1]), ex.WRONG, "swapped")
    _says(check(*above), ex.WRONG, "below it")
    _says(check(*by_distance), ex.WRONG, "extractor's distances")
    _says(check(truth[0] + 0.05, truth[1]), ex.WRONG, "is off")
    with pytest.raises(ValueError, match="top_n"):
        ex.check_cut_after_rerank(*truth, rr, dataset, model, th, 0.6, top_n=50)


def test_cost_estimate():
    seconds = {2: 0.9, 5: 2.1, 10: 4.6, 20: 9.6}  # for 100 queries
    ms = np.array([1000 * s / 100 for s in seconds.values()])
    slope, intercept = np.polyfit(list(seconds), ms, 1)
    truth = slope * 50 + intercept
    _says(ex.check_cost_estimate(truth, seconds, 100), ex.RIGHT, "within 20%")
    _says(ex.check_cost_estimate(truth * 1.1, seconds, 100), ex.RIGHT)
    _says(ex.check_cost_estimate(truth / 1000, seconds, 100), ex.WRONG, "seconds")
    _says(ex.check_cost_estimate(truth * 100, seconds, 100), ex.WRONG, "divide by the number of queries")
    _says(ex.check_cost_estimate(ms[-1], seconds, 100), ex.WRONG, "extrapolate")
    _says(ex.check_cost_estimate(truth * 3, seconds, 100), ex.WRONG, "straight-line fit")


def _pairs(hard_pos=True, hard_neg=True, both_orders=False):
    def fn(embeddings, labels):
        d = torch.cdist(embeddings, embeddings)
        labels = torch.tensor(labels)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        pos = d.masked_fill(~same, -1.0).argmax(1) if hard_pos else d.masked_fill(~same | eye, float("inf")).argmin(1)
        neg = d.masked_fill(same, float("inf")).argmin(1) if hard_neg else d.masked_fill(same, -1.0).argmax(1)
        if both_orders:
            return list(enumerate(pos.tolist())), list(enumerate(neg.tolist()))
        return {tuple(sorted(p)) for p in enumerate(pos.tolist())}, {tuple(sorted(p)) for p in enumerate(neg.tolist())}

    return fn


def test_hard_pairs():
    _says(ex.check_hard_pairs(_pairs()), ex.RIGHT, "positive and")
    _says(ex.check_hard_pairs(_pairs(hard_pos=False)), ex.WRONG, "*nearest* positive")
    _says(ex.check_hard_pairs(_pairs(hard_neg=False)), ex.WRONG, "*farthest* negative")
    _says(ex.check_hard_pairs(_pairs(both_orders=True)), ex.WRONG, "some twice")
    swapped = lambda e, l: tuple(reversed(_pairs()(e, l)))  # noqa: E731
    _says(ex.check_hard_pairs(swapped), ex.WRONG, "which list is which")
