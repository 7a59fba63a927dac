"""Checkers for exercises 03.2 and 03.3 of chapter 03, Lightning and logging: read a
CSV log with two training steps per epoch as a practitioner does, and turn
TensorBoard's per-step scalars into the validation metrics per epoch.

From a ``CSVLogger``'s ``metrics.csv`` the student computes the mean training loss
of each epoch from the step rows, the best epoch by a validation metric, and the
``step`` at which that metric was logged. The truth is computed here from the same
file, so the check holds whatever numbers the run produced.
"""

import tempfile
from pathlib import Path
from typing import Any, Callable, List, Mapping, Tuple, Union

import numpy as np
import pandas as pd

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.logs import read_csv_metrics

PathLike = Union[str, Path]


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _read_log(log_dir: PathLike, metric: str, loss: str) -> pd.DataFrame:
    """The raw ``metrics.csv``, with a clear error if it lacks what is needed."""
    csv = Path(log_dir) / "metrics.csv"
    if not csv.is_file():
        raise ValueError(
            f"No metrics.csv in {log_dir}: pass the log_dir of a CSVLogger "
            "(e.g. short_logger.log_dir) after its run has finished."
        )
    raw = pd.read_csv(csv)
    missing = [c for c in ("epoch", "step", metric, loss) if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{csv} has no column {missing}; it has {list(raw.columns)}. Pass "
            "the log of a run that trained and validated, or name its columns "
            "with metric= and loss=."
        )
    return raw


def _loss_problems(answer: Any, raw: pd.DataFrame, loss: str) -> List[str]:
    """What is wrong with ``answer`` as the mean step loss of each epoch."""
    steps = raw.dropna(subset=[loss])
    truth = steps.groupby("epoch")[loss].mean()
    truth.index = truth.index.astype(int)
    if isinstance(answer, Mapping):
        answer = pd.Series(answer)
    if not isinstance(answer, pd.Series):
        return [
            "give epoch_loss as a pandas Series (or a dict) indexed by the epoch, "
            f"not {type(answer).__name__}."
        ]
    if len(answer) == len(steps) and len(steps) != len(truth):
        return [
            f"epoch_loss has {len(answer)} values, one per step row; average the "
            f"step rows of each epoch to get {len(truth)} values."
        ]
    if len(answer) == len(raw):
        return [
            f"epoch_loss has one value per row of metrics.csv ({len(raw)}); keep "
            f"the rows where {loss} is filled in, then group them by epoch."
        ]
    try:
        index = [int(i) for i in answer.index]
        values = answer.astype(float).to_numpy()
    except (TypeError, ValueError):
        return ["epoch_loss should map each epoch (a whole number) to a number."]
    if index != list(truth.index):
        return [
            f"epoch_loss should be indexed by the epochs {list(truth.index)}, "
            f"got {index[:6]}."
        ]
    if np.isnan(values).any():
        return [
            f"epoch_loss holds NaN: the rows without {loss} (validation and "
            "epoch-end rows) have no step loss; leave them out of the mean."
        ]
    if np.allclose(values, truth.to_numpy(), atol=1e-5):
        return []
    last = steps.groupby("epoch")[loss].last().to_numpy()
    first = steps.groupby("epoch")[loss].first().to_numpy()
    if np.allclose(values, last, atol=1e-6):
        return ["that is the loss of each epoch's last step; take the mean."]
    if np.allclose(values, first, atol=1e-6):
        return ["that is the loss of each epoch's first step; take the mean."]
    return [
        f"epoch_loss differs from the mean of {loss} over each epoch's step rows "
        f"(largest gap {np.abs(values - truth.to_numpy()).max():.2g})."
    ]


def _best(raw: pd.DataFrame, metric: str) -> Tuple[int, int, int]:
    """The row label, epoch and step of the highest ``metric`` in the log."""
    val = raw.dropna(subset=[metric])
    row = int(val[metric].idxmax())
    return row, int(val.loc[row, "epoch"]), int(val.loc[row, "step"])


def _epoch_problems(answer: Any, raw: pd.DataFrame, metric: str) -> List[str]:
    """What is wrong with ``answer`` as the best epoch by ``metric``."""
    best_row, epoch, step = _best(raw, metric)
    last = int(raw.dropna(subset=[metric])["epoch"].max())
    if not _is_whole(answer):
        return [f"give best_epoch as a whole number, not {type(answer).__name__}."]
    if answer == epoch:
        return []
    if answer == step:
        return [
            f"best_epoch = {answer} is the step of that row; read its 'epoch' "
            "column."
        ]
    if answer == best_row:
        return [
            f"{answer} is the row label in metrics.csv, not an epoch: the rows are "
            "the logger's writes, several per epoch."
        ]
    if answer == last:
        return [f"{answer} is the last validated epoch, not the best by {metric}."]
    if answer == epoch + 1:
        return ["off by one: Lightning counts epochs from 0, as the log does."]
    return [f"epoch {answer} is not the one with the highest {metric}."]


