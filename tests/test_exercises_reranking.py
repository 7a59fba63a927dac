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


# 100 queries; ms per query 8, 16, 20 and 44: 4 ms a pair up to top_n=5, then 8 (the cost
# of a pair grows, as on the chapter's page); the least-squares line is about 6.1 * n - 6.9
BUDGET_SECONDS = {2: 0.8, 4: 1.6, 5: 2.0, 8: 4.4}


def _cmc_by_hand(rr, n_max=8):
    """``[CMC@0, ..., CMC@n_max]`` of ``rr``, counted by hand (CMC@0 is 0)."""
    return [
        float(
            np.mean(
                [
                    bool(torch.isin(ids[:n], gt).any())
                    for ids, gt in zip(rr.retrieved_ids, rr.gt_ids)
                ]
            )
        )
        for n in range(n_max + 1)
    ]


class _DropoutJudge(_Judge):
    """``_Judge`` whose scores are noise in training mode, like a model with dropout."""

    training = True

    def eval(self):
        self.training = False
        return self

    def train(self, mode=True):
        self.training = mode
        return self

    def predict(self, x1, x2):
        return torch.rand(len(x1)) if self.training else super().predict(x1, x2)


def test_cut_after_rerank_scores_in_eval_mode():
    """``trainer.validate`` leaves a model in training mode: the check scores in eval mode and
    gives the mode back."""
    rr, dataset, th = _rr(seed=1), _Images(12, 40), 0.35
    truth = _cut_by_hand(rr, lambda q, i: (abs(100 + i - q) % 7) / 10 < th)
    judge = _DropoutJudge()
    _says(ex.check_cut_after_rerank(*truth, rr, dataset, judge, th, 0.6), ex.RIGHT)
    assert judge.training


def test_rerank_budget_reads_the_measured_points():
    rr = _rr(n_queries=20, seed=1)  # CMC@n 0.7, 0.9, 0.95, then 1.0
    cmc = _cmc_by_hand(rr)
    oml_cmc = calc_retrieval_metrics_rr(
        rr, cmc_top_k=tuple(range(1, 9)), precision_top_k=(), map_top_k=(), verbose=False
    )["cmc"]
    assert np.allclose(cmc[1:], [float(v) for v in oml_cmc.values()])
    ms = {n: 10 * s for n, s in BUDGET_SECONDS.items()}
    joined = {n: float(np.interp(n, list(ms), list(ms.values()))) for n in range(2, 9)}
    assert joined == {2: 8, 3: 12, 4: 16, 5: 20, 6: 28, 7: 36, 8: 44}
    slope, intercept = np.polyfit(list(ms), list(ms.values()), 1)
    assert slope * 5 + intercept > 22  # the line misses the measured 20 ms at top_n=5

    def check(n, c=None, budget_ms=22.0, seconds=BUDGET_SECONDS):
        c = cmc[max(n, 1)] if c is None else c
        return ex.check_rerank_budget(n, c, seconds, 100, rr, budget_ms=budget_ms)

    # 20 ms at top_n=5 fits 22 ms, 28 at 6 does not
    _says(check(5), ex.RIGHT, "20 ms per query at top_n=5 and 28 at 6", f"CMC@5 = {cmc[5]:.2f}")
    # the straight line gives 4: it contradicts the measured 20 ms at top_n=5
    _says(check(4), ex.WRONG, "straight line", "measured 20 ms at top_n=5", "np.interp")
    _says(check(6), ex.WRONG, "28 ms per query at top_n=6", "round down")
    _says(check(3), ex.WRONG, "not the largest")
    # 13 / (mean of 4, 4, 4, 5.5 ms a pair) gives 2; the points give 3 (12 ms)
    _says(check(2, budget_ms=13), ex.WRONG, "average cost per pair", "4.0 to 5.5 ms")
    _says(check(3, budget_ms=13), ex.RIGHT, "12 ms per query at top_n=3")
    _says(check(500, 1.0), ex.WRONG, "whole number")
    _says(check(True), ex.WRONG, "whole number")
    _says(check(1), ex.WRONG, "top_n > 1")
    if cmc[1] != cmc[5]:
        _says(check(5, cmc[1]), ex.WRONG, "that is CMC@1")
    _says(check(5, 100 * cmc[5]), ex.WRONG, "percentage")
    _says(check(5, cmc[5] - 0.2), ex.WRONG, "not CMC@5")


def test_rerank_budget_edges():
    rr = _rr(n_queries=20, seed=1)  # CMC@n 0.7, 0.9, 0.95, then 1.0
    cmc = _cmc_by_hand(rr)

    def check(n, budget_ms, seconds=BUDGET_SECONDS, c=None):
        c = cmc[max(n, 1)] if c is None else c
        return ex.check_rerank_budget(n, c, seconds, 100, rr, budget_ms=budget_ms)

    # within 5% of the budget the table cannot tell two answers apart: both pass
    _says(check(5, 20.5), ex.RIGHT, "at top_n=5")
    _says(check(4, 20.5), ex.RIGHT, "exact answer is 5", f"CMC@4 = {cmc[4]:.2f}")
    _says(check(4, 20.5, c=cmc[4] - 0.2), ex.WRONG, "not CMC@4")
    _says(check(6, 27), ex.RIGHT, "exact answer is 5")
    _says(check(6, 26), ex.WRONG, "round down")  # 28 ms is 8% over 26
    # nothing fits: 0, and CMC@1 stays
    _says(check(0, 5), ex.RIGHT, "even top_n=2 costs 8 ms", f"CMC@1 stays {cmc[1]:.2f}")
    _says(check(0, 5, c=float("nan")), ex.WRONG, "not CMC@1")
    _says(check(2, 5), ex.WRONG, "8 ms per query at top_n=2", "round down")
    # 8 ms is within 5% of 7.8: 0 (exact) and 2 both pass
    _says(check(0, 7.8), ex.RIGHT, "does not fit")
    _says(check(2, 7.8), ex.RIGHT, "exact answer is 0")
    # everything timed fits: the answer stops at the largest top_n timed
    short = {2: 0.8, 5: 2.0}
    _says(check(5, 100, short), ex.RIGHT, "the largest top_n timed is 5")
    _says(check(7, 100, short), ex.WRONG, "the largest top_n timed is 5")
    _says(check(8, 100), ex.RIGHT, "the largest top_n timed is 8", f"CMC@8 = {cmc[8]:.2f}")
    with pytest.raises(ValueError, match="at least two"):
        ex.check_rerank_budget(3, 0.5, {5: 1.0}, 100, rr)
    with pytest.raises(ValueError, match="from 2 to the 8"):
        ex.check_rerank_budget(3, 0.5, {1: 0.1, 5: 1.0}, 100, rr)
    with pytest.raises(ValueError, match="from 2 to the 8"):
        ex.check_rerank_budget(3, 0.5, {5: 1.0, 10: 2.0}, 100, rr)


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
    seconds = {2: 4.0, 5: 8.5, 8: 13.0}  # 100 ms at top_n=6 fits 100 ms, 115 at 7 does not
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
