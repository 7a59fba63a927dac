"""The checkers of chapter 07 accept the right answer and turn down typical wrong ones with a
reason."""

import numpy as np
import pytest
import torch

from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers import exercises as ex
from test_exercises_retrieval import _rr
from verdicts import says


def _says(result, verdict, *fragments):
    """``says`` on the verdict's text with its line breaks undone (a notebook shows it wrapped at
    84)."""
    assert max(len(line) for line in repr(result).splitlines()) <= 84, repr(result)
    says(ex.Verdict(result.ok, " ".join(result.message.split())), verdict, *fragments)


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

    def score(q, i):
        return (abs(100 + i - q) % 7) / 10

    truth = _cut_by_hand(rr, lambda q, i: score(q, i) < th)
    above = _cut_by_hand(rr, lambda q, i: score(q, i) >= th)
    d = {
        (q, int(i)): float(x)
        for q, (ids, ds) in enumerate(zip(rr.retrieved_ids, rr.distances))
        for i, x in zip(ids, ds)
    }
    by_distance = _cut_by_hand(rr, lambda q, i: d[q, i] < th)
    # the wrong answers differ from the right one
    assert len({truth, truth[::-1], above, by_distance}) == 4

    def check(p, r):
        return ex.check_cut_after_rerank(p, r, rr, dataset, model, th, extractor_threshold=0.6)

    _says(check(*truth), ex.RIGHT, f"precision {truth[0]:.3f}, recall {truth[1]:.3f}", "wrong kept")
    _says(check(*truth[::-1]), ex.WRONG, "swapped")
    _says(check(*above), ex.WRONG, "below it")
    _says(check(*by_distance), ex.WRONG, "extractor's distances")
    _says(check(truth[0] + 0.05, truth[1]), ex.WRONG, "is off")
    with pytest.raises(ValueError, match="top_n"):
        ex.check_cut_after_rerank(*truth, rr, dataset, model, th, 0.6, top_n=50)


def test_rerank_budget():
    rr = _rr(seed=1)
    seconds = {2: 4.0, 5: 8.5, 10: 16.0}  # for 100 queries: 40, 85, 160 ms
    ms = {n: 10 * s for n, s in seconds.items()}
    slope = (ms[10] - ms[2]) / 8  # the points lie almost on a line; check by hand
    predicted = {n: np.polyval(np.polyfit(list(ms), list(ms.values()), 1), n) for n in range(1, 9)}
    truth = max(n for n, v in predicted.items() if v <= 100)
    assert truth == 6 and 14 < slope < 16  # 97 ms at 6, 112 ms at 7
    cmc = [
        float(
            np.mean(
                [
                    bool(torch.isin(ids[:n], gt).any())
                    for ids, gt in zip(rr.retrieved_ids, rr.gt_ids)
                ]
            )
        )
        for n in range(9)
    ]

    def check(n, c, **kw):
        return ex.check_rerank_budget(n, c, seconds, 100, rr, **kw)

    _says(
        check(truth, cmc[truth]), ex.RIGHT, f"at top_n={truth}", f"CMC@{truth} = {cmc[truth]:.2f}"
    )
    _says(check(truth + 1, cmc[truth + 1]), ex.WRONG, "round down")
    _says(check(int(100 / np.mean([ms[n] / n for n in ms])), cmc[5]), ex.WRONG, "intercept")
    _says(check(3, cmc[3]), ex.WRONG, "not the largest")
    _says(check(500, 1.0), ex.WRONG, "whole number")
    if cmc[1] != cmc[truth]:
        _says(check(truth, cmc[1]), ex.WRONG, "that is CMC@1")
    _says(check(truth, 100 * cmc[truth]), ex.WRONG, "percentage")
    _says(check(truth, cmc[truth] - 0.2), ex.WRONG, f"not CMC@{truth}")
    assert cmc[1:] == [
        float(v)
        for v in calc_retrieval_metrics_rr(
            rr, cmc_top_k=tuple(range(1, 9)), precision_top_k=(), map_top_k=(), verbose=False
        )["cmc"].values()
    ]
    _says(check(0, cmc[1], budget_ms=10), ex.RIGHT, "does not fit", "CMC@1 stays")
    _says(check(0, float("nan"), budget_ms=10), ex.WRONG, "not CMC@1")
    _says(check(2, 0.5, budget_ms=10), ex.WRONG)
    _says(check(1, cmc[1], budget_ms=10), ex.WRONG, "top_n > 1")
    # a budget that only top_n=1 would meet: 2 is the smallest top_n OML re-ranks
    _says(check(0, cmc[1], budget_ms=2 * slope - 1), ex.RIGHT, "does not fit")
    with pytest.raises(ValueError, match="at least two"):
        ex.check_rerank_budget(3, 0.5, {5: 1.0}, 100, rr)


def _right_first(rr, top_n):
    """``rr`` with, in each query's first ``top_n``, a right item (if any) moved first: a
    re-ranking that reaches its cap CMC@top_n."""
    ids = []
    for r, gt in zip(rr.retrieved_ids, rr.gt_ids):
        head = r[:top_n]
        order = torch.argsort((~torch.isin(head, gt)).int(), stable=True)
        ids.append(torch.cat([head[order], r[top_n:]]))
    return RetrievalResults(distances=rr.distances, retrieved_ids=ids, gt_ids=rr.gt_ids)


