"""Checkers for the exercises of chapter 06, Retrieval: OML's adaptive threshold by
hand (06.1), a distance threshold tuned for precision and scored on held-out
results (06.2); 06.3 is in ``retrieval_search``."""

from typing import Callable, Iterable, List, Sequence, Tuple

import numpy as np
import torch

from oml.retrieval import (
    AdaptiveThresholding,
    ConstantThresholding,
    RetrievalResults,
)

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.retrieval import correct_mask, select_queries


def _as_ids(x: Iterable) -> List[int]:
    return (
        [int(i) for i in torch.as_tensor(x).flatten().tolist()]
        if x is not None
        else []
    )


def _adaptive_truth(rr: RetrievalResults, n_std: float) -> List[List[int]]:
    return [
        _as_ids(r)
        for r in AdaptiveThresholding(n_std=n_std).process(rr).retrieved_ids
    ]


def _adaptive_hint(
    rr: RetrievalResults, q: int, n_std: float, mine: List[int], right: List[int]
) -> str:
    """Why ``mine`` (query q's kept ids) differs from OML's ``right``: the
    typical mistakes first."""
    ids, dists = _as_ids(rr.retrieved_ids[q]), rr.distances[q]
    gaps = dists[1:] - dists[:-1]
    big = (gaps > n_std * gaps.mean()).nonzero().flatten()
    # the mean gap of this list only
    alone = ids[: int(big[0]) + 1] if len(big) else ids
    if mine == alone and mine != right:
        return (
            "you took the mean gap of each list alone; OML takes ONE mean over "
            "all the gaps of all the lists in rr together (every gap weighs the "
            "same), then cuts each list against it."
        )
    if sorted(mine) == sorted(right):
        return (
            "the right items but in another order; thresholding never reorders, "
            "keep the ranking."
        )
    if not mine and right == ids:
        return (
            "a list with no gap above n_std * mean gap keeps all its results, not "
            "none."
        )
    if mine == right[:-1]:
        return (
            "one result too few: the cut is just after the result before the big "
            "gap (keep dists[: i + 1])."
        )
    if mine == ids[: len(right) + 1]:
        return (
            "one result too many: keep the results up to the big gap, not the "
            "one after it (keep dists[: i + 1], i the index of the first big gap)."
        )
    return (
        "compute gaps = dists[1:] - dists[:-1] for every list, their mean over "
        "all lists together, and cut each list at its first gap > n_std * mean "
        "(strictly greater)."
    )


@checker
def check_adaptive_by_hand(
    fn: Callable[[RetrievalResults, float], Sequence], rr: RetrievalResults
) -> Verdict:
    """Exercise 06.1: ``fn(rr, n_std)`` gives, per query, the retrieved ids that
    ``AdaptiveThresholding(n_std)`` keeps; checked on ``rr`` and on batches of
    one query."""
    singles = [
        select_queries(rr, [q]) for q in range(min(len(rr.retrieved_ids), 12))
    ]
    cases = [(rr, n_std, None) for n_std in (2.0, 4.0, 1.5)] + [
        (s, 2.0, q) for q, s in enumerate(singles)
    ]
    problems: List[str] = []
    for batch, n_std, single in cases:
        truth, answer = _adaptive_truth(batch, n_std), list(fn(batch, n_std))
        if len(answer) != len(truth):
            problems.append(
                f"return one list of ids per query ({len(truth)} queries), got "
                f"{len(answer)}."
            )
            break
        for q, (mine, right) in enumerate(zip(map(_as_ids, answer), truth)):
            if mine != right:
                where = (
                    f"n_std={n_std:g}, query {q}"
                    if single is None
                    else f"query {single} alone"
                )
                hint = _adaptive_hint(batch, q, n_std, mine, right)
                problems.append(
                    f"for {where}: you keep {mine[:6]}, OML keeps "
                    f"{right[:6]};\n{hint}"
                )
                break
        if problems:
            break
    if problems:
        return _verdict(problems, "")
    in_batch = _adaptive_truth(rr, 2.0)
    changed = [
        q
        for q, s in enumerate(singles)
        if _adaptive_truth(s, 2.0)[0] != in_batch[q]
    ]
    # lines of at most 88 characters, so that the verdict reads without scrolling
    lines = [
        "your cut keeps what AdaptiveThresholding keeps, for n_std 2, 4 and 1.5",
        f"on all {len(rr.retrieved_ids)} queries, and for each of the first "
        f"{len(singles)} queries alone.",
    ]
    if changed:
        q = changed[0]
        alone = len(_adaptive_truth(singles[q], 2.0)[0])
        lines += [
            f"{len(changed)} of those {len(singles)} queries are cut differently "
            "alone than in rr",
            f"(query {q}: {len(in_batch[q])} kept in rr, {alone} alone): the "
            "mean gap belongs to the batch,",
            "so the same query's answer depends on its company.",
        ]
    return _verdict([], "\n".join(lines))


def _kept_stats(rr: RetrievalResults, th: float) -> Tuple[int, int]:
    kept = ConstantThresholding(th).process(rr)
    n_kept = sum(len(r) for r in kept.retrieved_ids)
    n_right = sum(int(mask.sum()) for mask in correct_mask(kept))
    return n_kept, n_right


