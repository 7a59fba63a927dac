"""Checkers for the exercises of chapter 03, Lightning and logging: a callback that
freezes the backbone for the first epochs (03.1) and the validation metrics per
epoch from a TensorBoard log (03.3); 03.2's checker is in ``log_reading``.

The callback's checker trains a tiny ``ExtractorWithMLP(SmallCNN(), [8])`` for three
one-step epochs with the student's callback and records, epoch by epoch, whether
the backbone's and the head's weights moved. The right answer is that behaviour
(frozen while ``current_epoch < n_epochs``), not a stored solution.
"""

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Union

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.logs import read_csv_metrics
from oml_helpers.models import SmallCNN


# Lightning is imported when a check runs: importing it warns (pkg_resources)
if TYPE_CHECKING:
    import pytorch_lightning as pl


EPOCHS = 3


# (n_epochs, train_backbone the model is built with): both start states, so that a
# callback that only freezes, or only unfreezes, and leaves the rest to the
# constructor fails one of the runs.
RUNS = ((1, False), (2, True))


class _TinyDigits(Dataset):
    """8 random 16x16 images of 4 labels: one batch, hence one optimiser step per
    epoch."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randn(8, 3, 16, 16, generator=gen)
        self.labels = torch.arange(4).repeat_interleave(2)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return {"input_tensors": self.images[i], "labels": self.labels[i]}


class _Moves:
    """After each training epoch: did the backbone's parameters move, did the
    head's?"""

    def __init__(self) -> None:
        self.backbone_moved: List[bool] = []
        self.head_moved: List[bool] = []

    @staticmethod
    def params(module: torch.nn.Module) -> List[torch.Tensor]:
        # buffers (batch norm) excluded
        return [p.detach().clone() for p in module.parameters()]

    def start(self, pl_module: "pl.LightningModule") -> None:
        self._backbone = self.params(pl_module.model.extractor)
        self._head = self.params(pl_module.model.projection)

    def end(self, pl_module: "pl.LightningModule") -> None:
        def moved(before: List[torch.Tensor], module: torch.nn.Module) -> bool:
            return any(
                not torch.equal(b, p) for b, p in zip(before, self.params(module))
            )

        self.backbone_moved.append(moved(self._backbone, pl_module.model.extractor))
        self.head_moved.append(moved(self._head, pl_module.model.projection))


def _train(callback: "pl.Callback", train_backbone: bool) -> _Moves:
    """Three one-step epochs of a tiny ExtractorWithMLP with ``callback`` before
    the recorder."""
    from oml.lightning.modules.extractor import ExtractorModule
    from oml.models import ExtractorWithMLP

    from pytorch_lightning.callbacks import LambdaCallback

    from oml_helpers.lightning import make_trainer
    from oml_helpers.training import make_criterion

    torch.manual_seed(0)
    model = ExtractorWithMLP(
        SmallCNN(feat_dim=16, width=8), [8], train_backbone=train_backbone
    )
    module = ExtractorModule(
        extractor=model,
        # margin 1: random embeddings violate it, so every step has a gradient to
        # apply
        criterion=make_criterion(margin=1.0),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
    )
    recorder = _Moves()
    hooks = LambdaCallback(
        on_train_epoch_start=lambda trainer, pl_module: recorder.start(pl_module),
        on_train_epoch_end=lambda trainer, pl_module: recorder.end(pl_module),
    )
    trainer = make_trainer(
        EPOCHS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[callback, hooks],
    )
    # no validation loader and no workers: on purpose here
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*(val_dataloader|many workers).*"
        )
        trainer.fit(
            module, train_dataloaders=DataLoader(_TinyDigits(), batch_size=8)
        )
    return recorder


def _epochs(flags: List[bool], value: bool) -> List[int]:
    return [e for e, f in enumerate(flags) if f == value]


def _diagnose(trained: List[bool], n_epochs: int) -> str:
    frozen = _epochs(trained, False)
    if not any(trained):
        return (
            "the backbone never trained: call pl_module.model.unfreeze() once "
            "trainer.current_epoch reaches n_epochs."
        )
    if all(trained):
        return (
            "the backbone trained from the first epoch: call "
            "pl_module.model.freeze() while trainer.current_epoch < n_epochs."
        )
    if frozen == list(range(n_epochs + 1)) or frozen == list(range(n_epochs - 1)):
        return (
            f"the backbone was frozen in epochs {frozen}: off by one. Lightning "
            "counts epochs from 0, so freeze while trainer.current_epoch < "
            "n_epochs."
        )
    return (
        f"the backbone was frozen in epochs {frozen}, trained in "
        f"{_epochs(trained, True)}."
    )


@checker
def check_freeze_callback(
    callback_class: Callable[[int], "pl.Callback"],
) -> Verdict:
    """Exercise 03.1: ``callback_class(n_epochs)`` freezes an
    ``ExtractorWithMLP``'s backbone for ``n_epochs``."""
    import pytorch_lightning as pl

    if not (
        isinstance(callback_class, type) and issubclass(callback_class, pl.Callback)
    ):
        return _verdict(
            [
                "pass the class itself, a subclass of "
                "pytorch_lightning.Callback, not "
                f"{type(callback_class).__name__}."
            ],
            "",
        )
    if "on_epoch_start" in vars(
        callback_class
    ) and "on_train_epoch_start" not in vars(callback_class):
        return _verdict(
            [
                "Lightning 2.x never calls on_epoch_start (the hook that makes "
                "freeze_n_epochs a no-op): define on_train_epoch_start."
            ],
            "",
        )
    for n_epochs, train_backbone in RUNS:
        what = (
            f"with n_epochs={n_epochs} (model built with "
            f"train_backbone={train_backbone})"
        )
        try:
            recorder = _train(callback_class(n_epochs), train_backbone)
        # the student's code failing is an answer to diagnose, not a crash
        except Exception as e:
            hint = (
                " Some step had nothing to train: freeze only the backbone "
                "(pl_module.model.freeze())."
                if "does not require grad" in str(e)
                else ""
            )
            return _verdict(
                [
                    f"{what} training raised {type(e).__name__}: "
                    f"{str(e)[:200]}.{hint}"
                ],
                "",
            )
        if not all(recorder.head_moved):
            return _verdict(
                [
                    f"{what} the head did not train in epochs "
                    f"{_epochs(recorder.head_moved, False)}: freeze only the "
                    "backbone (pl_module.model.freeze()), not the whole model."
                ],
                "",
            )
        expected = [epoch >= n_epochs for epoch in range(EPOCHS)]
        if recorder.backbone_moved != expected:
            return _verdict(
                [f"{what} {_diagnose(recorder.backbone_moved, n_epochs)}"], ""
            )
    return _verdict(
        [],
        f"the backbone stayed frozen for the first n_epochs ({RUNS[0][0]} and "
        f"{RUNS[1][0]} of {EPOCHS}) and trained after; the head trained in every "
        "epoch.",
    )


PathLike = Union[str, Path]


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