def test_rerank_budget_says_what_limits_the_gain():
    rr = _rr(n_queries=20, seed=1)  # CMC@n 0.7, 0.9, 0.95, then 1.0
    seconds = {2: 4.0, 5: 8.5, 10: 16.0}  # top_n=6 fits 100 ms (test_rerank_budget)
    cmc = calc_retrieval_metrics_rr(
        rr, cmc_top_k=tuple(range(1, 9)), precision_top_k=(), map_top_k=(), verbose=False
    )["cmc"]
    assert float(cmc[1]) < float(cmc[2]) < float(cmc[6])  # room below each cap

    def check(reranked, n=6):
        return ex.check_rerank_budget(n, float(cmc[n]), seconds, 100, rr, reranked=reranked)

    # unchanged lists stay below every cap: the pairwise model limits
    _says(
        check({2: rr, 6: rr}),
        ex.RIGHT,
        f"{float(cmc[1]):.2f} < {float(cmc[2]):.2f} at top_n=2",
        "the pairwise model limits, not the budget",
    )
    # a right item first wherever there is one: the cap is reached
    _says(
        check({6: _right_first(rr, 6)}),
        ex.RIGHT,
        f"reaches its cap CMC@6 = {float(cmc[6]):.2f}",
        "limits the gain, not the pairwise model",
    )
    _says(check({2: rr, 6: _right_first(rr, 6)}), ex.RIGHT, "the top 6, CMC@1 reaches")
    # without reranked, no verdict on what limits
    assert "limits" not in repr(check(None))
    # a wrong answer is still a wrong answer
    _says(ex.check_rerank_budget(3, 0.5, seconds, 100, rr, reranked={2: rr}), ex.WRONG)
    # no re-ranking fits: nothing to say about the pairwise model
    fits_none = ex.check_rerank_budget(
        0, float(cmc[1]), seconds, 100, rr, budget_ms=10, reranked={2: rr}
    )
    _says(fits_none, ex.RIGHT, "does not fit")
    assert "pairwise model" not in repr(fits_none)
    for bad, error, match in (
        ([rr], TypeError, "dict"),
        ({}, TypeError, "non-empty"),
        ({"5": rr}, TypeError, "whole numbers"),
        ({1: rr}, ValueError, "from 2 to the 8"),
        ({9: rr}, ValueError, "from 2 to the 8"),
        ({5: "lists"}, TypeError, "RetrievalResults"),
        ({5: _rr(n_queries=5, seed=1)}, ValueError, "5 queries"),
        ({2: _right_first(rr, 6)}, ValueError, "cannot do that"),
    ):
        with pytest.raises(error, match=match):
            check(bad)


def _pairs(hard_pos=True, hard_neg=True, both_orders=False):
    def fn(embeddings, labels):
        d = torch.cdist(embeddings, embeddings)
        labels = torch.tensor(labels)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        pos = (
            d.masked_fill(~same, -1.0).argmax(1)
            if hard_pos
            else d.masked_fill(~same | eye, float("inf")).argmin(1)
        )
        neg = (
            d.masked_fill(same, float("inf")).argmin(1)
            if hard_neg
            else d.masked_fill(same, -1.0).argmax(1)
        )
        if both_orders:
            return list(enumerate(pos.tolist())), list(enumerate(neg.tolist()))
        return {tuple(sorted(p)) for p in enumerate(pos.tolist())}, {
            tuple(sorted(p)) for p in enumerate(neg.tolist())
        }

    return fn


def test_hard_pairs():
    _says(ex.check_hard_pairs(_pairs()), ex.RIGHT, "positive and", "from 12 anchors, not 24")
    _says(ex.check_hard_pairs(_pairs(hard_pos=False)), ex.WRONG, "*nearest* positive")
    _says(ex.check_hard_pairs(_pairs(hard_neg=False)), ex.WRONG, "*farthest* negative")
    _says(ex.check_hard_pairs(_pairs(both_orders=True)), ex.WRONG, "some twice")

    def swapped(embeddings, labels):
        return tuple(reversed(_pairs()(embeddings, labels)))

    _says(ex.check_hard_pairs(swapped), ex.WRONG, "which list is which")


class _JudgeOnAnotherDevice(torch.nn.Module):
    """Stands in for a pairwise model on a GPU: its parameter is on the 'meta'
    device and it refuses inputs on another device."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(1, device="meta"))

    def predict(self, x1, x2):
        if x1.device != self.weight.device or x2.device != self.weight.device:
            raise RuntimeError("Expected all tensors to be on the same device")
        return torch.zeros(len(x2))


def test_raw_scores_move_the_images_to_the_models_device():
    from oml_helpers.exercises.reranking import _raw_scores

    rr = _rr(seed=1)
    scores = _raw_scores(_JudgeOnAnotherDevice(), _Images(12, 40), rr, top_n=5)
    assert len(scores) == len(rr.retrieved_ids)
    assert all(s.device.type == "cpu" and len(s) == 5 for s in scores)
