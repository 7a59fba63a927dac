"""Checkers for the exercises of chapter 04, Checkpointing: the checkpoints that
``ModelCheckpoint`` kept, read from its state (a former exercise, no longer in
the chapter), the share of a model's parameters that ``strict=False`` loads (04.1)
and what is wrong with a file (04.3). Exercise 04.2's checker is in
``checkpointing_bootstrap``."""

import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple, Union

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


def _checkpoint_state(ckpt: dict) -> Tuple[str, dict]:
    """The key (class and settings) and the state of the first ModelCheckpoint in
    a checkpoint."""
    states = [
        (k, s)
        for k, s in ckpt.get("callbacks", {}).items()
        if k.startswith("ModelCheckpoint")
    ]
    if not states:
        raise ValueError(
            "the file has no ModelCheckpoint state: pass a checkpoint written "
            "with ModelCheckpoint."
        )
    return states[0]


def _as_pairs(answer: Any) -> Optional[List[Tuple[Path, float]]]:
    """``answer`` as (path, score) pairs, or None if it is not a list of such
    pairs."""
    if isinstance(answer, dict):
        answer = list(answer.items())
    try:
        return [(Path(path), float(score)) for path, score in answer]
    except (TypeError, ValueError):
        return None


def _same_file(a: PathLike, b: PathLike) -> bool:
    return Path(a).resolve() == Path(b).resolve()


@checker
def check_best_k_from_state(answer: Any, last_ckpt: PathLike) -> Verdict:
    """Former exercise 04.1: the checkpoints ``ModelCheckpoint`` kept, best first,
    read from ``last_ckpt``.

    Args:
        answer: ``[(path, score), ...]``, the best first, one pair per file kept
            (``save_top_k``).
        last_ckpt: The run's ``last.ckpt``.

    Returns:
        The verdict.
    """
    key, state = _checkpoint_state(read_checkpoint(last_ckpt))
    # the key spells out the callback's settings
    highest_first = "'mode': 'min'" not in key
    truth = sorted(
        ((Path(p), float(s)) for p, s in state["best_k_models"].items()),
        key=lambda pair: pair[1],
        reverse=highest_first,
    )
    if not _same_file(truth[0][0], state["best_model_path"]):
        raise ValueError(
            f"{last_ckpt}'s state is inconsistent: best_k_models does not rank "
            "best_model_path first."
        )
    pairs = _as_pairs(answer)
    k = len(truth)
    problems = []
    if pairs is None:
        problems.append(
            "give a list of (path, score) pairs, the best first, not "
            f"{type(answer).__name__}."
        )
    elif any(
        _same_file(p, state.get("last_model_path") or last_ckpt) for p, _ in pairs
    ):
        problems.append(
            "last.ckpt is the latest state, kept for resuming, not one of the "
            "top-k: leave it out."
        )
    elif len(pairs) != k:
        problems.append(
            f"ModelCheckpoint kept {k} files (save_top_k={k}), you gave "
            f"{len(pairs)}: its 'best_k_models' maps each kept path to its score."
        )
    elif sorted(str(p.resolve()) for p, _ in pairs) != sorted(
        str(p.resolve()) for p, _ in truth
    ):
        problems.append(
            "those are not the files ModelCheckpoint kept; read 'best_k_models' "
            "(not 'best_model_path' alone, nor 'kth_best_model_path')."
        )
    elif [str(p.resolve()) for p, _ in pairs] == [
        str(p.resolve()) for p, _ in reversed(truth)
    ]:
        problems.append(
            "the right files, worst first: with mode='max' the best has the "
            "highest score (sort with reverse=True)."
        )
    elif [str(p.resolve()) for p, _ in pairs] != [
        str(p.resolve()) for p, _ in truth
    ]:
        problems.append("the right files in the wrong order: the best first.")
    else:
        current = state.get("current_score")
        for (path, score), (_, right) in zip(pairs, truth):
            if not np.isclose(score, right, atol=1e-6):
                hint = "read each file's score from 'best_k_models'."
                if current is not None and np.isclose(
                    score, float(current), atol=1e-6
                ):
                    hint = (
                        "that is 'current_score', the score of the latest top-k "
                        "save (which last.ckpt repeats), not this file's; " + hint
                    )
                problems.append(
                    f"{path.name}: score {score:.4f} is not the one it was kept "
                    f"with; {hint}"
                )
                break
    # No numbers in the success message: they come from training, whose last digits
    # vary by CPU.
    return _verdict(
        problems,
        f"the {k} checkpoints kept, best first, with their {state['monitor']}, "
        "as ModelCheckpoint recorded them.",
    )


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
                    f"for {what} your function raised {type(answer).__name__}: "
                    f"{str(answer)[:150]}"
                )
            elif not isinstance(answer, (float, int, np.floating, np.integer)):
                problems.append(
                    f"return a number between 0 and 1, not {type(answer).__name__}."
                )
            elif abs(float(answer) - truth) > 1e-9:
                hint = (
                    "strict=False reports what it skipped instead of raising: "
                    "look at the result's missing_keys."
                    if float(answer) == 1.0
                    else "count the names of model.named_parameters() that are in "
                    "missing_keys (batch norm's num_batches_tracked is a "
                    "buffer, not a parameter, and it never shows as missing)."
                )
                problems.append(
                    f"{what}: {truth:.2f} of the model's parameters load, you "
                    f"said {float(answer):.2f}; {hint}"
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
        "you see how much strict=False really loaded, for all 3 files, the model "
        "untouched.",
    )


DIAGNOSES = ("ok", "unreadable", "unsafe", "not weights", "other architecture")


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
                    f"for {name} ({what}) your function raised "
                    f"{type(answer).__name__}: {str(answer)[:150]}"
                )
            elif answer not in DIAGNOSES:
                problems.append(
                    f"for {name} you returned {answer!r}; return one of "
                    f"{DIAGNOSES}."
                )
            elif answer != truth:
                problems.append(
                    f"{name} is {what}: {truth!r}, not {answer!r}. "
                    + {
                        "unreadable": (
                            "h.read_checkpoint refuses it: it is missing or its "
                            "bytes are damaged."
                        ),
                        "unsafe": (
                            "the file is intact, but it names a function to call "
                            "on loading: torch.serialization."
                            "get_unsafe_globals_in_checkpoint(path) lists such "
                            "names without running them."
                        ),
                        "not weights": (
                            "h.read_checkpoint reads it, h.extractor_state_dict "
                            "finds no weights in it."
                        ),
                        "other architecture": (
                            "it reads, and holds weights, but load_extractor "
                            "finds they do not fit."
                        ),
                        "ok": "it loads into the model.",
                    }[truth]
                )
            if problems:
                break
        if not problems and _changed(model, before_weights):
            problems.append(
                "diagnosing changed the model's weights: try the load on a copy "
                "(copy.deepcopy(model))."
            )
    return _verdict(
        problems, f"all {len(files)} files diagnosed, the model untouched."
    )
