"""Checkers for the exercises of chapter 04, Checkpointing: the share of a
model's parameters that ``strict=False`` loads (04.1) and what is wrong with a
file (04.3). Exercise 04.2's checker is in
``checkpointing_bootstrap``."""

import tempfile
from pathlib import Path
from typing import Any, Callable, List, Union

import numpy as np
import torch
from torch import nn

from oml_helpers.checkpoints import read_checkpoint, save_extractor
from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.models import SmallCNN


PathLike = Union[str, Path]


def _call(fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    # the student's code failing is an answer to diagnose, not a crash
    except Exception as e:
        return e


def _raised(error: Exception) -> str:
    """``'KeyError: its message'``, cut to 150 characters, without a final full
    stop (the verdict's sentence adds one)."""
    text = str(error)[:150].rstrip(" .")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


LOADS_THAT_RAN_CODE: List[str] = []


def _changed(model: nn.Module, before: dict) -> bool:
    """Whether the model's weights differ from ``before`` (a cloned state dict)."""
    return not all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _ran_on_load() -> None:
    """Called by unpickling a trap file: only ``weights_only=False`` does that."""
    LOADS_THAT_RAN_CODE.append("ran")


class _Trap:
    def __reduce__(self):
        return (_ran_on_load, ())


def _share_cases(ckpt_path: PathLike, folder: Path) -> List[tuple]:
    """(path, share, what) for exercise 04.1: files whose keys fit a SmallCNN
    fully, partly or not at all."""
    state = read_checkpoint(ckpt_path)["state_dict"]
    plain = {
        k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")
    }
    head_only = {k: v for k, v in plain.items() if k.startswith("head.")}
    torch.save({"state_dict": plain}, folder / "stripped.pt")
    torch.save({"state_dict": head_only}, folder / "head_only.pt")
    # learnable tensors; batch norm's counters are buffers
    n = len(list(SmallCNN().named_parameters()))
    return [
        (Path(ckpt_path), 0.0, "the Lightning checkpoint, keys as stored"),
        (
            folder / "stripped.pt",
            1.0,
            "the same weights with the 'model.' prefix removed",
        ),
        (
            folder / "head_only.pt",
            len(head_only) / n,
            "only the head's weight and bias",
        ),
    ]


@checker
def check_loaded_share(
    fn: Callable[[PathLike, nn.Module], float], ckpt_path: PathLike
) -> Verdict:
    """Exercise 04.1: ``fn(path, model)``: the share of ``model``'s parameters
    that ``strict=False`` really loads."""
    torch.manual_seed(1)  # other weights than any file it is shown
    model = SmallCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for path, truth, what in _share_cases(ckpt_path, Path(folder)):
            answer = _call(fn, path, model)
            if isinstance(answer, Exception):
                problems.append(
                    f"for {what}, your function raised {_raised(answer)}."
                )
            elif isinstance(answer, bool) or not isinstance(
                answer, (float, int, np.floating, np.integer)
            ):
                problems.append(
                    f"for {what}, your function returned a "
                    f"{type(answer).__name__}: return the share as a number "
                    "between 0 and 1."
                )
            elif abs(float(answer) - truth) > 1e-9:
                hint = (
                    "With strict=False, load_state_dict reports what it skipped "
                    "instead of raising: look at the result's missing_keys."
                    if float(answer) == 1.0
                    else "Count the names of model.named_parameters() that are "
                    "in missing_keys (batch norm's num_batches_tracked is a "
                    "buffer, not a parameter, and in these files it does not "
                    "show as missing)."
                )
                problems.append(
                    f"for {what}, {truth:.2f} of the model's parameters load, "
                    f"and you said {float(answer):.2f}. {hint}"
                )
            if problems:
                break
    if not problems and _changed(model, before):
        problems.append(
            "your function changed the model's weights: load into a copy "
            "(copy.deepcopy(model))."
        )
    return _verdict(
        problems,
        "your function measures how much strict=False really loaded for all 3 "
        "files, and it leaves the model untouched.",
    )


DIAGNOSES = ("ok", "unreadable", "unsafe", "not weights", "other architecture")
# why a file gets its diagnosis: the second sentence of a wrong answer's verdict
_WHY = {
    "unreadable": (
        "It is missing or its bytes are damaged, so h.read_checkpoint refuses it."
    ),
    "unsafe": (
        "The file is intact, but it names a function to call on loading: "
        "torch.serialization.get_unsafe_globals_in_checkpoint(path) lists such "
        "names without running them."
    ),
    "not weights": (
        "It reads with h.read_checkpoint, but h.extractor_state_dict finds no "
        "weights in it."
    ),
    "other architecture": (
        "It reads and holds weights, but h.load_extractor finds that they do not "
        "fit the model."
    ),
    "ok": "It loads into the model.",
}


@checker
def check_diagnose(fn: Callable[[PathLike, nn.Module], str]) -> Verdict:
    """Exercise 04.3: ``fn(path, model)`` names what is wrong with a file (one of
    ``DIAGNOSES``), leaving ``model`` as it is."""
    torch.manual_seed(0)
    model, other = SmallCNN(), SmallCNN()
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        good = save_extractor(other, folder / "good.pt")
        data = good.read_bytes()
        files = {
            "good.pt": ("ok", "the weights of a SmallCNN"),
            "truncated.pt": ("unreadable", "a file cut in half"),
            "garbage.pt": ("unreadable", "bytes that are not a torch file"),
            "missing.pt": ("unreadable", "a file that does not exist"),
            "untrusted.pt": (
                "unsafe",
                "an intact torch file that names a function to call",
            ),
            "settings.pt": (
                "not weights",
                "a readable torch file with settings, no weights",
            ),
            "feat32.pt": (
                "other architecture",
                "weights of a SmallCNN(feat_dim=32)",
            ),
        }
        (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
        (folder / "garbage.pt").write_bytes(b"not a checkpoint" * 10)
        torch.save({"state_dict": {}, "surprise": _Trap()}, folder / "untrusted.pt")
        torch.save({"lr": 0.003, "epochs": 8}, folder / "settings.pt")
        save_extractor(SmallCNN(feat_dim=32), folder / "feat32.pt")
        before_weights = {k: v.clone() for k, v in model.state_dict().items()}
        before_runs = len(LOADS_THAT_RAN_CODE)
        for name, (truth, what) in files.items():
            answer = _call(fn, folder / name, model)
            if len(LOADS_THAT_RAN_CODE) > before_runs:
                problems.append(
                    f"{name} ({what}) ran its code while you loaded it: never "
                    "load with weights_only=False."
                )
            elif isinstance(answer, Exception):
                problems.append(
                    f"for {name} ({what}), your function raised "
                    f"{_raised(answer)}."
                )
            elif not isinstance(answer, str) or answer not in DIAGNOSES:
                problems.append(
                    f"for {name}, your function returned {answer!r}: return one "
                    f"of {DIAGNOSES}."
                )
            elif answer != truth:
                problems.append(
                    f"{name} is {what}, so the answer is {truth!r}, not "
                    f"{answer!r}. " + _WHY[truth]
                )
            if problems:
                break
        if not problems and _changed(model, before_weights):
            problems.append(
                "your function changed the model's weights: try the load on a "
                "copy (copy.deepcopy(model))."
            )
    return _verdict(
        problems,
        f"your function diagnoses all {len(files)} files rightly, and it leaves "
        "the model untouched.",
    )
