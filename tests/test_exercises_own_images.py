"""Chapter 08's checkers: kNN with "unknown" by hand (08.1), a threshold at a false match rate
(08.2) and the other tiles' cost (08.3)."""

import numpy as np
import pytest
import torch

import oml_helpers as h
from oml_helpers import exercises as ex
from test_exercises_retrieval import _rr
from verdicts import says

GALLERY_LABELS = np.arange(40) % 7
QUERY_LABELS = np.arange(12) % 7


UNKNOWN = ex.own_images_knn.UNKNOWN
THRESHOLD = 0.5  # _rr's distances run from 0.1 to 1.2: some nearest items lie beyond


def _knn(tie_to_nearest=True, k_off=0, refuse="nearest", strict=False):
    """kNN with "unknown", written from the task, with one typical mistake switched on:
    ties by label, one neighbour too many, no refusals (refuse=None), a refusal when the
    k-th item is far (refuse="kth"), or a distance equal to the threshold answered (strict)."""

    def my_knn(rr, gallery_labels, k, threshold=float("inf")):
        out = []
        for ids, d in zip(rr.retrieved_ids, rr.distances):
            votes = list(np.asarray(gallery_labels)[ids[: k + k_off].numpy()])
            counts = {v: votes.count(v) for v in votes}
            best = max(counts.values())
            tied = [v for v in votes if counts[v] == best]
            far = {"nearest": d[0], "kth": d[: k + k_off][-1], None: -np.inf}[refuse]
            refused = far > threshold if strict else far >= threshold
            out.append(UNKNOWN if refused else tied[0] if tie_to_nearest else max(tied))
        return np.array(out)

    return my_knn


def _right_rates(rr=None, threshold=THRESHOLD):
    rr = rr or _rr()
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, threshold)
    return ex.own_images_knn.coverage_accuracy(predicted, QUERY_LABELS)


def _check(fn, coverage=None, accuracy=None, threshold=THRESHOLD):
    if coverage is None:
        coverage, accuracy = _right_rates(threshold=threshold)
    return ex.check_knn(fn, _rr(), GALLERY_LABELS, QUERY_LABELS, threshold, coverage, accuracy)


def test_knn_rule_and_rates_by_hand():
    rr = _rr()
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, THRESHOLD)
    nearest = np.array([float(d[0]) for d in rr.distances])
    # the data has both kinds of query: some refused, some answered
    assert 0 < (nearest >= THRESHOLD).sum() < len(nearest)
    assert ((predicted == UNKNOWN) == (nearest >= THRESHOLD)).all()
    coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, QUERY_LABELS)
    answered = predicted != UNKNOWN
    assert coverage == answered.mean()
    assert accuracy == (predicted[answered] == QUERY_LABELS[answered]).mean()
    # nothing answered: coverage 0, accuracy undefined
    none = ex.own_images_knn.coverage_accuracy(np.full(3, UNKNOWN), np.arange(3))
    assert none[0] == 0 and np.isnan(none[1])


def test_knn_right_answer():
    says(
        _check(_knn()),
        ex.RIGHT,
        "With no threshold, k=1 answers every query",
    )
    coverage, accuracy = _right_rates()
    says(_check(_knn(), torch.tensor(coverage), np.float64(accuracy)), ex.RIGHT)


def test_knn_ties_broken_the_other_way():
    says(_check(_knn(tie_to_nearest=False)), ex.WRONG, "whose item is nearest")


def test_knn_tie_rules_are_caught_without_ties_in_the_data():
    # every gallery item has one label, so the data itself has no tie: only the
    # checker's built case can catch a rule that breaks ties by label
    one_label = np.zeros(40, dtype=int)

    def smallest_label(rr, gallery_labels, k, threshold=float("inf")):
        labels = np.asarray(gallery_labels)
        votes = [np.bincount(labels[ids[:k].numpy()]).argmax() for ids in rr.retrieved_ids]
        nearest = np.array([float(d[0]) for d in rr.distances])
        return np.where(nearest >= threshold, UNKNOWN, votes)

    for rule in (smallest_label, _knn(tie_to_nearest=False)):
        verdict = ex.check_knn(rule, _rr(), one_label, QUERY_LABELS, THRESHOLD, 0.5, 0.5)
        says(verdict, ex.WRONG, "whose item is nearest")


def test_knn_off_by_one_neighbour():
    says(_check(_knn(k_off=1)), ex.WRONG, "should get")


def test_knn_without_refusals():
    says(_check(_knn(refuse=None)), ex.WRONG, "should be UNKNOWN", "beyond the threshold")


