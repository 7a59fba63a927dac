"""Chapter 08's checkers: kNN by hand (08.1) and a threshold at a false match rate (08.2)."""

import numpy as np
import torch

import oml_helpers as h
from oml_helpers import exercises as ex
from test_exercises_retrieval import _rr
from verdicts import says

GALLERY_LABELS = np.arange(40) % 7
QUERY_LABELS = np.arange(12) % 7


def _knn(tie_to_nearest=True, k_off=0):
    def my_knn(rr, gallery_labels, k):
        out = []
        for ids in rr.retrieved_ids:
            votes = list(np.asarray(gallery_labels)[ids[: k + k_off].numpy()])
            counts = {v: votes.count(v) for v in votes}
            best = max(counts.values())
            tied = [v for v in votes if counts[v] == best]
            out.append(tied[0] if tie_to_nearest else max(tied))
        return np.array(out)

    return my_knn


def test_knn_right_answer():
    says(
        ex.check_knn(_knn(), _rr(), GALLERY_LABELS, QUERY_LABELS),
        ex.RIGHT,
        "Accuracy on these queries: k=1",
    )


def test_knn_ties_broken_the_other_way():
    says(
        ex.check_knn(_knn(tie_to_nearest=False), _rr(), GALLERY_LABELS, QUERY_LABELS),
        ex.WRONG,
        "whose item is nearest",
    )


def test_knn_tie_rules_are_caught_without_ties_in_the_data():
    # every gallery item has one label, so the data itself has no tie: only the
    # checker's built case can catch a rule that breaks ties by label
    one_label = np.zeros(40, dtype=int)

    def smallest_label(rr, gallery_labels, k):
        labels = np.asarray(gallery_labels)
        return np.array([np.bincount(labels[ids[:k].numpy()]).argmax() for ids in rr.retrieved_ids])

    for rule in (smallest_label, _knn(tie_to_nearest=False)):
        says(ex.check_knn(rule, _rr(), one_label, QUERY_LABELS), ex.WRONG, "whose item is nearest")


def test_knn_off_by_one_neighbour():
    says(ex.check_knn(_knn(k_off=1), _rr(), GALLERY_LABELS, QUERY_LABELS), ex.WRONG, "should get")


def test_knn_wrong_shape():
    def one_label(rr, gallery_labels, k):
        return np.array([0])

    says(
        ex.check_knn(one_label, _rr(), GALLERY_LABELS, QUERY_LABELS),
        ex.WRONG,
        "one label per query",
    )


def _negatives(rr):
    return torch.cat(
        [d[~torch.isin(i, g)] for d, i, g in zip(rr.distances, rr.retrieved_ids, rr.gt_ids)]
    )


def test_threshold_right_answer_and_scored_on_test():
    tune, test = _rr(seed=4), _rr(seed=5)
    th = float(np.quantile(_negatives(tune).numpy(), 0.01))
    assert th == h.match_threshold(tune, 0.01)
    says(ex.check_fmr_threshold(th, tune, test, 0.01), ex.RIGHT, "on the test queries")
    says(ex.check_fmr_threshold(torch.tensor(th), tune, test, 0.01), ex.RIGHT)


def test_threshold_chosen_on_the_test_queries():
    tune, test = _rr(seed=4), _rr(seed=5)
    th = float(np.quantile(_negatives(test).numpy(), 0.2))
    says(ex.check_fmr_threshold(th, tune, test, 0.2), ex.WRONG, "threshold of the test queries")


def test_threshold_from_the_positive_pairs():
    tune, test = _rr(seed=4), _rr(seed=5)
    positives = torch.cat(
        [d[torch.isin(i, g)] for d, i, g in zip(tune.distances, tune.retrieved_ids, tune.gt_ids)]
    )
    th = float(np.quantile(positives.numpy(), 0.2))
    says(ex.check_fmr_threshold(th, tune, test, 0.2), ex.WRONG, "pairs whose labels differ")


def test_threshold_not_a_number():
    says(
        ex.check_fmr_threshold([0.1], _rr(seed=4), _rr(seed=5), 0.01),
        ex.WRONG,
        "one number, not list",
    )
