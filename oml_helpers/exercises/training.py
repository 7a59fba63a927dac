"""Checkers for the exercises of chapter 01, Training with a triplet loss: the
margin that makes half the untrained batch's triplets active (01.2) and telling a
collapsed run from its logs (01.3); one epoch of ``BalanceSampler`` by hand (01.1)
is in ``balance_batches``."""

from typing import Callable

import numpy as np
import pandas as pd
import torch

from oml.losses import TripletLossWithMiner
from oml.miners import AllTripletsMiner

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


# exercise 01.2: margins at which `active_share` is compared with OML
SHARE_MARGINS = (0.001, 0.005, 0.01, 0.05, 0.2)
# exercise 01.2: how far from one half the share at `half_margin` may be
HALF_TOLERANCE = 0.02


def _percent(share: float) -> str:
    """``share`` as a percentage, with as many decimals (up to 3) as it takes not
    to print a share strictly between 0 and 1 as 0% or 100%."""
    for decimals in range(4):
        text = f"{share:.{decimals}%}"
        if not (0 < share < 1) or float(text[:-1]) not in (0.0, 100.0):
            return text
    return text


def _triplet_gaps(embeddings: torch.Tensor, labels: object) -> torch.Tensor:
    """d(a, n) - d(a, p) for every triplet ``AllTripletsMiner`` forms."""
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise ValueError(
            "`start_embeddings` must be the chapter's 2-d tensor of embeddings "
            f"(one row per image), got {type(embeddings).__name__}."
        )
    labels = torch.as_tensor(labels).tolist()
    if len(labels) != len(embeddings) or len(set(labels)) < 2:
        raise ValueError(
            "`start_labels` must hold one label per embedding and at least two "
            f"labels: got {len(labels)} labels for {len(embeddings)} embeddings."
        )
    state = np.random.get_state()  # the miner draws with NumPy's global generator
    a, p, n = AllTripletsMiner().sample(features=embeddings.detach(), labels=labels)
    np.random.set_state(state)
    return (a - n).norm(dim=1) - (a - p).norm(dim=1)


def _oml_share(embeddings: torch.Tensor, labels: object, margin: float) -> float:
    """OML's ``active_tri`` for all triplets of the batch at ``margin``."""
    state = np.random.get_state()
    criterion = TripletLossWithMiner(margin=margin, need_logs=True)
    criterion(embeddings.detach(), torch.as_tensor(labels).tolist())
    np.random.set_state(state)
    return float(criterion.last_logs["active_tri"])


def _half_margin_hint(margin: float, share: float) -> str:
    """What to change when ``margin`` makes ``share`` of the triplets active, and
    ``share`` lies outside the accepted band around one half: which way to move the
    margin, and how far the share is from one half."""
    accepted = f"{0.5 - HALF_TOLERANCE:.0%} to {0.5 + HALF_TOLERANCE:.0%}"
    points = abs(share - 0.5) * 100
    if share > 0.5:
        off = f"{points:.1f} percentage points above one half"
        move = (
            "Try a smaller margin: a smaller margin leaves fewer triplets active."
        )
    else:
        off = f"{points:.1f} percentage points below one half"
        move = "Try a larger margin: a larger margin leaves more triplets active."
    return (
        f"at a margin of {margin:.3g}, {share:.1%} of the triplets are active, "
        f"{off} (the check accepts {accepted}). {move} Your `active_share` gives "
        "the share at any margin: move the margin that way until the share "
        "crosses 50%, then narrow it down."
    )


@checker
def check_half_margin(
    active_share: Callable[[float], float],
    half_margin: float,
    start_embeddings: torch.Tensor,
    start_labels: torch.Tensor,
) -> Verdict:
    """Exercise 01.2: ``active_share(margin)`` measures the share of active
    triplets of the chapter's first batch like OML, and ``half_margin`` makes
    half of them active.

    Args:
        active_share: The student's function: a margin to the share (0 to 1) of
            the batch's triplets whose loss is above 0.
        half_margin: The student's margin at which half the triplets are active.
        start_embeddings: A random model's embeddings of the chapter's batch.
        start_labels: Their labels.

    Returns:
        The verdict; the references are OML's ``TripletLossWithMiner`` logs and
        the median of d(a, n) - d(a, p) over all triplets.
    """
    gaps = _triplet_gaps(start_embeddings, start_labels)
    problems = []
    shares = {}
    for margin in SHARE_MARGINS:
        shares[margin] = _oml_share(start_embeddings, start_labels, margin)
        value = active_share(margin)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (float, int, np.number)) or isinstance(
            value, bool
        ):
            problems.append(
                f"`active_share({margin})` must return one number, got "
                f"{type(value).__name__}."
            )
        elif abs(float(value) - shares[margin]) > 1e-3:
            hint = (
                "a triplet is active when d(a, p) - d(a, n) + margin > 0, i.e. "
                "when d(a, n) - d(a, p) is below the margin; count over all "
                f"{len(gaps):,} triplets and divide by their number."
            )
            problems.append(
                f"`active_share({margin})` gave {float(value):.3f}, but OML "
                f"counts {shares[margin]:.3f} of the triplets active: {hint}"
            )
        if problems:
            return _verdict(problems, "")
    if not isinstance(half_margin, (float, int, np.number)) or isinstance(
        half_margin, bool
    ):
        return _verdict(
            [f"give `half_margin` as a number, not {type(half_margin).__name__}."],
            "",
        )
    share = float((gaps < float(half_margin)).float().mean())
    if abs(share - 0.5) > HALF_TOLERANCE:
        problems.append(_half_margin_hint(float(half_margin), share))
    sweep = ", ".join(f"{m:g}: {_percent(s)}" for m, s in shares.items())
    return _verdict(
        problems,
        f"half the {len(gaps):,} triplets are active at a margin of about "
        f"{float(gaps.median()):.1g}; the chapter's margin, 0.2, makes "
        f"{_percent(shares[0.2])} of them active.\n"
        f"Active share by margin: {sweep}.",
    )


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
        raise ValueError(f"`{name}` has {len(run_logs)} steps: pass the whole run.")
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