def test_knn_refusing_on_the_kth_neighbour():
    says(
        _check(_knn(refuse="kth")), ex.WRONG, "not UNKNOWN", "Answer UNKNOWN only when the nearest"
    )


def test_knn_distance_equal_to_the_threshold():
    says(
        _check(_knn(strict=True)),
        ex.WRONG,
        "at the threshold",
        "a distance equal to the threshold is a non-match",
    )


def test_knn_threshold_ignored_when_it_is_not_passed_on():
    # a function whose threshold argument is missing cannot be called as the task says
    def no_threshold(rr, gallery_labels, k):
        return _knn(refuse=None)(rr, gallery_labels, k)

    with pytest.raises(TypeError):
        _check(no_threshold)


def test_knn_wrong_shape():
    def one_label(rr, gallery_labels, k, threshold=float("inf")):
        return np.array([0])

    says(_check(one_label), ex.WRONG, "one label (or UNKNOWN) per")


def test_knn_coverage_mistakes():
    coverage, accuracy = _right_rates()
    assert 0 < coverage < 1
    says(_check(_knn(), 1 - coverage, accuracy), ex.WRONG, "That is the share refused")
    says(_check(_knn(), 1.0, accuracy), ex.WRONG, "coverage is not 1.000")
    args = (_knn(), _rr(), GALLERY_LABELS, QUERY_LABELS, THRESHOLD)
    says(ex.check_knn(*args, None, accuracy), ex.WRONG, "give `coverage` as one number")
    says(_check(_knn(), "0.5", accuracy), ex.WRONG, "not str")


def test_knn_accuracy_mistakes():
    rr = _rr()
    # queries whose first answer is right every other time, refused or not, so that
    # the three wrong ways to score below give three different numbers
    first = h.knn_classify(rr, GALLERY_LABELS, 1)
    labels = np.where(np.arange(12) % 2 == 0, first, (first + 1) % 7)
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, THRESHOLD)
    coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, labels)
    all_accuracy = np.mean(first == labels)
    assert len({round(accuracy, 3), round(accuracy * coverage, 3), round(all_accuracy, 3)}) == 3

    def check(value):
        return ex.check_knn(_knn(), rr, GALLERY_LABELS, labels, THRESHOLD, coverage, value)

    says(check(accuracy), ex.RIGHT)
    # the lesson follows the numbers: here the refusals help, on the book's data not
    helped = accuracy > all_accuracy
    lesson = "bought accuracy" if helped else "bought no accuracy"
    says(check(accuracy), ex.RIGHT, lesson)
    says(check(accuracy * coverage), ex.WRONG, "counts every UNKNOWN as a wrong answer")
    says(check(all_accuracy), ex.WRONG, "accuracy with no threshold")
    says(check(2.0), ex.WRONG, "which share got the right one")
    says(check(...), ex.WRONG, "`accuracy` is still `...`")


def test_knn_lesson_follows_the_refusals():
    # the closing lesson must say what this run shows: a gain only when queries were
    # refused and the answered ones are more often right, and no lesson about
    # refusals when none was refused
    rr = _rr()
    first = h.knn_classify(rr, GALLERY_LABELS, 1)
    refused = np.array([float(d[0]) for d in rr.distances]) >= THRESHOLD
    n_refused = int(refused.sum())
    assert 0 < n_refused < len(refused)
    wrong = (first + 1) % 7

    def verdict(labels, threshold=THRESHOLD):
        predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, threshold)
        coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, labels)
        return ex.check_knn(_knn(), rr, GALLERY_LABELS, labels, threshold, coverage, accuracy)

    # the refused queries are the wrong ones: refusing buys accuracy
    helped = verdict(np.where(refused, wrong, first))
    says(helped, ex.RIGHT, f"refuses {n_refused} of the 12", "bought accuracy")
    # the refused queries are the right ones: refusing buys nothing
    hurt = verdict(np.where(refused, first, wrong))
    says(hurt, ex.RIGHT, f"refuses {n_refused} of the 12", "bought no accuracy")
    # nothing refused: the run shows nothing about refusals, whatever the accuracy
    for labels in (np.where(refused, wrong, first), np.where(refused, first, wrong)):
        none = verdict(labels, threshold=np.inf)
        says(none, ex.RIGHT, "refuses 0 of the 12", "Nothing was refused", "cannot show")
        assert "bought" not in none.message, none.message
    # a threshold below every nearest distance refuses all: nothing answered
    says(verdict(first, threshold=0.0), ex.RIGHT, "refuses 12 of the 12", "no accuracy")


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
