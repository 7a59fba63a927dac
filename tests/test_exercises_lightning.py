"""The checkers of chapters 03 and 04 accept the right answers and turn down typical wrong ones with
a reason.

The logs and checkpoints are written by hand in the formats Lightning uses, so no training runs
here.
"""

import copy
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

import oml_helpers as h
from oml_helpers import exercises as ex
from verdicts import in_sentences as _in_sentences
from verdicts import says as _says


# Chapter 03 ---------------------------------------------------------------------------------------


class _Freeze(pl.Callback):
    """The answer to exercise 03.1, and typical slips of it."""

    def __init__(self, n_epochs, slip=None):
        self.n_epochs, self.slip = n_epochs, slip

    def on_train_epoch_start(self, trainer, pl_module):
        frozen = trainer.current_epoch < self.n_epochs
        if self.slip == "off by one":
            frozen = trainer.current_epoch <= self.n_epochs
        if self.slip == "whole model":
            for p in pl_module.model.parameters():
                p.requires_grad_(not frozen)
        elif frozen:
            pl_module.model.freeze()
        elif self.slip != "never unfreezes":
            pl_module.model.unfreeze()
        # a frozen backbone's BatchNorm must not update its running statistics
        backbone = pl_module.model.extractor
        if frozen and self.slip != "gradients only":
            backbone.eval()
        elif not frozen and self.slip != "stays in eval":
            backbone.train()


def _freeze(slip):
    return type(
        "FreezeBackbone", (_Freeze,), {"__init__": lambda self, n: _Freeze.__init__(self, n, slip)}
    )


class _OldHook(pl.Callback):
    def __init__(self, n_epochs):
        self.n_epochs = n_epochs

    def on_epoch_start(self, trainer, pl_module):
        pl_module.model.freeze()


def test_freeze_callback():
    _says(
        ex.check_freeze_callback(_freeze(None)),
        ex.RIGHT,
        "frozen for the first n_epochs",
        "head trained",
    )
    _says(ex.check_freeze_callback(_freeze("off by one")), ex.WRONG, "off by one", "epochs [0, 1]")
    _says(
        ex.check_freeze_callback(_freeze("never unfreezes")),
        ex.WRONG,
        "never trained",
        "unfreeze()",
    )
    _says(ex.check_freeze_callback(_freeze("whole model")), ex.WRONG, "freeze only the backbone")
    _says(
        ex.check_freeze_callback(_freeze("gradients only")),
        ex.WRONG,
        "BatchNorm running statistics changed in the frozen epochs [0]",
        "evaluation mode",
    )
    _says(
        ex.check_freeze_callback(_freeze("stays in eval")),
        ex.WRONG,
        "statistics stayed fixed",
        "back to training mode",
    )
    _says(ex.check_freeze_callback(_OldHook), ex.WRONG, "never calls on_epoch_start")
    _says(ex.check_freeze_callback(_freeze(None)(1)), ex.WRONG, "the class itself")


def test_freeze_callback_that_only_unfreezes_fails_a_run():
    """Leaving the frozen epochs to the constructor's train_backbone=False passes one run, not
    both."""

    class OnlyUnfreezes(pl.Callback):
        def __init__(self, n_epochs):
            self.n_epochs = n_epochs

        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch >= self.n_epochs:
                pl_module.model.unfreeze()
                pl_module.model.extractor.train()
            else:
                pl_module.model.extractor.eval()

    _says(
        ex.check_freeze_callback(OnlyUnfreezes),
        ex.WRONG,
        "n_epochs=2",
        "trained from the first epoch",
    )


MAP5 = [0.60, 0.70, 0.80, 0.75]  # best at epoch 2, last epoch 3, 2 steps per epoch


@pytest.fixture
def logs(tmp_path):
    """A CSVLogger-like metrics.csv and TensorBoard events of the same 4 epochs of 2 steps."""
    from torch.utils.tensorboard import SummaryWriter

    rows, writer = [], SummaryWriter(log_dir=str(tmp_path / "tb"))
    for epoch, value in enumerate(MAP5):
        for step in (2 * epoch, 2 * epoch + 1):
            rows.append({"epoch": epoch, "step": step, "loss_step": 1 - value})
            writer.add_scalar("loss_step", 1 - value, step)
            writer.add_scalar("epoch", epoch, step)
        rows.append(
            {
                "epoch": epoch,
                "step": 2 * epoch + 1,
                "OVERALL/map/5": value,
                "OVERALL/cmc/1": value + 0.1,
            }
        )
        writer.add_scalar("OVERALL/map/5", value, 2 * epoch + 1)
        writer.add_scalar("OVERALL/cmc/1", value + 0.1, 2 * epoch + 1)
    writer.close()
    (tmp_path / "csv").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "csv" / "metrics.csv", index=False)
    return tmp_path / "tb", tmp_path / "csv"


