"""Checker for chapter 01's exercise 1: one epoch of ``BalanceSampler``, written by
hand (01.1).

The student's function is not compared with OML's random draw, only with its rules:
the number of batches (from a real ``BalanceSampler``), the labels and images in
each batch, repeats only where a label is too small, and errors where OML asserts.
"""

from collections import Counter, defaultdict
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from oml.samplers import BalanceSampler

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

# exercise 01.1: the label sets tried: (images per label, n_labels, n_instances)
BALANCE_CASES = (
    ([3, 12, 5, 8, 20, 2, 9], 3, 4),  # the exercise's: one label sits out
    ([6, 6, 6, 6, 6, 6], 2, 3),  # every label fits, none too small
    ([2, 2, 3, 40, 7, 2, 5, 9, 4, 11], 4, 5),  # several small labels, two sit out
)
BALANCE_SEEDS = (0, 1, 2, 3, 4)


def _labels(sizes: Sequence[int]) -> List[int]:
    """Labels 100, 200, 300, ... with ``sizes`` images each, interleaved (not
    sorted), so that an index is a position in the list, not a label."""
    rows = [
        (100 * (label + 1), k)
        for label, size in enumerate(sizes)
        for k in range(size)
    ]
    rows.sort(key=lambda row: (row[1], row[0]))
    return [label for label, _ in rows]


def _oml_batches(labels: List[int], n_labels: int, n_instances: int) -> int:
    """How many batches a real ``BalanceSampler`` makes in one epoch."""
    return len(BalanceSampler(labels, n_labels=n_labels, n_instances=n_instances))


def _call(
    fn: Callable, labels: List[int], n_labels: int, n_instances: int, seed: int
):
    state = np.random.get_state()  # a student may seed NumPy's global generator
    try:
        return fn(list(labels), n_labels, n_instances, seed)
    finally:
        np.random.set_state(state)


def _as_lists(batches: Sequence) -> List[List[int]]:
    return [[int(i) for i in batch] for batch in batches]


