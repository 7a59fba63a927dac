"""Checker for exercise 02.1 of chapter 02, Validation: OML's mAP@k (``calc_map``,
the ``map/k`` keys) for one query by hand (part 1), and two rankings that mAP@k
and the recsys AP@k order oppositely (part 2)."""

from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch

from oml.functional.metrics import calc_map

from oml_helpers.exercises.verdict import RIGHT, WRONG, Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


def _oml_ap(is_correct: Sequence[bool], n_gt: int, k: int) -> float:
    """OML's mAP@k (``calc_map``) of one query's ranking."""
    row = [torch.tensor(list(is_correct), dtype=torch.bool)]
    return float(calc_map(row, [n_gt], (k,))[0][0])


def _describe_case(is_correct: Sequence[bool], n_gt: int, k: int) -> str:
    hits = "".join("x" if c else "." for c in is_correct) or "(none retrieved)"
    notes = []
    if not len(is_correct):
        notes.append(
            "an empty ranking: OML gives 1.0 when n_gt = 0 (nothing to find) and "
            "0.0 otherwise"
        )
    elif n_gt == 0:
        notes.append("no correct item exists (n_gt = 0)")
    if k > len(is_correct) > 0:
        notes.append("k is longer than the ranking: only the retrieved items count")
    return f"hits '{hits}' (x = correct), n_gt={n_gt}, k={k}" + (
        f" ({'; '.join(notes)})" if notes else ""
    )


# exercise 02.1: empty, n_gt = 0, k longer than the ranking
AP_EDGE_CASES = [
    ([], 0, 5),
    ([], 3, 5),
    ([False, False, False], 0, 3),
    ([True, False, True], 2, 10),
    ([False, True], 1, 5),
]


def _ap_cases() -> List[Tuple[List[bool], int, int]]:
    """Part 1's rankings: three by hand, 30 random ones and ``AP_EDGE_CASES``."""
    rng = np.random.default_rng(0)
    cases = [
        ([True, False, True], 2, 3),
        ([False, False, False], 3, 3),
        ([False, True, False, True, True], 5, 4),
    ]
    cases += [
        (list(rng.random(8) < 0.4), 6, int(rng.integers(1, 9))) for _ in range(30)
    ]
    return cases + AP_EDGE_CASES


@checker
def _function_verdict(fn: Callable[[Sequence[bool], int, int], float]) -> Verdict:
    """Part 1 of exercise 02.1: ``fn`` against OML's ``calc_map``; the first
    case it gets wrong, or an error it raises, is reported with that case."""
    for is_correct, n_gt, k in _ap_cases():
        truth, case = (
            _oml_ap(is_correct, n_gt, k),
            _describe_case(is_correct, n_gt, k),
        )
        try:
            value = float(fn(list(map(bool, is_correct)), n_gt, k))
        # the student's code failing on one case is an answer to explain
        except Exception as e:
            return _verdict(
                [
                    f"for {case} your function raised {type(e).__name__}: {e}. "
                    f"OML gives {truth:.4f}."
                ],
                "",
            )
        if not np.isclose(value, truth, atol=1e-4):
            return _verdict(
                [f"for {case} you return {value:.4f}, OML gives {truth:.4f}."], ""
            )
    return _verdict([], "")


# exercise 02.1, part 2: rankings of K results for queries with N_GT correct items
INVERSION_K, INVERSION_N_GT = 5, 10


def recsys_ap(is_correct: Sequence[bool], n_gt: int, k: int) -> float:
    """The recsys AP@k (``ml_metrics.apk``): the sum of the precisions at the hits
    in the first ``k``, divided by ``min(k, n_gt)``; OML's divides by the hits."""
    hits, total = 0, 0.0
    for rank, correct in enumerate(is_correct[:k], start=1):
        hits += bool(correct)
        total += hits / rank if correct else 0.0
    return total / min(k, n_gt)


def _as_ranking(name: str, value: object) -> List[bool]:
    """``value`` as a list of K booleans; ``ValueError`` saying why not."""
    if torch.is_tensor(value):
        value = value.tolist()
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != INVERSION_K
        or not all(v in (0, 1) for v in value)
    ):
        raise ValueError(
            f"`{name}` must be a list of {INVERSION_K} True/False values, one per "
            f"rank (k = {INVERSION_K}); yours is {value!r}."
        )
    return [bool(v) for v in value]


def _inversion_problem(first: object, second: object) -> Tuple[str, str]:
    """Why ``first`` and ``second`` are not ordered oppositely by OML's mAP@k and
    the recsys AP@k ("" if they are), and a line with their four values."""
    try:
        a, b = _as_ranking("first", first), _as_ranking("second", second)
    except ValueError as e:
        return str(e), ""
    k, n = INVERSION_K, INVERSION_N_GT
    oml = [_oml_ap(r, n, k) for r in (a, b)]
    rec = [recsys_ap(r, n, k) for r in (a, b)]
    shown = (
        f"mAP@{k} (OML's map/{k}) gives first {oml[0]:.3f}, second "
        f"{oml[1]:.3f}; the recsys AP@{k} {rec[0]:.3f} and {rec[1]:.3f}"
    )
    if sum(a) == sum(b):
        return (
            f"{shown}. Both hold {sum(a)} hit{'s' * (sum(a) != 1)}: then OML "
            f"divides the sum S of the precisions at the hits by {sum(a)} for "
            "both, the recsys AP "
            f"divides it by {min(k, n)} for both, so the two always agree. Give "
            "the rankings different numbers of hits."
        ), shown
    if np.isclose(oml[0], oml[1]) or np.isclose(rec[0], rec[1]):
        return f"{shown}: a tie is not an opposite order.", shown
    if (oml[0] > oml[1]) == (rec[0] > rec[1]):
        return (
            f"{shown}: the same order. More hits raise the recsys AP; mAP@{k} "
            "asks only how early the hits come. Give one ranking few hits, all "
            "early, and the other more hits, some of them late."
        ), shown
    return "", shown


def check_average_precision(
    fn: Callable[[Sequence[bool], int, int], float], first: object, second: object
) -> Verdict:
    """Exercise 02.1: ``fn(is_correct, n_gt, k)`` computes OML's mAP@k for one query
    (part 1), and ``first`` and ``second``, two rankings of ``INVERSION_K`` results
    for queries with ``INVERSION_N_GT`` correct items each, are ordered one way by
    OML's mAP@k and the other way by ``recsys_ap`` (part 2).

    Part 1 is checked on rankings that include ``AP_EDGE_CASES``, part 2 once
    part 1 is right.
    """
    part1 = _function_verdict(fn)
    if not part1:
        return part1
    done = f"your function matches OML's mAP@k on {len(_ap_cases())} rankings"
    for name, value in (("first", first), ("second", second)):
        if value is Ellipsis:
            return Verdict(
                False,
                f"{WRONG}: part 1 is right ({done}); part 2: `{name}` is still "
                "`...`: give a ranking, a list of five True/False.",
            )
    problem, shown = _inversion_problem(first, second)
    if problem:
        return Verdict(
            False, f"{WRONG}: part 1 is right ({done}); part 2: {problem}"
        )
    return Verdict(
        True,
        f"{RIGHT}: {done}, the edge cases included, and your rankings invert: "
        f"{shown}. The textbook AP (divided by n = {INVERSION_N_GT}) orders them "
        f"as the recsys AP does: it is the recsys AP times "
        f"{min(INVERSION_K, INVERSION_N_GT)}/{INVERSION_N_GT} for both.",
    )