def test_tensorboard_per_epoch_needs_a_csv_log_that_validated(logs, tmp_path):
    tb, _ = logs
    (tmp_path / "train_only").mkdir()
    pd.DataFrame({"epoch": [0, 1], "step": [0, 1], "loss_step": [0.5, 0.4]}).to_csv(
        tmp_path / "train_only" / "metrics.csv", index=False
    )
    with pytest.raises(ValueError, match="No validation metric"):
        ex.check_tensorboard_per_epoch(_per_epoch, tb, tmp_path / "train_only")


def _per_epoch(log_dir):
    scalars = h.read_tensorboard_scalars(log_dir)
    val = scalars.filter(like="OVERALL/").dropna(how="all")
    val.index = scalars.loc[val.index, "epoch"].astype(int)
    return val


def _by_step(log_dir):
    """A typical slip: the validation rows, still indexed by the training step."""
    return h.read_tensorboard_scalars(log_dir).filter(like="OVERALL/").dropna(how="all")


def test_tensorboard_per_epoch(logs):
    tb, csv = logs
    _says(ex.check_tensorboard_per_epoch(_per_epoch, tb, csv), ex.RIGHT, "4 epochs x 2 metrics")
    _says(ex.check_tensorboard_per_epoch(_by_step, tb, csv), ex.WRONG, "training step")
    _says(
        ex.check_tensorboard_per_epoch(lambda d: _per_epoch(d)[["OVERALL/map/5"]], tb, csv),
        ex.WRONG,
        "missing",
    )

    def shifted(log_dir):
        return _per_epoch(log_dir).shift(1).bfill()

    _says(ex.check_tensorboard_per_epoch(shifted, tb, csv), ex.WRONG, "values differ")


def test_tensorboard_per_epoch_two_steps_an_epoch():
    """The chapter's run has one step per epoch, where an index by step looks right: the checker
    also
    runs the answer on a log with two steps per epoch."""
    from oml_helpers.exercises.log_reading import _two_steps_per_epoch_problems

    assert _two_steps_per_epoch_problems(_per_epoch) == []
    (problem,) = _two_steps_per_epoch_problems(_by_step)
    assert "still the step" in problem


# Chapter 04 ---------------------------------------------------------------------------------------


@pytest.fixture
def lightning_ckpt(tmp_path):
    """A checkpoint shaped like Lightning's, save_top_k=2: prefixed weights and a ModelCheckpoint
    state.

    Kept: epoch 1 (0.9, the best) and epoch 3 (0.85, the latest top-k save, so current_score);
    last.ckpt is epoch 4, which did not make the top 2.
    """
    torch.manual_seed(0)
    model = h.SmallCNN()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    best, second = str(folder / "epoch01.ckpt"), str(folder / "epoch03.ckpt")
    state = {
        "monitor": "OVERALL/map/5",
        "best_model_score": torch.tensor(0.9),
        "best_model_path": best,
        "current_score": torch.tensor(0.85),
        "last_model_path": str(folder / "last.ckpt"),
        "dirpath": str(folder),
        "kth_best_model_path": second,
        "kth_value": torch.tensor(0.85),
        "best_k_models": {second: torch.tensor(0.85), best: torch.tensor(0.9)},
    }
    ckpt = {
        "pytorch-lightning_version": "2.1.2",
        "epoch": 4,
        "global_step": 10,
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "callbacks": {"ModelCheckpoint{'monitor': 'OVERALL/map/5', 'mode': 'max'}": state},
    }
    torch.save(ckpt, folder / "last.ckpt")
    return folder / "last.ckpt", model


def _share(count_missing=True, on_copy=True):
    def share(path, model):
        target = copy.deepcopy(model) if on_copy else model
        result = target.load_state_dict(
            torch.load(path, weights_only=True)["state_dict"], strict=False
        )
        names = [name for name, _ in model.named_parameters()]
        missing = sum(name in result.missing_keys for name in names)
        return 1 - missing / len(names) if count_missing else 1.0

    return share


def test_loaded_share(lightning_ckpt):
    path, _ = lightning_ckpt
    _says(ex.check_loaded_share(_share(), path), ex.RIGHT, "strict=False really loaded", "3 files")
    _says(
        ex.check_loaded_share(_share(count_missing=False), path),
        ex.WRONG,
        "0.00 of the model",
        "missing_keys",
    )
    _says(ex.check_loaded_share(_share(on_copy=False), path), ex.WRONG, "changed the model")

    def whole_state_dict(path, model):  # counts batch norm's counters, not missing in these files
        result = copy.deepcopy(model).load_state_dict(
            torch.load(path, weights_only=True)["state_dict"], strict=False
        )
        return 1 - len(result.missing_keys) / len(model.state_dict())

    _says(ex.check_loaded_share(whole_state_dict, path), ex.WRONG, "num_batches_tracked")
    _says(ex.check_loaded_share(lambda p, m: "all", path), ex.WRONG, "a number between 0 and 1")


