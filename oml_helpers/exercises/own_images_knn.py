"""Checker for exercise 08.1 of chapter 08, Your own images: kNN classification by
hand, with the answer "unknown" when even the nearest gallery item is beyond the
match threshold, and the coverage and accuracy that rule gives."""

from typing import Any, Callable, Sequence

import numpy as np
import torch

from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.verification import knn_classify


def _tie_case() -> tuple:
    """Four queries whose votes at k=4 test the rules: a majority among fewer than
    k items, two 2-2 ties that only the nearest item settles (the smallest and
    the largest label would each get one wrong), and a single item. The
    distances are exact in float32, so a threshold equal to one is equal in any
    precision."""
    rr = RetrievalResults(
        distances=[torch.tensor(d) for d in ([0.125, 0.25, 0.375],
                                             [0.125, 0.25, 0.375, 0.5],
                                             [0.125, 0.25, 0.375, 0.5], [0.5])],
        retrieved_ids=[torch.tensor(i) for i in ([0, 1, 2], [3, 1, 4, 2],
                                                 [1, 3, 4, 2], [2])],
        gt_ids=None,
    )  # fmt: skip
    return rr, np.array([7, 5, 5, 9, 9])


UNKNOWN = -1  # exercise 08.1's answer "none of the gallery's things"


def knn_or_unknown(
    rr: RetrievalResults, gallery_labels: Sequence[int], k: int, threshold: float
) -> np.ndarray:
    """Exercise 08.1's rule: the vote of the ``k`` nearest (``knn_classify``), or
    ``UNKNOWN`` where even the nearest item is at or beyond ``threshold`` (a
    non-match, as ``match_rates`` counts it)."""
    predicted = knn_classify(rr, gallery_labels, k)
    nearest = np.array([float(d[0]) for d in rr.distances])
    return np.where(nearest >= threshold, UNKNOWN, predicted)


def coverage_accuracy(predicted: Any, query_labels: Sequence[int]) -> tuple:
    """``(coverage, accuracy)``: the share of queries answered (not ``UNKNOWN``),
    and the share of those answers that are right (nan when none is answered)."""
    predicted, query_labels = np.asarray(predicted), np.asarray(query_labels)
    answered = predicted != UNKNOWN
    if not answered.any():
        return 0.0, float("nan")
    right = predicted[answered] == query_labels[answered]
    return float(answered.mean()), float(right.mean())


def _rule_problem(case_rr, labels, k, threshold, right, mine) -> str:
    """What is wrong with the first query where ``mine`` differs from ``right``."""
    q = int(np.flatnonzero(mine != right)[0])
    nearest = float(case_rr.distances[q][0])
    where = f"with k={k} and threshold {threshold:g}, query {q}"
    if right[q] == UNKNOWN:
        at = "at" if nearest == threshold else "beyond"
        return (
            f"{where} should be UNKNOWN, not {mine[q]}: its nearest gallery "
            f"item is at distance {nearest:g}, {at} the threshold, so not even "
            "the nearest is a match (a distance equal to the threshold is a "
            "non-match, as in h.match_rates)."
        )
    if mine[q] == UNKNOWN:
        return (
            f"{where} should get {right[q]}, not UNKNOWN: its nearest gallery item "
            f"is at distance {nearest:g}, below the threshold. Answer UNKNOWN only "
            "when the nearest item (position 0, the smallest distance) is at or "
            "beyond it."
        )
    ids = case_rr.retrieved_ids[q][:k].tolist()
    votes = labels[ids].tolist()
    counts = np.unique(votes, return_counts=True)[1]
    tied = (counts == counts.max()).sum() > 1
    return (
        f"{where} (nearest gallery positions {ids}, labels {votes}) should get "
        f"{right[q]}, not {mine[q]}."
        + ("\nA tie goes to the tied label whose item is nearest." if tied else "")
    )


