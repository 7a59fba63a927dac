"""Checkers for the exercises of chapter 01, Training with a triplet loss: one
epoch of ``BalanceSampler`` (01.1), the triplet loss by hand (01.2) and telling a
collapsed run from its logs (01.3)."""

from typing import Callable

import numpy as np
import pandas as pd
import torch

from oml.losses import TripletLoss
from oml.samplers import BalanceSampler

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


# exercise 01.1: images of labels 0-6 (59 in all)
EPOCH_LABEL_SIZES = [3, 12, 5, 8, 20, 2, 9]
EPOCH_BATCH = (3, 4)  # exercise 01.1: n_labels, n_instances


@checker
def check_balance_epoch(batches: int, images: int) -> Verdict:
    """Exercise 01.1: batches and images (repeats counted) in one epoch of
    ``BalanceSampler``.

    Args:
        batches: The student's number of batches per epoch.
        images: The student's number of image indices one epoch yields, repeats
            counted.

    Returns:
        The verdict; the reference is a real ``BalanceSampler`` over
        ``EPOCH_LABEL_SIZES``.
    """
    labels = [
        label for label, size in enumerate(EPOCH_LABEL_SIZES) for _ in range(size)
    ]
    n_labels, n_instances = EPOCH_BATCH
    sampler = BalanceSampler(labels, n_labels=n_labels, n_instances=n_instances)
    state = np.random.get_state()  # the sampler draws with NumPy's global generator
    true_batches, true_images = len(sampler), sum(len(ids) for ids in sampler)
    np.random.set_state(state)
    batch_size = n_labels * n_instances
    problems = [
        f"give `{name}` as a whole number, not {type(value).__name__}."
        for name, value in (("batches", batches), ("images", images))
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool)
    ]
    if problems:
        return _verdict(problems, "")
    if (
        batches == -(-len(labels) // batch_size)
        or batches == len(labels) // batch_size
    ):
        problems.append(
            f"{batches} batches counts the images ({len(labels)}), but an epoch of "
            "BalanceSampler is one pass over the *labels*, not the images."
        )
    elif (
        batches == -(-len(EPOCH_LABEL_SIZES) // n_labels)
        and batches != true_batches
    ):
        problems.append(
            f"{batches} batches would visit every label, but the labels left "
            f"over after the last full group of {n_labels} are not visited in "
            "that epoch."
        )
    elif batches != true_batches:
        problems.append(
            f"{batches} batches is not it: how many groups of {n_labels} labels "
            f"can one pass over the {len(EPOCH_LABEL_SIZES)} labels make?"
        )
    elif images == len(labels):
        problems.append(
            "an epoch does not show every image once: each batch holds exactly "
            "n_labels x n_instances indices, repeats included."
        )
    elif images != true_images:
        problems.append(
            f"{images} images is not it: every batch holds the same number of "
            "indices, whatever the sizes of its labels (small ones are repeated)."
        )
    return _verdict(
        problems,
        f"{true_batches} batches of {n_labels} x {n_instances} = {batch_size} "
        f"indices: {true_images} in one epoch, of {len(labels)} images.",
    )


@checker
def check_triplet_loss(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> Verdict:
    """Exercise 01.2: ``fn(anchor, positive, negative, margin)`` returns the mean
    triplet loss like OML's."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(16, 8, generator=generator), 0.2),
        (torch.randn(16, 8, generator=generator) * 3, 1.0),
    ]
    problems = []
    for features, margin in cases:
        a, p, n = features[:5], features[5:10], features[10:15]
        # the second set satisfies the margin
        for anchor, positive, negative in [(a, p, n), (a, a + 0.01, a + 5.0)]:
            truth = TripletLoss(margin=margin, reduction="mean")(
                anchor, positive, negative
            )
            value = torch.as_tensor(
                fn(anchor, positive, negative, margin), dtype=torch.float32
            )
            if value.numel() != 1:
                problems.append(
                    "return one number (the mean over triplets), got shape "
                    f"{tuple(value.shape)}."
                )
            elif not torch.isclose(value, truth, atol=1e-4):
                hint = (
                    "values below zero: clamp each triplet's loss at 0."
                    if value < 0
                    else (
                        "compare d(a, p) - d(a, n) + margin with OML: Euclidean "
                        "distances, not squared, and the margin added, not "
                        "subtracted."
                    )
                )
                problems.append(
                    f"got {value.item():.4f}, expected {truth.item():.4f} "
                    f"(margin {margin}); {hint}"
                )
            if problems:
                break
        if problems:
            break
    return _verdict(problems, "your loss matches OML's TripletLoss.")


LOG_COLUMNS = ("loss", "active_tri", "pos_dist", "neg_dist")


def _check_logs(name: str, run_logs: object) -> pd.DataFrame:
    if not isinstance(run_logs, pd.DataFrame) or not set(LOG_COLUMNS) <= set(
        run_logs.columns
    ):
        raise ValueError(
            f"`{name}` must be the chapter's DataFrame of training logs, with "
            f"the columns {', '.join(LOG_COLUMNS)}; got "
            f"{type(run_logs).__name__}."
        )
    if len(run_logs) < 20:
        raise ValueError(
            f"`{name}` has {len(run_logs)} steps: pass the whole run (180 steps)."
        )
    return run_logs.reset_index(drop=True)


def _collapse_cases(logs: pd.DataFrame, hard_logs: pd.DataFrame) -> list:
    """(description, logs, collapsed?, hint if misjudged): the chapter's runs and
    two made-up ones."""
    rng = np.random.default_rng(0)
    late = pd.DataFrame(
        {  # modelled on the benchmark's all>hard run: ends at 0.441 against 0.430
            "pos_dist": 0.441 + rng.normal(0, 0.01, 90),
            "neg_dist": 0.430 + rng.normal(0, 0.01, 90),
            "active_tri": np.ones(90),
        }
    )
    late["loss"] = 0.2 + late["pos_dist"] - late["neg_dist"]
    late = pd.concat(
        [logs.iloc[:90][list(LOG_COLUMNS)], late[list(LOG_COLUMNS)]],
        ignore_index=True,
    )
    # the hard run as if its margin were 0.5
    wide = hard_logs[list(LOG_COLUMNS)].copy()
    wide["loss"] = wide["loss"] + 0.3
    return [
        (
            "the all-triplets run of this chapter (`logs`)",
            logs,
            False,
            "its distances end far apart (look at the last steps, not the first "
            "ones).",
        ),
        (
            "the hard-mining run of this chapter (`hard_logs`)",
            hard_logs,
            True,
            "both of its mean distances end close to 0: every image sits near "
            "the same point.",
        ),
        (
            "a made-up run that switches to HardTripletsMiner halfway",
            late,
            False,
            "its loss sits near the margin, every mined triplet is active and "
            "pos_dist is above neg_dist, yet its mined distances are about 0.44: "
            "the images are spread out. Collapse is about the size of the "
            "distances, not the loss, active_tri or their order.",
        ),
        (
            "the hard-mining run re-labelled as if its margin were 0.5",
            wide,
            True,
            "its loss settles at 0.5, the margin, not at 0.2, but its distances "
            "are still near 0: do not compare the loss with one particular "
            "margin.",
        ),
    ]


@checker
def check_collapse_diagnosis(
    fn: Callable[[pd.DataFrame], bool], logs: pd.DataFrame, hard_logs: pd.DataFrame
) -> Verdict:
    """Exercise 01.3: ``fn(run_logs)`` tells from a run's logs whether its
    embeddings collapsed.

    Args:
        fn: The student's function: a DataFrame of logs (one row per step) to True
            or False.
        logs: The chapter's all-triplets logs (not collapsed).
        hard_logs: The chapter's hard-mining logs (collapsed).

    Returns:
        The verdict over the chapter's two runs and two made-up ones, whose answers
        are fixed by how they were made, not by a rule on the logs.
    """
    logs, hard_logs = _check_logs("logs", logs), _check_logs("hard_logs", hard_logs)
    if logs["neg_dist"].iloc[-10:].mean() < hard_logs["neg_dist"].iloc[-10:].mean():
        raise ValueError(
            "`logs` looks more collapsed than `hard_logs`: pass the all-triplets "
            "logs first and the hard-mining logs second."
        )
    problems = []
    for what, run_logs, truth, hint in _collapse_cases(logs, hard_logs):
        answer = fn(run_logs.copy())
        if not isinstance(answer, (bool, np.bool_)):
            problems.append(f"return True or False, got {answer!r} for {what}.")
        elif bool(answer) != truth:
            said = "collapsed" if answer else "not collapsed"
            problems.append(f"you called {what} {said}, but {hint}")
        if problems:
            break
    return _verdict(
        problems,
        "you told collapsed runs from healthy ones, even one parked at the margin.",
    )