def _epoch_problem(
    batches: object, labels: List[int], n_labels: int, n_instances: int
) -> Optional[str]:
    """What breaks BalanceSampler's rules in one epoch, or None."""
    where: Dict[int, List[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        where[label].append(index)
    expected = _oml_batches(labels, n_labels, n_instances)
    if not isinstance(batches, (list, tuple)):
        return f"return a list of batches, got {type(batches).__name__}."
    if len(batches) != expected:
        return (
            f"{len(batches)} batches for {len(where)} labels in groups of "
            f"{n_labels}; BalanceSampler makes {expected}: an epoch is one pass "
            "over the labels, each label at most once, and the labels left over "
            "sit that epoch out."
        )
    seen_labels: set = set()
    for number, batch in enumerate(batches):
        try:
            ids = [int(i) for i in batch]
        except (TypeError, ValueError):
            return f"batch {number} must be a list of image indices, got {batch!r}."
        if any(i < 0 or i >= len(labels) for i in ids):
            return (
                f"batch {number} holds indices outside 0..{len(labels) - 1}: give "
                "positions in `labels`, not labels."
            )
        counts = Counter(labels[i] for i in ids)
        if len(counts) != n_labels or set(counts.values()) != {n_instances}:
            return (
                f"batch {number} holds {dict(counts)} (label: images); each batch "
                f"needs {n_labels} labels with exactly {n_instances} images each, "
                "small labels included."
            )
        again = seen_labels & set(counts)
        if again:
            return (
                f"label(s) {sorted(again)} come back in batch {number}: within one "
                "epoch every label is used at most once."
            )
        seen_labels |= set(counts)
        for label in counts:
            slot = [i for i in ids if labels[i] == label]
            own = where[label]
            if len(own) >= n_instances and len(set(slot)) < n_instances:
                return (
                    f"label {label} has {len(own)} images but batch {number} "
                    f"repeats some of them: draw {n_instances} without replacement "
                    "when a label has enough."
                )
            if len(own) < n_instances and set(slot) != set(own):
                return (
                    f"label {label} has only {len(own)} images, and batch {number} "
                    "leaves some of them out: take all of them first, then fill "
                    "the slot with repeats (OML's smart_sample)."
                )
    return None


def _randomness_problems(draws: List[list], labels: List[int]) -> List[str]:
    """Does the seed change which labels sit out and which images a big label
    gives?"""
    used = [frozenset(labels[i] for batch in draw for i in batch) for draw in draws]
    if len(set(used)) == 1:
        return [
            f"with seeds {BALANCE_SEEDS} the same labels always sit out: "
            "BalanceSampler draws the labels of each batch at random from those "
            "not used yet, so the left-over ones change with the seed."
        ]
    biggest = max(set(labels), key=labels.count)
    slots = {
        frozenset(i for batch in draw for i in batch if labels[i] == biggest)
        for draw in draws
    } - {frozenset()}
    if len(slots) == 1:
        return [
            f"label {biggest} has {labels.count(biggest)} images, but every seed "
            "takes the same ones: draw them at random, without replacement."
        ]
    return []


def _refuses(
    fn: Callable, labels: List[int], n_labels: int, n_instances: int
) -> bool:
    try:
        _call(fn, labels, n_labels, n_instances, 0)
    except Exception:
        return True
    return False


@checker
def check_balance_batches(
    my_balance_batches: Callable[[List[int], int, int, int], list],
) -> Verdict:
    """Exercise 01.1: ``my_balance_batches(labels, n_labels, n_instances, seed)``
    returns one epoch of batches that follow ``BalanceSampler``'s rules.

    Args:
        my_balance_batches: The student's function: a list of labels (one per
            image), labels per batch, images per label, and a seed, to a list of
            batches, each a list of image indices (positions in ``labels``).

    Returns:
        The verdict over ``BALANCE_CASES`` and ``BALANCE_SEEDS``; the number of
        batches comes from a real ``BalanceSampler``, the rest from its rules.
    """
    problems = []
    draws = []
    for sizes, n_labels, n_instances in BALANCE_CASES:
        labels = _labels(sizes)
        for seed in BALANCE_SEEDS:
            batches = _call(my_balance_batches, labels, n_labels, n_instances, seed)
            problem = _epoch_problem(batches, labels, n_labels, n_instances)
            if problem:
                what = f"labels of sizes {sizes}, n_labels={n_labels}, " + (
                    f"n_instances={n_instances}, seed={seed}"
                )
                return _verdict([f"with {what}: {problem}"], "")
            if sizes is BALANCE_CASES[0][0]:
                draws.append(_as_lists(batches))
        first, again = (
            _as_lists(_call(my_balance_batches, labels, n_labels, n_instances, 0))
            for _ in range(2)
        )
        if again != first:
            problems.append(
                "two calls with the same seed gave different batches: draw every "
                "random choice from a generator made from `seed`, e.g. "
                "np.random.default_rng(seed)."
            )
            break
    exercise = _labels(BALANCE_CASES[0][0])
    if not problems:
        problems += _randomness_problems(draws, exercise)
    if not problems and not _refuses(my_balance_batches, exercise + [99], 3, 4):
        problems.append(
            "a label with a single image was accepted: BalanceSampler refuses it "
            "(it has no positive). Raise an error, e.g. ValueError."
        )
    if not problems and not _refuses(my_balance_batches, exercise, 8, 4):
        problems.append(
            "n_labels=8 with only 7 labels was accepted: BalanceSampler refuses "
            "it. Raise an error, e.g. ValueError."
        )
    n_labels, n_instances = BALANCE_CASES[0][1:]
    count = _oml_batches(exercise, n_labels, n_instances)
    return _verdict(
        problems,
        f"your epochs follow BalanceSampler's rules on {len(BALANCE_CASES)} label "
        f"sets and {len(BALANCE_SEEDS)} seeds. For the exercise's {len(exercise)} "
        f"images: {count} batches of {n_labels} x {n_instances} = "
        f"{n_labels * n_instances} indices, {count * n_labels * n_instances} in an "
        "epoch; the 2- and 3-image labels give repeats when drawn, and the "
        "label left out changes with the seed.",
    )
