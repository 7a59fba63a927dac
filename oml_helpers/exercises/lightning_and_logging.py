"""Checker for exercise 03.1 of chapter 03, Lightning and logging: a callback that
freezes the backbone for the first epochs; 03.2's and 03.3's checkers are in
``log_reading``.

The checker trains a tiny ``ExtractorWithMLP(SmallCNN(), [8])`` for three one-step
epochs with the student's callback and records, epoch by epoch, whether the
backbone's weights, its BatchNorm running statistics and the head's weights moved.
The right answer is that behaviour (all of the backbone frozen while
``current_epoch < n_epochs``, all of it training after), not a stored solution.
"""

import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List

import torch
from torch.utils.data import DataLoader, Dataset

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
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
    """After each training epoch: did the backbone's parameters move, its BatchNorm
    running statistics (buffers), the head's parameters?"""

    def __init__(self) -> None:
        self.backbone_moved: List[bool] = []
        self.stats_moved: List[bool] = []
        self.head_moved: List[bool] = []

    @staticmethod
    def params(module: torch.nn.Module) -> List[torch.Tensor]:
        return [p.detach().clone() for p in module.parameters()]

    @staticmethod
    def stats(module: torch.nn.Module) -> List[torch.Tensor]:
        return [b.detach().clone() for b in module.buffers()]

    def start(self, pl_module: "pl.LightningModule") -> None:
        model = pl_module.model
        self._before = (
            self.params(model.extractor),
            self.stats(model.extractor),
            self.params(model.projection),
        )

    def end(self, pl_module: "pl.LightningModule") -> None:
        model = pl_module.model
        after = (
            self.params(model.extractor),
            self.stats(model.extractor),
            self.params(model.projection),
        )
        moved = [
            any(not torch.equal(b, a) for b, a in zip(before, now))
            for before, now in zip(self._before, after)
        ]
        self.backbone_moved.append(moved[0])
        self.stats_moved.append(moved[1])
        self.head_moved.append(moved[2])


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
        if recorder.stats_moved != expected:
            return _verdict([f"{what} {_stats_problem(recorder, expected)}"], "")
    return _verdict(
        [],
        f"the backbone stayed frozen for the first n_epochs ({RUNS[0][0]} and "
        f"{RUNS[1][0]} of {EPOCHS}), weights and BatchNorm statistics, and trained "
        "fully after; the head trained in every epoch.",
    )


def _stats_problem(recorder: _Moves, expected: List[bool]) -> str:
    """Why the backbone's BatchNorm statistics moved when they should not have, or
    stayed when they should have moved."""
    moved, should = recorder.stats_moved, expected
    wrong_frozen = [e for e, (m, s) in enumerate(zip(moved, should)) if m and not s]
    if wrong_frozen:
        return (
            "the backbone's weights stayed put, but its BatchNorm running "
            f"statistics changed in the frozen epochs {wrong_frozen}. freeze() "
            "only turns off the backbone's gradients; a BatchNorm layer in "
            "training mode updates its running mean and variance in every forward "
            "pass. Put the "
            "backbone (pl_module.model.extractor) in evaluation mode while it is "
            "frozen."
        )
    stuck = [e for e, (m, s) in enumerate(zip(moved, should)) if s and not m]
    return (
        f"the backbone trained in epochs {stuck} but its BatchNorm statistics "
        "stayed fixed: it is still in evaluation mode. Lightning calls "
        "model.train() only when fit starts and after a validation, so switch the "
        "backbone back to training mode when you unfreeze it."
    )
