"""The checkers of chapter 07 accept the right answer and turn down typical wrong ones with a reason."""

import numpy as np
import torch

from oml.retrieval import RetrievalResults

from oml_helpers import exercises as ex
from verdicts import says as _says

from test_exercises_retrieval import _rr


def _top1_right(rr):
    return [bool(torch.isin(r[:1], gt)) for r, gt in zip(rr.retrieved_ids, rr.gt_ids)]


def test_top1_flips():
    before = _rr(seed=1)
    after = RetrievalResults(  # reverse every list: many top-1s change
        distances=before.distances, retrieved_ids=[r.flip(0) for r in before.retrieved_ids], gt_ids=before.gt_ids
    )
    b, a = _top1_right(before), _top1_right(after)
    r2w, w2r = sum(x and not y for x, y in zip(b, a)), sum(y and not x for x, y in zip(b, a))
    assert r2w != w2r
    _says(ex.check_top1_flips(r2w, w2r, before, after), ex.RIGHT, f"{r2w} right -> wrong")
    _says(ex.check_top1_flips(w2r, r2w, before, after), ex.WRONG, "swapped")
    moved_right = sum(x and int(rb[0]) != int(ra[0]) for x, rb, ra in zip(b, before.retrieved_ids, after.retrieved_ids))
    if moved_right != r2w:
        _says(ex.check_top1_flips(moved_right, w2r, before, after), ex.WRONG, "still right after")
    _says(ex.check_top1_flips(r2w + 1, w2r, before, after), ex.WRONG, "gt_ids")


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
