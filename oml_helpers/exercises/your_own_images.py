"""Checkers for the exercises of chapter 08, Your own images: kNN classification by
hand (08.1) and a match threshold at a chosen false match rate, scored on
held-out queries (08.2)."""

from typing import Any, Callable, Sequence

import numpy as np
import torch

from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.verification import knn_classify, match_rates, match_threshold


def _tie_case() -> tuple:
    """Four queries whose votes at k=4 test the rules: a majority among fewer than
    k items, two 2-2 ties that only the nearest item settles (the smallest and
    the largest label would each get one wrong), and a single item."""
    rr = RetrievalResults(
        distances=[torch.tensor(d) for d in ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4],
                                             [0.1, 0.2, 0.3, 0.4], [0.5])],
        retrieved_ids=[torch.tensor(i) for i in ([0, 1, 2], [3, 1, 4, 2],
                                                 [1, 3, 4, 2], [2])],
        gt_ids=None,
    )  # fmt: skip
    return rr, np.array([7, 5, 5, 9, 9])


@checker
def check_knn(
    my_knn: Callable[[RetrievalResults, Sequence[int], int], Any],
    rr: RetrievalResults,
    gallery_labels: Sequence[int],
    query_labels: Sequence[int],
) -> Verdict:
    """Exercise 08.1: ``my_knn(rr, gallery_labels, k)`` gives the label of each
    query by a vote of its k nearest gallery items, ties to the nearest."""
    problems = []
    tie_rr, tie_labels = _tie_case()
    cases = [(rr, np.asarray(gallery_labels), k) for k in (1, 5)]
    cases.append((tie_rr, tie_labels, 4))
    for case_rr, labels, k in cases:
        right = knn_classify(case_rr, labels, k)
        mine = np.asarray(torch.as_tensor(my_knn(case_rr, labels, k))).reshape(-1)
        if mine.shape != right.shape:
            problems.append(
                f"with k={k} your function gave {mine.size} labels for "
                f"{len(right)} queries: return one label per query."
            )
            break
        wrong = np.flatnonzero(mine != right)
        if len(wrong):
            q = int(wrong[0])
            ids = case_rr.retrieved_ids[q][:k].tolist()
            votes = labels[ids].tolist()
            counts = np.unique(votes, return_counts=True)[1]
            tied = (counts == counts.max()).sum() > 1
            problems.append(
                f"with k={k}, query {q} (nearest gallery positions {ids}, labels "
                f"{votes}) should get {right[q]}, not {mine[q]}."
                + (
                    "\nA tie goes to the tied label whose item is nearest."
                    if tied
                    else ""
                )
            )
            break
    if problems:
        return _verdict(problems, "")
    accuracy = {
        k: float(np.mean(knn_classify(rr, gallery_labels, k) == query_labels))
        for k in (1, 5)
    }
    return _verdict(
        [],
        f"your votes match. Accuracy on these queries: k=1 {accuracy[1]:.2f}, "
        f"k=5 {accuracy[5]:.2f}.",
    )


@checker
def check_fmr_threshold(
    threshold: float,
    rr_tune: RetrievalResults,
    rr_test: RetrievalResults,
    fmr: float,
) -> Verdict:
    """Exercise 08.2: the threshold at false match rate ``fmr`` on the tuning
    results, then both rates on the test results."""
    if torch.is_tensor(threshold):
        threshold = threshold.item()
    if not isinstance(threshold, (float, int, np.floating)):
        return _verdict(
            [f"give the threshold as one number, not {type(threshold).__name__}."],
            "",
        )
    right = match_threshold(rr_tune, fmr)
    tune = match_rates(rr_tune, float(threshold))
    if not np.isclose(threshold, right, rtol=1e-3, atol=1e-4):
        test_right = match_threshold(rr_test, fmr)
        hint = (
            " That is the threshold of the test queries: choose it on rr_tune."
            if np.isclose(threshold, test_right, rtol=1e-3, atol=1e-4)
            else " Take the fmr quantile of the distances of the pairs whose labels"
            " differ (np.quantile)."
        )
        return _verdict(
            [
                f"{float(threshold):.4f} lets {tune['fmr']:.3f} of the tuning "
                f"pairs of different things through, not {fmr}.{hint}"
            ],
            "",
        )
    test = match_rates(rr_test, float(threshold))
    return _verdict(
        [],
        f"threshold {float(threshold):.3f}. On the tuning queries FMR "
        f"{tune['fmr']:.3f}, FNMR {tune['fnmr']:.3f}; on the test queries, which "
        f"did not choose it, FMR {test['fmr']:.3f}, FNMR {test['fnmr']:.3f}.",
    )
