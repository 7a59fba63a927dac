"""Checkers for the exercises of chapters 01-02 (training, validation)."""

from typing import Callable, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from oml.functional.metrics import calc_cmc, calc_map, calc_precision
from oml.interfaces.datasets import IQueryGalleryLabeledDataset
from oml.losses import TripletLoss
from oml.miners import AllTripletsMiner
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


# Chapter 01 ---------------------------------------------------------------------------------------


@checker
def check_triplet_count(answer: int, n_labels: int = 3, n_instances: int = 4) -> Verdict:
    """Exercise 01.1: how many triplets ``AllTripletsMiner`` forms in an ``n_labels x n_instances`` batch."""
    labels = [label for label in range(n_labels) for _ in range(n_instances)]
    anchors, _, _ = AllTripletsMiner().sample(features=torch.zeros(len(labels), 2), labels=labels)
    truth = len(anchors)
    problems = []
    if not isinstance(answer, (int, np.integer)):
        problems.append(f"give a whole number, not {type(answer).__name__}.")
    elif answer != truth:
        problems.append(
            f"{answer} is not it. Count per anchor: how many positives (same label, not itself) and how many "
            "negatives (other labels) can it pair with? Multiply, then sum over all anchors."
        )
    return _verdict(problems, f"{truth} triplets: {n_labels * n_instances} anchors x {n_instances - 1} positives "
                    f"x {(n_labels - 1) * n_instances} negatives.")


@checker
def check_triplet_loss(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]) -> Verdict:
    """Exercise 01.2: ``fn(anchor, positive, negative, margin)`` returns the mean triplet loss like OML's."""
    generator = torch.Generator().manual_seed(0)
    cases = [(torch.randn(16, 8, generator=generator), 0.2), (torch.randn(16, 8, generator=generator) * 3, 1.0)]
    problems = []
    for features, margin in cases:
        a, p, n = features[:5], features[5:10], features[10:15]
        for anchor, positive, negative in [(a, p, n), (a, a + 0.01, a + 5.0)]:  # the second set satisfies the margin
            truth = TripletLoss(margin=margin, reduction="mean")(anchor, positive, negative)
            value = torch.as_tensor(fn(anchor, positive, negative, margin), dtype=torch.float32)
            if value.numel() != 1:
                problems.append(f"return one number (the mean over triplets), got shape {tuple(value.shape)}.")
            elif not torch.isclose(value, truth, atol=1e-4):
                hint = "values below zero: clamp each triplet's loss at 0." if value < 0 else (
                    "compare d(a, p) - d(a, n) + margin with OML: Euclidean distances, not squared, and the "
                    "margin added, not subtracted."
                )
                problems.append(f"got {value.item():.4f}, expected {truth.item():.4f} (margin {margin}); {hint}")
            if problems:
                break
        if problems:
            break
    return _verdict(problems, "your loss matches OML's TripletLoss.")


@checker
def check_hardest_negatives(fn: Callable[[torch.Tensor, Sequence[int]], torch.Tensor]) -> Verdict:
    """Exercise 01.3: ``fn(embeddings, labels)`` gives, per anchor, the index of its closest other-label item."""
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(12, 4, generator=generator)
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    distances = torch.cdist(embeddings, embeddings)
    same = torch.tensor(labels)[:, None] == torch.tensor(labels)[None, :]
    truth = distances.masked_fill(same, float("inf")).argmin(dim=1)
    answer = torch.as_tensor(fn(embeddings, labels)).long().flatten()
    problems = []
    if answer.shape != truth.shape:
        problems.append(f"return one index per anchor ({len(labels)}), got {answer.numel()}.")
    elif (answer == truth).all():
        pass
    else:
        i = int((answer != truth).nonzero()[0])
        reason = "it has the anchor's own label" if labels[int(answer[i])] == labels[i] else "another negative is closer"
        problems.append(f"for anchor {i} you chose {int(answer[i])}, but {reason}; the hardest negative is {int(truth[i])}.")
    return _verdict(problems, "those are the negatives HardTripletsMiner would pick.")


