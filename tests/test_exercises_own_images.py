"""Chapter 08's checkers: kNN by hand (08.1) and a threshold at a false match rate (08.2)."""

import numpy as np
import pytest
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


# 08.3: four queries of tiles a_0 and b_0; a_1 is another tile of photo a
SAME_PHOTO_QUERIES = np.array(["a_0", "a_0", "b_0", "b_0"])
SAME_PHOTO_GALLERY = np.array(["a_0", "a_1", "b_0", "b_1"])


def _same_photo_rr():
    from oml.retrieval import RetrievalResults

    orders = ([1, 0, 2, 3], [0, 1, 2, 3], [3, 2, 0, 1], [0, 3, 2, 1])
    return RetrievalResults(
        distances=[torch.tensor([0.1, 0.2, 0.3, 0.4]) for _ in orders],
        retrieved_ids=[torch.tensor(o) for o in orders],
        gt_ids=None,
    )


def test_same_photo_numbers():
    # first answers: a_1 (wrong), a_0 (right), b_1 (wrong), a_0 (wrong, other photo)
    with_them, without_them = ex.your_own_images.same_photo_cmc1(
        _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY
    )
    assert (with_them, without_them) == (0.25, 0.75)


def test_same_photo_right_answer():
    says(
        ex.check_same_photo_cost(
            0.75,
            _same_photo_rr(),
            SAME_PHOTO_QUERIES,
            SAME_PHOTO_GALLERY,
            guess=0.5,
            raised=" With",
        ),
        ex.RIGHT,
        "0.25 with the other tiles",
        "0.75 without them. You guessed 0.50.",
        "A split by tile would most likely raise the first number, 0.25",
    )


def test_same_photo_raised_is_graded():
    args = (0.75, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY)
    says(
        ex.check_same_photo_cost(*args, raised="without"),
        ex.WRONG,
        "0.75 without them.",
        "which number would it help?",
    )
    for unanswered in (None, "both", 1):
        says(
            ex.check_same_photo_cost(*args, raised=unanswered),
            ex.WRONG,
            "0.25 with the other tiles",
            'set raised to "with" or "without"',
        )
    says(
        ex.check_same_photo_cost(*args, raised=...),
        ex.WRONG,
        "`raised` is still `...`",
    )


def test_same_photo_unchanged_score_is_caught():
    says(
        ex.check_same_photo_cost(0.25, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "with the other tiles still there",
    )


def test_same_photo_own_tile_dropped_is_caught():
    says(
        ex.check_same_photo_cost(0.0, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "Keep the query's own tile",
    )


def test_same_photo_other_wrong_number_and_bad_input():
    rr = _same_photo_rr()
    says(
        ex.check_same_photo_cost(0.5, rr, SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "then check whether the first one left",
    )
    says(
        ex.check_same_photo_cost("0.75", rr, SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "give CMC@1 as one number, not str",
    )
    with pytest.raises(ValueError, match="one class name per query"):
        ex.check_same_photo_cost(0.75, rr, SAME_PHOTO_QUERIES[:2], SAME_PHOTO_GALLERY)
