"""Checker for exercise 04.2, Checkpointing: the unpaired bootstrap interval of
the difference of two checkpoints' per-query scores, against the paired one."""

from typing import Any, Tuple

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

PREDICTIONS = ("wider", "narrower")
# the checker's own resamples: its reference endpoints move by well under the
# tolerance below from one seed to another
_RESAMPLES = 8000
# how far each endpoint may be from the reference, as a share of its width: a
# few times the spread of endpoints from 2000 resamples
_TOLERANCE = 0.08


def _scores(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) < 2 or not np.isfinite(array).all():
        raise ValueError(
            f"{name} should be a 1-D array of finite per-query scores (one per "
            f"query, at least 2), such as ap5['best']; got shape {array.shape}."
        )
    return array


def reference_intervals(
    scores_a: Any, scores_b: Any, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """The 95% bootstrap intervals of ``mean(a) - mean(b)``, paired and unpaired.

    Args:
        scores_a: One score per query for model a.
        scores_b: The same queries' scores for model b.
        seed: Seed of the resampling.

    Returns:
        ``(paired, unpaired)``: each an array ``[low, high]``.

    Raises:
        ValueError: The scores are not two 1-D arrays of the same length.
    """
    a, b = _scores(scores_a, "scores_a"), _scores(scores_b, "scores_b")
    if len(a) != len(b):
        raise ValueError(
            f"scores_a has {len(a)} queries and scores_b {len(b)}: pass the two "
            "models' scores on the same queries, in the same order."
        )
    rng = np.random.default_rng(seed)
    draws_a = rng.integers(0, len(a), size=(_RESAMPLES, len(a)))
    draws_b = rng.integers(0, len(a), size=(_RESAMPLES, len(a)))
    paired = np.percentile((a - b)[draws_a].mean(axis=1), [2.5, 97.5])
    unpaired_means = a[draws_a].mean(axis=1) - b[draws_b].mean(axis=1)
    return paired, np.percentile(unpaired_means, [2.5, 97.5])


def _near(low: float, high: float, reference: np.ndarray) -> bool:
    tolerance = _TOLERANCE * float(reference[1] - reference[0])
    return abs(low - reference[0]) <= tolerance and abs(high - reference[1]) <= (
        tolerance
    )


@checker
def check_unpaired_interval(
    prediction: Any, interval: Any, scores_a: Any, scores_b: Any
) -> Verdict:
    """Exercise 04.2: ``interval`` is the unpaired 95% bootstrap interval of
    ``mean(scores_a) - mean(scores_b)``, and ``prediction`` says rightly whether it
    is "wider" or "narrower" than the paired one.

    Args:
        prediction: "wider" or "narrower", written before computing.
        interval: ``(low, high)`` of the unpaired interval.
        scores_a: The first model's score on each query (``ap5["best"]``).
        scores_b: The second model's on the same queries (``ap5["last"]``).

    Returns:
        The verdict.

    Raises:
        ValueError: The scores are not two 1-D arrays of the same length.
    """
    paired, unpaired = reference_intervals(scores_a, scores_b)
    truth = "wider" if np.ptp(unpaired) > np.ptp(paired) else "narrower"
    problems = []
    try:
        low, high = (float(v) for v in interval)
    except (TypeError, ValueError):
        problems.append(
            f"`unpaired` should be two numbers, (low, high), not {interval!r}."
        )
    else:
        if low > high:
            problems.append(
                f"({low:+.4f}, {high:+.4f}) has its low end above its high end: "
                "give the 2.5th percentile first, then the 97.5th."
            )
        elif _near(low, high, paired) and not _near(low, high, unpaired):
            problems.append(
                "that is the paired interval, the one the chapter computed: draw "
                "the query positions for the first model and for the second "
                "separately."
            )
        elif _near(-high, -low, unpaired) and not _near(low, high, unpaired):
            problems.append(
                "that is the interval of the second model minus the first: take "
                "the first model's mean minus the second's."
            )
        elif not _near(low, high, unpaired):
            problems.append(
                f"({low:+.4f}, {high:+.4f}) is not the unpaired 95% interval. "
                "Resample each array's positions on its own, with replacement, "
                "2000 times; take mean(a[i]) - mean(b[j]) for each resample, then "
                "the 2.5th and 97.5th percentiles of those differences."
            )
    if prediction not in PREDICTIONS:
        problems.append(
            f"`prediction` should be 'wider' or 'narrower', not {prediction!r}."
        )
    elif not problems and prediction != truth:
        problems.append(
            f"your interval is right, and it is {truth} than the paired one, not "
            f"{prediction}: {float(np.ptp(unpaired)):.4f} against "
            f"{float(np.ptp(paired)):.4f}. Before you go on, find why (look at how "
            "much each query's two scores have in common)."
        )
    why = (
        "pairing cancels how hard each query is, which both models share"
        if truth == "wider"
        else "here the two models' scores move against each other, query by query"
    )
    return _verdict(
        problems,
        f"the unpaired interval is {truth} than the paired one, as you predicted: "
        f"{why}.",
    )