# Chapter 02 ---------------------------------------------------------------------------------------

EXERCISE_HITS = [False, True, True, False, True]  # exercise 02.1: hits at ranks 2, 3 and 5
EXERCISE_N_GT = 4


def _oml_metrics(is_correct: Sequence[bool], n_gt: int, k: int) -> dict:
    row, n = [torch.tensor(list(is_correct), dtype=torch.bool)], [n_gt]
    return {
        "cmc": float(calc_cmc(row, n, (k,))[0][0]),
        "precision": float(calc_precision(row, n, (k,))[0][0]),
        "map": float(calc_map(row, n, (k,))[0][0]),
    }


@checker
def check_metrics_by_hand(cmc: float, precision: float, map_: float, k: int = 3) -> Verdict:
    """Exercise 02.1: CMC@k, precision@k and mAP@k of ``EXERCISE_HITS`` with ``EXERCISE_N_GT`` correct items."""
    truth = _oml_metrics(EXERCISE_HITS, EXERCISE_N_GT, k)
    hints = {
        "cmc": "CMC@k is 1 as soon as one of the first k is correct.",
        "precision": "OML's precision@k divides the hits in the first k by min(k, number of correct items).",
        "map": "mAP@k averages, over the hits within the first k, the precision at each hit's rank.",
    }
    problems = [
        f"{name}@{k} = {value} is off; {hints[name]}"
        for name, value in (("cmc", cmc), ("precision", precision), ("map", map_))
        if not np.isclose(float(value), truth[name], atol=1e-3)
    ]
    return _verdict(problems, ", ".join(f"{name}@{k} = {value:.3f}" for name, value in truth.items()) + ".")


def _describe_case(is_correct: Sequence[bool], n_gt: int, k: int) -> str:
    hits = "".join("x" if c else "." for c in is_correct) or "(none retrieved)"
    notes = []
    if not len(is_correct):
        notes.append("an empty ranking: OML gives 1.0 when n_gt = 0 (nothing to find) and 0.0 otherwise")
    elif n_gt == 0:
        notes.append("no correct item exists (n_gt = 0)")
    if k > len(is_correct) > 0:
        notes.append("k is longer than the ranking: only the retrieved items count")
    return f"hits '{hits}' (x = correct), n_gt={n_gt}, k={k}" + (f" ({'; '.join(notes)})" if notes else "")


AP_EDGE_CASES = [([], 0, 5), ([], 3, 5), ([False, False, False], 0, 3), ([True, False, True], 2, 10),
                 ([False, True], 1, 5)]  # exercise 02.2: empty, n_gt = 0, k longer than the ranking


@checker
def check_average_precision(fn: Callable[[Sequence[bool], int, int], float]) -> Verdict:
    """Exercise 02.2: ``fn(is_correct, n_gt, k)`` computes OML's AP@k for one query.

    The rankings include ``AP_EDGE_CASES``; an error raised by ``fn`` is reported with its case.
    """
    rng = np.random.default_rng(0)
    cases = [([True, False, True], 2, 3), ([False, False, False], 3, 3), ([False, True, False, True, True], 5, 4)]
    cases += [(list(rng.random(8) < 0.4), 6, int(rng.integers(1, 9))) for _ in range(30)]
    cases += AP_EDGE_CASES
    problems = []
    for is_correct, n_gt, k in cases:
        truth = _oml_metrics(is_correct, n_gt, k)["map"]
        try:
            value = float(fn(list(map(bool, is_correct)), n_gt, k))
        except Exception as e:  # the student's code failing on one case is an answer to explain
            problems.append(f"for {_describe_case(is_correct, n_gt, k)} your function raised "
                            f"{type(e).__name__}: {e}. OML gives {truth:.4f}.")
            break
        if not np.isclose(value, truth, atol=1e-4):
            problems.append(f"for {_describe_case(is_correct, n_gt, k)} you return {value:.4f}, OML gives {truth:.4f}.")
            break
    return _verdict(problems, f"matches OML's mAP on {len(cases)} rankings, the edge cases included.")


