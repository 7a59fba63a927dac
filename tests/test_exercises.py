"""Each exercise checker accepts the right answer and turns down typical wrong ones with a reason."""

import numpy as np
import pandas as pd
import pytest
import torch

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.functional.metrics import calc_map
from oml.retrieval import RetrievalResults

from oml_helpers import exercises as ex
from oml_helpers.exercises import basics
from verdicts import says as _says


def _even_odd(df):
    out = df.copy()
    is_val = out["label"] % 2 == 1
    out["split"] = is_val.map({True: "validation", False: "train"})
    out["is_query"] = pd.Series(is_val.where(is_val), dtype=object)
    out["is_gallery"] = out["is_query"]
    return out


def test_even_odd_split(digits_df, digits_root):
    result = ex.check_even_odd_split(_even_odd(digits_df), digits_root)
    _says(result, ex.RIGHT)
    result = ex.check_even_odd_split(digits_df, digits_root)  # the original 0-4 / 5-9 split
    _says(result, ex.WRONG, "even digits")
    result = ex.check_even_odd_split(_even_odd(digits_df).iloc[:100], digits_root)
    _says(result, ex.WRONG)
    broken = _even_odd(digits_df)
    broken["label"] = broken["label"].astype(str)
    result = ex.check_even_odd_split(broken, digits_root)
    _says(result, ex.WRONG, "OML's format", "integers")


def _separate(df, n):
    out = df.copy()
    val = out["split"] == "validation"
    rank = out[val].groupby("label").cumcount()
    out.loc[val, "is_query"] = rank < n
    out.loc[val, "is_gallery"] = rank >= n
    return out


def test_separate_queries(digits_df, digits_root):
    result = ex.check_separate_queries(_separate(digits_df, 20), digits_root, n_queries=20)
    _says(result, ex.RIGHT)
    result = ex.check_separate_queries(digits_df, digits_root, n_queries=20)
    _says(result, ex.WRONG, "both query and gallery")
    result = ex.check_separate_queries(_separate(digits_df, 10), digits_root, n_queries=20)
    _says(result, ex.WRONG, "exactly 20")
    last = digits_df.copy()
    val = last["split"] == "validation"
    rank = last[val].groupby("label").cumcount(ascending=False)
    last.loc[val, "is_query"], last.loc[val, "is_gallery"] = rank < 20, rank >= 20
    result = ex.check_separate_queries(last, digits_root, n_queries=20)
    _says(result, ex.WRONG, "first 20 rows")


def _epoch_by_hand():
    """An independent count: one pass over 7 labels in groups of 3, 12 indices a batch."""
    n_labels, n_instances = basics.EPOCH_BATCH
    batches = len(basics.EPOCH_LABEL_SIZES) // n_labels
    return batches, batches * n_labels * n_instances