def _readable(checkpoint, path, model):
    """What a file is once it has been read safely."""
    try:
        h.extractor_state_dict(checkpoint)
    except h.CheckpointError:
        return "not weights"
    try:
        h.load_extractor(path, copy.deepcopy(model))
    except h.CheckpointError:
        return "other architecture"
    return "ok"


def _four_classes(path, model):
    """The exercise's earlier answer: code in a file counted as unreadable."""
    try:
        return _readable(h.read_checkpoint(path), path, model)
    except h.CheckpointError:
        return "unreadable"


def _diagnose(path, model):
    if not Path(path).is_file():
        return "unreadable"
    try:
        if torch.serialization.get_unsafe_globals_in_checkpoint(path):
            return "unsafe"
        checkpoint = h.read_checkpoint(path)
    except (h.CheckpointError, OSError, ValueError, RuntimeError):
        return "unreadable"
    return _readable(checkpoint, path, model)


def test_diagnose():
    _says(ex.check_diagnose(_diagnose), ex.RIGHT, "7 files")

    def catch_all(path, model):
        try:
            h.load_extractor(path, copy.deepcopy(model))
        except h.CheckpointError:
            return "unreadable"
        return "ok"

    _says(ex.check_diagnose(catch_all), ex.WRONG, "untrusted.pt", "'unsafe'")
    _says(
        ex.check_diagnose(_four_classes),
        ex.WRONG,
        "untrusted.pt",
        "'unsafe'",
        "get_unsafe_globals_in_checkpoint",
    )

    def no_settings(path, model):
        answer = _diagnose(path, model)
        return "other architecture" if answer == "not weights" else answer

    _says(ex.check_diagnose(no_settings), ex.WRONG, "settings.pt", "'not weights'")

    def into_model(path, model):
        answer = _diagnose(path, model)
        if answer == "ok":
            h.load_extractor(path, model)
        return answer

    _says(ex.check_diagnose(into_model), ex.WRONG, "changed the model")

    def unsafe(path, model):
        if path.exists():
            torch.load(path, weights_only=False) if path.name == "untrusted.pt" else None
        return _diagnose(path, model)

    _says(ex.check_diagnose(unsafe), ex.WRONG, "untrusted.pt", "ran its code")


def test_loaded_share_wrong_answers_say_which_file_and_what_to_do(lightning_ckpt):
    path, _ = lightning_ckpt

    def raises(path, model):
        raise ZeroDivisionError("division by zero.")

    verdicts = [
        ex.check_loaded_share(_share(), path),
        ex.check_loaded_share(raises, path),
        ex.check_loaded_share(lambda p, m: True, path),
        ex.check_loaded_share(_share(count_missing=False), path),
        ex.check_loaded_share(_share(on_copy=False), path),
    ]
    _says(
        verdicts[1],
        ex.WRONG,
        "for the Lightning checkpoint, keys as stored, your function raised "
        "ZeroDivisionError: division by zero.",
    )
    _says(verdicts[2], ex.WRONG, "returned a bool", "a number between 0 and 1")
    _says(verdicts[3], ex.WRONG, "0.00 of the model's parameters load, and you said 1.00. With")
    for verdict in verdicts:
        _in_sentences(verdict)


def test_diagnose_wrong_answers_say_which_file_and_what_to_do():
    def raises(path, model):
        raise KeyError("state_dict")

    def says_unreadable_for_other_weights(path, model):
        answer = _diagnose(path, model)
        return "unreadable" if answer == "other architecture" else answer

    verdicts = [
        ex.check_diagnose(_diagnose),
        ex.check_diagnose(raises),
        ex.check_diagnose(lambda p, m: "broken"),
        ex.check_diagnose(says_unreadable_for_other_weights),
        ex.check_diagnose(_four_classes),
    ]
    _says(
        verdicts[1],
        ex.WRONG,
        "for good.pt (the weights of a SmallCNN), your function raised KeyError",
    )
    _says(verdicts[2], ex.WRONG, "for good.pt, your function returned 'broken': return one of")
    _says(
        verdicts[3],
        ex.WRONG,
        "feat32.pt is weights of a SmallCNN(feat_dim=32), so the answer is 'other architecture', "
        "not 'unreadable'. It reads and holds weights",
    )
    for verdict in verdicts:
        _in_sentences(verdict)