def _top1_confusions(rr: RetrievalResults, dataset: IQueryGalleryLabeledDataset) -> pd.Series:
    """How often a query's first result shows another label, per (query label, that label) pair.

    Args:
        rr: Retrieval results of ``dataset``'s queries (retrieved ids are gallery positions).
        dataset: The labelled query/gallery dataset ``rr`` was computed on.

    Returns:
        Counts indexed by ``(query label, first result's label)``, most frequent first.
    """
    labels = dataset.get_labels()
    query_rows, gallery_rows = dataset.get_query_ids().view(-1), dataset.get_gallery_ids().view(-1)
    if len(rr.retrieved_ids) != len(query_rows):
        raise ValueError(f"rr holds {len(rr.retrieved_ids)} queries, the dataset {len(query_rows)}: "
                         "pass the dataset rr was computed on.")
    pairs = [
        (int(labels[q]), int(labels[gallery_rows[ids[0]]]))
        for q, ids in zip(query_rows.tolist(), rr.retrieved_ids)
        if len(ids) and labels[gallery_rows[ids[0]]] != labels[q]
    ]
    return pd.Series(pairs, dtype=object).value_counts()


def _as_digit_pair(answer: object) -> Tuple[int, int]:
    try:
        pair = tuple(sorted(int(x) for x in answer))  # type: ignore[union-attr]
        if len(pair) == 2 and all(float(x) == int(x) for x in answer):  # type: ignore[union-attr]
            return pair  # type: ignore[return-value]
    except (TypeError, ValueError):
        pass
    raise ValueError(answer)


@checker
def check_confused_pair(answer: Tuple[int, int], rr: RetrievalResults, dataset: IQueryGalleryLabeledDataset) -> Verdict:
    """Exercise 02.3: the two digits most often confused at rank 1, counting both directions."""
    one_way = _top1_confusions(rr, dataset)
    both_ways = pd.Series(
        {pair: int(one_way.get(pair, 0) + one_way.get(pair[::-1], 0)) for pair in {tuple(sorted(p)) for p in one_way.index}},
        dtype=int,
    ).sort_index()
    best = int(both_ways.max()) if len(both_ways) else 0
    winners = [pair for pair, n in both_ways.items() if n == best]
    try:
        pair = _as_digit_pair(answer)
    except ValueError:
        return _verdict([f"give two digits, e.g. (5, 3), not {answer!r}."], "")
    problems = []
    if pair not in winners:
        n = int(both_ways.get(pair, 0))
        directions = f"{pair[0]}->{pair[1]}: {int(one_way.get(pair, 0))}, {pair[1]}->{pair[0]}: {int(one_way.get(pair[::-1], 0))}"
        if pair[0] == pair[1]:
            problems.append("a first result of the query's own digit is correct; count the wrong ones only.")
        elif n and max(one_way.get(pair, 0), one_way.get(pair[::-1], 0)) == one_way.iloc[0]:
            problems.append(f"{pair} is confused {n} times ({directions}); did you count one direction only? "
                            "Add both: a 5 retrieving a 9 and a 9 retrieving a 5.")
        else:
            problems.append(
                f"{pair} is confused {n} times ({directions}); another pair more often. For every query whose first "
                "result is wrong, take that result's label (its id is a gallery position: map it with "
                "dataset.get_gallery_ids()), and count each pair of digits in both directions."
            )
    a, b = pair
    tie = f" (tied with {[p for p in winners if p != pair]})" if len(winners) > 1 else ""
    return _verdict(problems, f"{a} and {b}: {best} of the {int(one_way.sum())} queries whose first result is wrong "
                    f"({a}->{b}: {int(one_way.get((a, b), 0))}, {b}->{a}: {int(one_way.get((b, a), 0))}){tie}.")