@checker
def check_knn(
    my_knn: Callable[..., Any],
    rr: RetrievalResults,
    gallery_labels: Sequence[int],
    query_labels: Sequence[int],
    threshold: float,
    coverage: Any = None,
    accuracy: Any = None,
) -> Verdict:
    """Exercise 08.1: ``my_knn(rr, gallery_labels, k, threshold)`` gives each query
    the vote of its ``k`` nearest gallery items, ties to the nearest, or
    ``UNKNOWN`` (-1) when its nearest item is at or beyond ``threshold``; then
    ``coverage`` and ``accuracy`` of ``k=1`` at ``threshold`` on ``rr``.

    Args:
        my_knn: The student's function.
        rr: The test queries' retrieval results.
        gallery_labels: The label of each gallery position.
        query_labels: The true label of each query.
        threshold: The match threshold (chosen on other queries).
        coverage: The student's share of queries that ``k=1`` answers.
        accuracy: The student's share of right answers among those answered.

    Returns:
        The verdict: right when the rule, ``coverage`` and ``accuracy`` are right.
    """
    gallery_labels = np.asarray(gallery_labels)
    query_labels = np.asarray(query_labels)
    threshold = float(threshold)
    tie_rr, tie_labels = _tie_case()
    cases = [
        (rr, gallery_labels, k, t) for t in (np.inf, threshold) for k in (1, 5)
    ]
    # the tie rules, then the edge: a nearest item exactly at the threshold
    cases += [(tie_rr, tie_labels, 4, np.inf), (tie_rr, tie_labels, 2, 0.125)]
    cases.append((tie_rr, tie_labels, 1, 0.375))
    for case_rr, labels, k, t in cases:
        right = knn_or_unknown(case_rr, labels, k, t)
        mine = np.asarray(torch.as_tensor(my_knn(case_rr, labels, k, t))).reshape(
            -1
        )
        if mine.shape != right.shape:
            return _verdict(
                [
                    f"with k={k} your function gave {mine.size} labels for "
                    f"{len(right)} queries: return one label (or UNKNOWN) per "
                    "query."
                ],
                "",
            )
        if (mine != right).any():
            return _verdict([_rule_problem(case_rr, labels, k, t, right, mine)], "")
    everything = knn_classify(rr, gallery_labels, 1)
    all_accuracy = float(np.mean(everything == query_labels))
    at_threshold = knn_or_unknown(rr, gallery_labels, 1, threshold)
    right_cov, right_acc = coverage_accuracy(at_threshold, query_labels)
    n_refused = int((at_threshold == UNKNOWN).sum())
    tol = 0.5 / len(query_labels)
    for name, value in (("coverage", coverage), ("accuracy", accuracy)):
        if torch.is_tensor(value):
            value = value.item()
        if not isinstance(value, (float, int, np.floating)) or isinstance(
            value, bool
        ):
            return _verdict(
                [
                    f"your rule is right. Now give `{name}` as one number (k=1, "
                    f"the threshold {threshold:.3f}), not {type(value).__name__}."
                ],
                "",
            )
    if not np.isclose(coverage, right_cov, rtol=0, atol=tol):
        hint = (
            " That is the share refused: coverage is the share answered."
            if np.isclose(coverage, 1 - right_cov, rtol=0, atol=tol)
            else " Count the queries whose answer is not UNKNOWN, over all queries."
        )
        return _verdict(
            [f"your rule is right, but coverage is not {coverage:.3f}.{hint}"], ""
        )
    # nothing answered: accuracy is undefined, and nan is the right answer
    if not np.isclose(accuracy, right_acc, rtol=0, atol=tol, equal_nan=True):
        n_right = right_acc * right_cov  # right answers over all queries
        if np.isclose(accuracy, n_right, rtol=0, atol=tol):
            hint = (
                " That counts every UNKNOWN as a wrong answer: divide the right "
                "answers by the queries answered, not by all queries."
            )
        elif np.isclose(accuracy, all_accuracy, rtol=0, atol=tol):
            hint = " That is the accuracy with no threshold: score k=1 with it."
        else:
            hint = (
                " Of the queries that got a label, which share got the right one?"
            )
        return _verdict(
            [f"your rule is right, but accuracy is not {accuracy:.3f}.{hint}"], ""
        )
    summary = (
        f"your votes and refusals match. With no threshold, k=1 answers every "
        f"query, {all_accuracy:.2f} of them right. With the threshold "
        f"{threshold:.3f} it refuses {n_refused} of the {len(query_labels)} "
        f"queries and answers {right_cov:.2f} of them"
    )
    if n_refused == 0:
        lesson = (
            f", so {right_acc:.2f} of the answers are right, as with no threshold. "
            "Nothing was refused, so this run cannot show what refusing buys: "
            "try a smaller threshold."
        )
    elif n_refused == len(query_labels):
        lesson = (
            ": none, so there is no accuracy to score (nan). Try a larger "
            "threshold."
        )
    else:
        refused = at_threshold == UNKNOWN
        n_would = int((everything[refused] == query_labels[refused]).sum())
        would = (
            f" {n_would} of the {n_refused} refused queries would have been "
            "answered right"
        )
        if right_acc > all_accuracy + tol:
            lesson = (
                f", {right_acc:.2f} of those answers right. The refusals cost "
                f"coverage and bought accuracy:{would}, fewer than among those "
                "answered: here the queries whose nearest image is far were the "
                "likelier to be wrong."
            )
        else:
            change = "fell" if right_acc < all_accuracy - tol else "barely moved"
            lesson = (
                f", {right_acc:.2f} of those answers right. The refusals cost "
                f"coverage and bought no accuracy:{would}, so accuracy {change}. "
                "A threshold catches a query with nothing like it in the "
                "gallery, not a wrong answer that lies as close as the right ones "
                "(such as another tile of the same photo)."
            )
    return _verdict([], summary + lesson)