def _step_problems(answer: Any, raw: pd.DataFrame, metric: str) -> List[str]:
    """What is wrong with ``answer`` as the step of the best ``metric``."""
    best_row, epoch, step = _best(raw, metric)
    if not _is_whole(answer):
        return [f"give best_step as a whole number, not {type(answer).__name__}."]
    if answer == step:
        return []
    if answer == epoch:
        return [
            f"best_step = {answer} is the epoch; read the 'step' column of the "
            "row that holds the best value."
        ]
    if answer == step + 1:
        return [
            "one too many: that counts the steps done. The 'step' column holds "
            "the step index, from 0, at which the value was logged."
        ]
    if answer == best_row:
        return [f"{answer} is the row label in metrics.csv, not its 'step'."]
    return [f"step {answer} is not where the highest {metric} was logged."]


@checker
def check_log_diagnosis(
    epoch_loss: Any,
    best_epoch: int,
    best_step: int,
    log_dir: PathLike,
    metric: str = "OVERALL/map/5",
    loss: str = "triplet_loss_step",
) -> Verdict:
    """Exercise 03.2: the per-epoch mean loss, the best epoch by ``metric`` and
    the step it was logged at, from a CSVLogger's ``metrics.csv``.

    Args:
        epoch_loss: The mean of ``loss`` over each epoch's step rows, indexed by
            the epoch (a Series or a dict).
        best_epoch: The epoch with the highest ``metric``.
        best_step: The ``step`` of the row that holds that value.
        log_dir: The CSVLogger's ``log_dir``.
        metric: The validation metric to rank epochs by (higher is better).
        loss: The column of the per-step loss.

    Returns:
        The verdict; it prints "Correct: ..." or "Not yet: ...".

    Raises:
        ValueError: ``log_dir`` holds no ``metrics.csv`` with those columns.
    """
    raw = _read_log(log_dir, metric, loss)
    problems = (
        _loss_problems(epoch_loss, raw, loss)
        + _epoch_problems(best_epoch, raw, metric)
        + _step_problems(best_step, raw, metric)
    )
    n_epochs = raw.dropna(subset=[loss])["epoch"].nunique()
    # no trained numbers in the message: their last digits vary by CPU
    return _verdict(
        problems,
        f"the mean loss of each of the {n_epochs} epochs, the best epoch by "
        f"{metric} and the step it was logged at.",
    )


@checker
def check_tensorboard_per_epoch(
    fn: Callable[[PathLike], pd.DataFrame],
    tb_log_dir: PathLike,
    csv_log_dir: PathLike,
) -> Verdict:
    """Exercise 03.3: ``fn(tb_log_dir)`` gives the validation metrics per epoch,
    as the CSV log has them."""
    per_epoch = read_csv_metrics(csv_log_dir)
    names = [c for c in per_epoch.columns if c.startswith("OVERALL/")]
    if not names:
        raise ValueError(
            f"No validation metric (a column starting with 'OVERALL/') in the CSV "
            f"log {csv_log_dir}: pass the log_dir of the CSVLogger of a run that "
            "validated."
        )
    truth = per_epoch[names].dropna(how="all")
    raw = pd.read_csv(Path(csv_log_dir) / "metrics.csv")
    steps = raw.dropna(subset=[names[0]])["step"].astype(int).tolist()
    table = fn(tb_log_dir)
    problems = []
    if not isinstance(table, pd.DataFrame):
        problems.append(f"return a pandas DataFrame, not {type(table).__name__}.")
    elif [c for c in names if c not in table.columns]:
        problems.append(
            f"columns {[c for c in names if c not in table.columns]} are "
            "missing; keep the tags starting with 'OVERALL/'."
        )
    elif list(table.index) == steps and steps != [int(e) for e in truth.index]:
        problems.append(
            "the index is still the training step; use the 'epoch' scalar logged "
            "at the same steps."
        )
    elif len(table) != len(truth):
        problems.append(
            f"{len(table)} rows for {len(truth)} epochs; drop the steps where no "
            "validation metric was logged."
        )
    elif [int(i) for i in table.index] != [int(i) for i in truth.index]:
        problems.append(
            f"the index should be the epochs {list(truth.index)[:3]}..., got "
            f"{list(table.index)[:3]}..."
        )
    else:
        diff = table[names].astype(float).values - truth.values
        if not np.allclose(diff, 0, atol=1e-5):
            problems.append(
                "the values differ from metrics.csv; did the rows get shifted or "
                "sorted by value?"
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
        # epochs 0, 1, 2 of two steps; validation at each epoch's last step
        for step in range(6):
            writer.add_scalar("epoch", step // 2, step)
            if step % 2 == 1:
                writer.add_scalar("OVERALL/cmc/1", 0.5 + step / 100, step)
        writer.close()
        table = fn(folder)
    epochs = [int(i) for i in getattr(table, "index", [])]
    if epochs == [1, 3, 5]:
        return [
            "on a log with two steps per epoch your index is still the step (1, "
            "3, 5), not the epoch (0, 1, 2): take the 'epoch' scalar logged at "
            "each of those steps."
        ]
    if epochs != [0, 1, 2] or not np.allclose(
        table["OVERALL/cmc/1"].astype(float), [0.51, 0.53, 0.55]
    ):
        return [
            "on a log with two steps per epoch (validation at steps 1, 3, 5) "
            f"the epochs should be [0, 1, 2], got {epochs}."
        ]
    return []