def _best_threshold(
    rr: RetrievalResults, min_precision: float
) -> Tuple[float, int]:
    """The threshold that keeps the most results at a pooled precision >=
    ``min_precision``, and that number."""
    right = torch.cat([mask for mask in correct_mask(rr) if len(mask)]).double()
    flat = torch.cat([d for d in rr.distances if len(d)])
    order = flat.argsort()
    flat, right = flat[order], right[order]
    distances = flat.unique().double()  # sorted
    # a threshold just above each distance (midway to the next) keeps everything up
    # to it
    candidates = torch.cat(
        [(distances[:-1] + distances[1:]) / 2, distances[-1:] + 0.5]
    )
    # ConstantThresholding compares float32 distances with th as float32: count them
    # the same way
    n_kept = torch.searchsorted(flat, candidates.float())
    n_right = torch.cat([torch.zeros(1, dtype=torch.float64), right.cumsum(0)])[
        n_kept
    ]
    ok = (n_kept > 0) & (n_right / n_kept.clamp(min=1) >= min_precision)
    if not ok.any():
        return 0.0, 0
    # the first candidate with the most kept
    best = int(torch.where(ok, n_kept, -1).argmax())
    return float(candidates[best]), int(n_kept[best])


# Exercise 06.2: how many tuning results fewer than the best a threshold may keep
# and still pass
KEPT_SLACK = 2


def _next_distance(distances: torch.Tensor, th: float) -> float:
    """The smallest distance at or above ``th`` (``inf`` if none): the next
    result a larger th keeps."""
    above = distances[distances >= th]
    return float(above.min()) if len(above) else float("inf")


@checker
def check_precision_threshold(
    th: float,
    rr_tuning: RetrievalResults,
    rr_heldout: RetrievalResults,
    min_precision: float = 0.9,
) -> Verdict:
    """Exercise 06.2: on the tuning results, the threshold that keeps the most
    results at a pooled precision >= ``min_precision`` (up to ``KEPT_SLACK``
    results fewer); the verdict also scores it on the held-out results."""
    if rr_tuning.gt_ids is None or rr_heldout.gt_ids is None:
        return _verdict(
            [
                "the results have no gt_ids; use the labelled results rr_tuning "
                "and rr_heldout."
            ],
            "",
        )
    if not isinstance(th, (float, int, np.floating)) and not (
        torch.is_tensor(th) and th.numel() == 1
    ):
        return _verdict(
            [f"give the threshold as one number, not {type(th).__name__}."], ""
        )
    th = float(th)
    distances = (
        torch.cat([d for d in rr_tuning.distances if len(d)]).unique().sort().values
    )
    best_th, best_kept = _best_threshold(rr_tuning, min_precision)
    n_kept, n_right = _kept_stats(rr_tuning, th)
    precision = n_right / n_kept if n_kept else float("nan")
    problems = []
    if n_kept == 0:
        problems.append(
            f"th={th:.4f} keeps no result at all; raise it (distances start at "
            f"{distances[0]:.4f})."
        )
    elif precision < min_precision:
        problems.append(
            f"th={th:.4f} keeps {n_kept} tuning results with a pooled precision "
            f"of {precision:.3f}, below {min_precision}; lower it.\nThe pooled "
            "precision is the share of *kept results* that are right, over all "
            "tuning queries together\n(rr_tuning, not rr_heldout: the held-out "
            "queries only score)."
        )
    elif n_kept < best_kept - KEPT_SLACK:
        at_distance = bool(torch.isclose(distances, torch.tensor(th)).any())
        hint = (
            "\nYour threshold equals a distance, and ConstantThresholding drops "
            "results at exactly th: go a little above."
            if at_distance
            else ""
        )
        problems.append(
            f"th={th:.4f} is safe (precision {precision:.3f}) but keeps only "
            f"{n_kept} tuning results;\na larger threshold keeps {best_kept} at "
            f"a precision still >= {min_precision}. Try every distance\nin "
            "rr_tuning.distances as a candidate and keep the largest one that "
            f"passes.{hint}"
        )
    if problems:
        return _verdict(problems, "")

    def scored(rr: RetrievalResults, threshold: float) -> str:
        kept, right = _kept_stats(rr, threshold)
        return f"{kept} results, {right / kept:.1%} right" if kept else "no result"

    lines = [
        f"your th keeps {n_kept} tuning results, {precision:.1%} of them right",
        f"(the most any threshold keeps at precision >= {min_precision}: "
        f"{best_kept}).",
    ]
    # the next result a larger th than the student's keeps
    next_d = _next_distance(distances, th)
    if next_d < float("inf"):
        gap = next_d - th
        how_far = "less than 0.0001" if 0 <= gap < 1e-4 else f"{gap:.4f}"
        next_kept, next_right = _kept_stats(rr_tuning, next_d + 1e-6)
        rounded = round(th, 4)
        lines += [
            f"It is fragile: the next tuning distance lies {how_far} above it,",
            f"and a threshold just above that keeps {next_kept} results, "
            f"{next_right / next_kept:.1%} right;",
            f"your th rounded to {rounded:.4f} keeps {scored(rr_tuning, rounded)}.",
        ]
    reverse_th, _ = _best_threshold(rr_heldout, min_precision)
    return _verdict(
        [],
        "\n".join(
            lines
            + [
                f"On the held-out queries it keeps {scored(rr_heldout, th)}.",
                "The other way round, the same rule on the held-out queries "
                f"picks th={reverse_th:.4f},",
                "which on the tuning queries keeps "
                f"{scored(rr_tuning, reverse_th)}.",
                "The queries that choose a threshold meet the target by "
                "construction;",
                "only other queries measure it, and with "
                f"{len(rr_heldout.retrieved_ids)} of them it moves by several "
                "points.",
            ]
        ),
    )
