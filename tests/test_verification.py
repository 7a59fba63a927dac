"""match_threshold, match_rates, knn_classify and near_duplicates against hand-made results."""

import numpy as np
import pytest
import torch

from oml.metrics import calc_fnmr_at_fmr_rr
from oml.retrieval import RetrievalResults

import oml_helpers as h


def _rr(distances, retrieved, gt):
    return RetrievalResults(
        distances=[torch.tensor(d, dtype=torch.float) for d in distances],
        retrieved_ids=[torch.tensor(r) for r in retrieved],
        gt_ids=None if gt is None else [torch.tensor(g) for g in gt],
    )


@pytest.fixture
def rr():
    # query 0: positives at 0.1, 0.5; query 1: positive at 0.4
    return _rr(
        [[0.1, 0.2, 0.5, 0.9], [0.3, 0.4, 0.6, 0.8]],
        [[0, 1, 2, 3], [1, 2, 0, 3]],
        [[0, 2], [2]],
    )


def test_pair_distances_split_by_label(rr):
    pairs = h.pair_distances_rr(rr)
    assert sorted(pairs["positive"].tolist()) == pytest.approx([0.1, 0.4, 0.5])
    assert sorted(pairs["negative"].tolist()) == pytest.approx([0.2, 0.3, 0.6, 0.8, 0.9])


def test_threshold_is_the_quantile_oml_uses(rr):
    fmr = 0.4
    threshold = h.match_threshold(rr, fmr)
    assert threshold == pytest.approx(np.quantile([0.2, 0.3, 0.6, 0.8, 0.9], fmr))
    rates = h.match_rates(rr, threshold)
    oml = calc_fnmr_at_fmr_rr(rr, fmr_vals=(fmr,))["fnmr@fmr"][fmr]
    assert rates["fnmr"] == pytest.approx(float(oml))
    assert rates["fmr"] == pytest.approx(2 / 5)  # 0.2 and 0.3 fall below 0.48


def test_rates_of_a_fixed_threshold(rr):
    assert h.match_rates(rr, 0.45) == {"fmr": pytest.approx(0.4), "fnmr": pytest.approx(1 / 3)}
    assert h.match_rates(rr, 0.0) == {"fmr": 0.0, "fnmr": 1.0}
    assert h.match_rates(rr, 10.0) == {"fmr": 1.0, "fnmr": 0.0}
    # a positive exactly at the threshold is a non-match, as in OML
    assert h.match_rates(rr, 0.5)["fnmr"] == pytest.approx(1 / 3)


def test_threshold_bad_input(rr):
    with pytest.raises(ValueError, match="between 0 and 1"):
        h.match_threshold(rr, 1.5)
    only_pos = _rr([[0.1]], [[0]], [[0]])
    with pytest.raises(ValueError, match="no pair of different things"):
        h.match_threshold(only_pos, 0.1)
    with pytest.raises(ValueError, match="same and of different things"):
        h.match_rates(only_pos, 0.1)
    with pytest.raises(ValueError, match="no gt_ids"):
        h.match_threshold(_rr([[0.1]], [[0]], None), 0.1)


def test_knn_majority_and_ties():
    rr = _rr(
        [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4], [0.5]],
        [[0, 1, 2], [3, 0, 4, 1], [2]],
        None,
    )
    labels = [7, 5, 5, 9, 9]
    assert h.knn_classify(rr, labels, k=1).tolist() == [7, 9, 5]
    # query 0: 5 beats 7; query 1: 9 (positions 3, 4) and 7/5 tie -> 9 is nearest
    assert h.knn_classify(rr, labels, k=3).tolist() == [5, 9, 5]
    # query 1 with k=4: 9, 7, 9, 5 -> 9; query 2 has one item only
    assert h.knn_classify(rr, labels, k=4).tolist() == [5, 9, 5]
    with pytest.raises(ValueError, match="k must be at least 1"):
        h.knn_classify(rr, labels, k=0)
    with pytest.raises(ValueError, match="retrieved nothing"):
        h.knn_classify(_rr([[]], [[]], None), labels, k=1)


def test_knn_with_k1_is_cmc1():
    torch.manual_seed(0)
    g, q = torch.randn(30, 4), torch.randn(10, 4)
    labels_g, labels_q = torch.arange(30) % 5, torch.arange(10) % 5
    d = torch.cdist(q, g)
    order = d.argsort(dim=1)
    rr = RetrievalResults(
        distances=list(d.gather(1, order)),
        retrieved_ids=list(order),
        gt_ids=[torch.nonzero(labels_g == lq).flatten() for lq in labels_q],
    )
    hits = np.mean(h.knn_classify(rr, labels_g.numpy(), 1) == labels_q.numpy())
    top1 = np.mean([bool(torch.isin(r[0], gt)) for r, gt in zip(rr.retrieved_ids, rr.gt_ids)])
    assert hits == top1


def test_near_duplicates():
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 0.05], [3.0, 0.01], [9.0, 9.0]])
    pairs = h.near_duplicates(x, threshold=0.1)
    assert pairs[["i", "j"]].values.tolist() == [[1, 3], [0, 2]]  # nearest first
    assert pairs["distance"].tolist() == pytest.approx([0.01, 0.05], abs=1e-4)
    assert h.near_duplicates(x, threshold=0.1, max_pairs=1)[["i", "j"]].values.tolist() == [[1, 3]]
    assert h.near_duplicates(x, threshold=0.001).empty
    with pytest.raises(ValueError, match=r"\[n, dim\]"):
        h.near_duplicates(torch.zeros(3), threshold=1.0)
