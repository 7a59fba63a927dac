"""Each exercise checker accepts the right answer and turns down typical wrong ones with a reason."""

import pandas as pd
import pytest
import torch

from oml_helpers import exercises as ex
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


@pytest.mark.parametrize("n_labels,n_instances", [(3, 4), (2, 2), (5, 16)])
def test_triplet_count(n_labels, n_instances):
    right = n_labels * n_instances * (n_instances - 1) * (n_labels - 1) * n_instances
    result = ex.check_triplet_count(right, n_labels, n_instances)
    _says(result, ex.RIGHT)
    result = ex.check_triplet_count(right + 1, n_labels, n_instances)
    _says(result, ex.WRONG, "per anchor")
    result = ex.check_triplet_count(float(right), n_labels, n_instances)
    _says(result, ex.WRONG, "whole number")


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
    result = ex.check_average_precision(_ap)
    _says(result, ex.RIGHT)
    result = ex.check_average_precision(lambda c, n, k: _ap(c, n, k) * sum(c[:k]) / min(n, k) if n else 0)
    _says(result, ex.WRONG, "OML gives")
    result = ex.check_average_precision(lambda c, n, k: sum(c[:k]) / k)
    _says(result, ex.WRONG)


def test_worst_digit():
    per_query = torch.tensor([0.9, 0.8, 0.2, 0.4, 1.0, 0.95])
    labels = torch.tensor([5, 5, 6, 6, 7, 7])
    result = ex.check_worst_digit(6, per_query, labels)
    _says(result, ex.RIGHT, "digit 6", "0.300")
    result = ex.check_worst_digit(5, per_query, labels)
    _says(result, ex.WRONG, "digit 5", "0.850")