def test_balance_epoch():
    batches, images = _epoch_by_hand()
    assert (batches, images) == (2, 24)
    _says(ex.check_balance_epoch(batches, images), ex.RIGHT, "24 in one epoch")
    _says(ex.check_balance_epoch(np.int64(batches), images), ex.RIGHT)
    _says(ex.check_balance_epoch(59 // 12, images), ex.WRONG, "pass over the *labels*")
    _says(ex.check_balance_epoch(3, images), ex.WRONG, "left over")
    _says(ex.check_balance_epoch(1, images), ex.WRONG, "groups of 3 labels")
    _says(ex.check_balance_epoch(batches, 59), ex.WRONG, "does not show every image")
    _says(ex.check_balance_epoch(batches, 30), ex.WRONG, "same number of")
    _says(ex.check_balance_epoch(2.0, images), ex.WRONG, "whole number")
    _says(ex.check_balance_epoch(batches, True), ex.WRONG, "not bool")


def test_balance_epoch_leaves_numpy_generator_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    ex.check_balance_epoch(*_epoch_by_hand())
    assert np.random.rand() == expected


def _loss(clamp=True, squared=False, margin_sign=1):
    def fn(a, p, n, margin):
        d_ap, d_an = (a - p).norm(dim=1), (a - n).norm(dim=1)
        if squared:
            d_ap, d_an = d_ap**2, d_an**2
        value = d_ap - d_an + margin_sign * margin
        return (torch.clamp(value, min=0) if clamp else value).mean()

    return fn


def test_triplet_loss():
    result = ex.check_triplet_loss(_loss())
    _says(result, ex.RIGHT)
    result = ex.check_triplet_loss(_loss(clamp=False))
    _says(result, ex.WRONG, "clamp")
    result = ex.check_triplet_loss(_loss(squared=True))
    _says(result, ex.WRONG, "squared")
    result = ex.check_triplet_loss(_loss(margin_sign=-1))
    _says(result, ex.WRONG, "margin")
    result = ex.check_triplet_loss(lambda a, p, n, m: torch.zeros(len(a)))
    _says(result, ex.WRONG, "one number")


def _hardest(embeddings, labels):
    labels = torch.tensor(labels)
    return torch.cdist(embeddings, embeddings).masked_fill(labels[:, None] == labels[None, :], float("inf")).argmin(1)


def test_hardest_negatives():
    result = ex.check_hardest_negatives(_hardest)
    _says(result, ex.RIGHT)
    result = ex.check_hardest_negatives(lambda e, l: torch.cdist(e, e).fill_diagonal_(1e9).argmin(1))
    _says(result, ex.WRONG, "own label")
    result = ex.check_hardest_negatives(lambda e, l: _hardest(e, l).flip(0))
    _says(result, ex.WRONG, "hardest negative is")
    result = ex.check_hardest_negatives(lambda e, l: _hardest(e, l)[:3])
    _says(result, ex.WRONG, "one index per anchor")


def test_metrics_by_hand():
    result = ex.check_metrics_by_hand(1.0, 2 / 3, (1 / 2 + 2 / 3) / 2)
    _says(result, ex.RIGHT)
    result = ex.check_metrics_by_hand(1.0, 2 / 3, 0.5)  # averaged over n_gt hits instead of hits in top k
    _says(result, ex.WRONG, "map@3")
    result = ex.check_metrics_by_hand(1.0, 2 / 4, (1 / 2 + 2 / 3) / 2)  # divided by n_gt
    _says(result, ex.WRONG, "precision@3", "min(k")
    result = ex.check_metrics_by_hand(0.0, 2 / 3, (1 / 2 + 2 / 3) / 2)
    _says(result, ex.WRONG, "cmc@3")


def _ap(is_correct, n_gt, k):
    hits, total = 0, 0.0
    for rank, correct in enumerate(is_correct[:k], start=1):
        if correct:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def test_average_precision():
    result = ex.check_average_precision(_oml_ap)
    _says(result, ex.RIGHT, "edge cases")
    result = ex.check_average_precision(lambda c, n, k: _ap(c, n, k) * sum(c[:k]) / min(n, k) if n else 0)
    _says(result, ex.WRONG, "OML gives")
    result = ex.check_average_precision(lambda c, n, k: sum(c[:k]) / k)
    _says(result, ex.WRONG)


def _oml_ap(is_correct, n_gt, k):
    if not is_correct:  # OML's convention for an empty ranking
        return 1.0 if n_gt == 0 else 0.0
    return _ap(is_correct, n_gt, k)


def _indexing_ap(is_correct, n_gt, k):  # walks k ranks, so it fails when k is longer than the ranking
    if not is_correct or k <= len(is_correct):
        return _oml_ap(is_correct, n_gt, k)
    return _ap([is_correct[i] for i in range(k)], n_gt, k)


def test_average_precision_edge_cases():
    for case in basics.AP_EDGE_CASES:  # the cases the checker adds are the edge cases this test names
        oml = calc_map([torch.tensor(case[0], dtype=torch.bool)], [case[1]], (case[2],))[0][0]
        assert float(oml) == pytest.approx(_oml_ap(*case))
    result = ex.check_average_precision(_ap)  # no special case for an empty ranking with nothing to find
    _says(result, ex.WRONG, "none retrieved", "n_gt=0", "empty ranking", "you return 0.0000, OML gives 1.0000")
    result = ex.check_average_precision(_indexing_ap)
    _says(result, ex.WRONG, "k=10", "longer than the ranking", "raised IndexError")
    result = ex.check_average_precision(lambda c, n, k: _oml_ap(c, n, k) if n else 1.0)  # n_gt=0 is not a free 1.0
    _says(result, ex.WRONG, "n_gt=0", "no correct item exists", "OML gives 0.0000")
    result = ex.check_average_precision(lambda c, n, k: _ap(c, n, k) if c else 1 / n)  # divides by zero
    _says(result, ex.WRONG, "raised ZeroDivisionError")


def _confusion_setup(first=((0, 1), (0, 3), (1, 0), (0, 2), (0, 1))):
    """Five queries only (rows 0-4) and four gallery items only (rows 5-8): positions are not rows.

    ``first`` holds each query's results as gallery positions: 0 is a 6, 1 a 5, 2 a 7, 3 a 5. By
    default 5->6 twice, 6->5 once, 7->6 twice: the pair 5/6 wins both ways, 7->6 ties one way.
    """
    df = pd.DataFrame({
        "label": [5, 5, 6, 7, 7, 6, 5, 7, 5],
        "path": [f"{i}.png" for i in range(9)],
        "is_query": [True] * 5 + [False] * 4,
        "is_gallery": [False] * 5 + [True] * 4,
    })
    rr = RetrievalResults(
        distances=[torch.tensor([0.1, 0.2])] * len(first), retrieved_ids=[torch.tensor(r) for r in first]
    )
    return rr, ImageQueryGalleryLabeledDataset(df)


def test_confused_pair():
    rr, dataset = _confusion_setup()
    _says(ex.check_confused_pair((5, 6), rr, dataset), ex.RIGHT, "5 and 6: 3 of the 5 queries", "5->6: 2, 6->5: 1")
    _says(ex.check_confused_pair([6, 5], rr, dataset), ex.RIGHT, "5 and 6")
    _says(ex.check_confused_pair((6, 7), rr, dataset), ex.WRONG, "confused 2 times", "one direction only")
    _says(ex.check_confused_pair((5, 7), rr, dataset), ex.WRONG, "confused 0 times", "gallery position")
    _says(ex.check_confused_pair((5, 5), rr, dataset), ex.WRONG, "own digit is correct")
    for bad in (56, (5, 6, 7), (5.5, 6), "ab"):
        _says(ex.check_confused_pair(bad, rr, dataset), ex.WRONG, "give two digits")


def test_confused_pair_ties_and_bad_input():
    rr, dataset = _confusion_setup(first=((1, 0), (0, 3), (1, 0), (0, 2), (0, 1)))  # 5/6 twice, 6/7 twice
    _says(ex.check_confused_pair((5, 6), rr, dataset), ex.RIGHT, "tied with [(6, 7)]")
    _says(ex.check_confused_pair((7, 6), rr, dataset), ex.RIGHT, "tied with [(5, 6)]")
    short = RetrievalResults(distances=rr.distances[:2], retrieved_ids=rr.retrieved_ids[:2])
    with pytest.raises(ValueError, match="pass the dataset rr was computed on"):
        ex.check_confused_pair((5, 6), short, dataset)
