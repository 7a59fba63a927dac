"""Checkers for the exercises of chapter 03 (Lightning and logging)."""

import tempfile
from pathlib import Path
from typing import Any, Callable, List, Union

import numpy as np
import pandas as pd
import torch
from torch import nn

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

PathLike = Union[str, Path]


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# Chapter 03
# ---------------------------------------------------------------------------------------


def _call(fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except (
        Exception
    ) as e:  # the student's code failing is an answer to diagnose, not a crash
        return e


def _pcf_cases() -> List[tuple]:
    """(embeddings, variance, what) for the PCF exercise, each threshold clear of
    every cumulative share."""
    gen = torch.Generator().manual_seed(0)
    spread = torch.randn(300, 16, generator=gen) * torch.linspace(
        3.0, 0.2, 16
    )  # variances fall along the axes
    one_way = torch.randn(200, 1, generator=gen) * torch.ones(
        1, 64
    ) + 0.1 * torch.randn(200, 64, generator=gen)
    cases = [(torch.eye(4, 10), 0.5, "torch.eye(4, 10), OML's own example")]
    cases += [
        (spread, r, f"300 points in 16 dimensions, {r:.0%} of the variance")
        for r in (0.5, 0.9)
    ]
    cases += [
        (
            nn.functional.normalize(one_way, dim=1),
            0.5,
            "64-d unit vectors spread mostly along one direction",
        )
    ]
    return cases


def _uncentred_pcf(embeddings: torch.Tensor, variance: float) -> float:
    """PCF computed without centring the embeddings first: a typical slip."""
    shares = torch.linalg.svdvals(embeddings) ** 2
    cumulative = torch.cumsum(shares / shares.sum(), dim=0)
    return (
        int(torch.searchsorted(cumulative, torch.tensor(variance), side="right"))
        + 1
    ) / embeddings.shape[1]


@checker
def check_pcf(fn: Callable[[torch.Tensor, float], float]) -> Verdict:
    """PCF exercise (no chapter uses it now; meant for chapter 02):
    ``fn(embeddings, variance)`` is OML's ``calc_pcf``."""
    from oml.functional.metrics import calc_pcf

    problems: List[str] = []
    for embeddings, variance, what in _pcf_cases():
        truth = float(calc_pcf(embeddings, (variance,))[0])
        answer = _call(fn, embeddings.clone(), variance)
        if isinstance(answer, Exception):
            problems.append(
                f"for {what} your function raised {type(answer).__name__}: {str(answer)[:150]}"
            )
        elif (
            not isinstance(
                answer, (float, int, np.floating, np.integer, torch.Tensor)
            )
            or np.size(answer) != 1
        ):
            problems.append(
                f"return one number (a fraction of the dimensions), not {type(answer).__name__}."
            )
        elif abs(float(answer) - truth) > 1e-6:
            d = embeddings.shape[1]
            got, n = float(answer), round(truth * d)
            if abs(got - n) < 1e-6:
                hint = f"that is the number of components; PCF divides it by the dimension ({d})."
            elif abs(got - (n - 1) / d) < 1e-6:
                hint = "one component short: count the components whose cumulative share is <= the variance, plus one."
            elif abs(got - _uncentred_pcf(embeddings, variance)) < 1e-6:
                hint = "centre the embeddings (subtract their mean) before the SVD or covariance: PCA works on variance."
            else:
                hint = (
                    "sort the variances from the largest down, add up their shares, count those <= the "
                    "variance, add one, divide by the dimension."
                )
            problems.append(
                f"for {what} OML gives {truth:.4f}, you gave {got:.4f}; {hint}"
            )
        if problems:
            break
    return _verdict(
        problems,
        f"the same PCF as OML's calc_pcf on all {len(_pcf_cases())} sets of embeddings.",
    )


def _csv_per_epoch(log_dir: PathLike, metric: str) -> pd.Series:
    raw = pd.read_csv(Path(log_dir) / "metrics.csv")
    if metric not in raw.columns:
        raise ValueError(
            f"{metric!r} is not logged in {log_dir}; columns: {sorted(raw.columns)}."
        )
    return raw.dropna(subset=[metric]).groupby("epoch")[metric].last()


@checker
def check_best_epoch(
    answer: int, log_dir: PathLike, metric: str = "OVERALL/map/5"
) -> Verdict:
    """Exercise 03.2: the epoch (as Lightning counts them, from 0) with the
    highest ``metric`` in a CSVLogger's log."""
    per_epoch = _csv_per_epoch(log_dir, metric)
    best = per_epoch.max()
    winners = [int(e) for e in per_epoch.index[per_epoch == best]]
    raw = pd.read_csv(Path(log_dir) / "metrics.csv")
    steps = set(raw.dropna(subset=[metric])["step"].astype(int))
    problems = []
    if not _is_whole(answer):
        problems.append(
            f"give the epoch as a whole number, not {type(answer).__name__}."
        )
    elif answer in winners:
        pass
    elif answer not in per_epoch.index and answer in set(
        raw.index[raw[metric] == best]
    ):
        problems.append(
            f"{answer} is the row label of that line of metrics.csv, not an epoch: read its "
            "'epoch' column (the rows are the logger's writes, several per epoch)."
        )
    elif answer == int(per_epoch.index.max()):
        problems.append(
            f"{answer} is the last epoch ({metric} = {per_epoch[answer]:.3f}), not the best ({best:.3f})."
        )
    elif answer not in per_epoch.index and answer in steps:
        problems.append(
            f"{answer} is a training step, not an epoch: read the 'epoch' column of the rows with {metric}."
        )
    elif answer == int(per_epoch.idxmin()):
        problems.append(
            f"epoch {answer} has the lowest {metric}; for this metric higher is better."
        )
    elif answer - 1 in winners:
        problems.append(
            "off by one: Lightning counts epochs from 0, as in the 'epoch' column."
        )
    elif answer in per_epoch.index:
        problems.append(
            f"epoch {answer} has {metric} = {per_epoch[answer]:.3f}, below the best ({best:.3f})."
        )
    else:
        problems.append(
            f"there is no epoch {answer} in the log; it has epochs 0-{int(per_epoch.index.max())}."
        )
    # No numbers in the success message: they come from training, whose last digits
    # vary by CPU.
    return _verdict(
        problems, f"that is the epoch with the highest {metric} in metrics.csv."
    )


@checker
def check_tensorboard_per_epoch(
    fn: Callable[[PathLike], pd.DataFrame],
    tb_log_dir: PathLike,
    csv_log_dir: PathLike,
) -> Verdict:
    """Exercise 03.3: ``fn(tb_log_dir)`` gives the validation metrics per epoch,
    as the CSV log has them."""
    raw = pd.read_csv(Path(csv_log_dir) / "metrics.csv")
    names = [c for c in raw.columns if c.startswith("OVERALL/")]
    truth = pd.DataFrame(
        {name: _csv_per_epoch(csv_log_dir, name) for name in names}
    )
    steps = raw.dropna(subset=[names[0]])["step"].astype(int).tolist()
    table = fn(tb_log_dir)
    problems = []
    if not isinstance(table, pd.DataFrame):
        problems.append(f"return a pandas DataFrame, not {type(table).__name__}.")
    elif [c for c in names if c not in table.columns]:
        problems.append(
            f"columns {[c for c in names if c not in table.columns]} are missing; keep the tags starting with 'OVERALL/'."
        )
    elif list(table.index) == steps and steps != [int(e) for e in truth.index]:
        problems.append(
            "the index is still the training step; use the 'epoch' scalar logged at the same steps."
        )
    elif len(table) != len(truth):
        problems.append(
            f"{len(table)} rows for {len(truth)} epochs; drop the steps where no validation metric was logged."
        )
    elif [int(i) for i in table.index] != [int(i) for i in truth.index]:
        problems.append(
            f"the index should be the epochs {list(truth.index)[:3]}..., got {list(table.index)[:3]}..."
        )
    else:
        diff = table[names].astype(float).values - truth.values
        if not np.allclose(diff, 0, atol=1e-5):
            problems.append(
                "the values differ from metrics.csv; did the rows get shifted or sorted by value?"
            )
    if not problems:
        problems += _two_steps_per_epoch_problems(fn)
    return _verdict(
        problems,
        f"{len(truth)} epochs x {len(names)} metrics, the same as metrics.csv, "
        "and right on a log with two steps per epoch.",
    )


def _two_steps_per_epoch_problems(
    fn: Callable[[PathLike], pd.DataFrame],
) -> List[str]:
    """Run ``fn`` on a small event file where steps and epochs differ (2 steps
    per epoch)."""
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = SummaryWriter(folder)
        for step in range(
            6
        ):  # epochs 0, 1, 2 of two steps; validation at each epoch's last step
            writer.add_scalar("epoch", step // 2, step)
            if step % 2 == 1:
                writer.add_scalar("OVERALL/cmc/1", 0.5 + step / 100, step)
        writer.close()
        table = fn(folder)
    epochs = [int(i) for i in getattr(table, "index", [])]
    if epochs == [1, 3, 5]:
        return [
            "on a log with two steps per epoch your index is still the step (1, 3, 5), not the "
            "epoch (0, 1, 2): take the 'epoch' scalar logged at each of those steps."
        ]
    if epochs != [0, 1, 2] or not np.allclose(
        table["OVERALL/cmc/1"].astype(float), [0.51, 0.53, 0.55]
    ):
        return [
            f"on a log with two steps per epoch (validation at steps 1, 3, 5) the epochs should be "
            f"[0, 1, 2], got {epochs}."
        ]
    return []
