"""Save and load extractor weights safely, from the book's own files or from
Lightning checkpoints (chapter 04).

Everything is read with ``torch.load(weights_only=True)``, which rebuilds tensors
and plain Python values only: a file from elsewhere cannot run code while it loads.
"""

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from oml_helpers.messages import shorten

FORMAT = "oml-book-extractor/1"
# OML's ExtractorModule keeps the extractor as ``self.model``
LIGHTNING_PREFIX = "model."
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, unsafe or does not fit the model; the
    message says which and what to do."""


def save_extractor(
    model: nn.Module, path: Union[str, Path], meta: Optional[Dict[str, Any]] = None
) -> Path:
    """Save an extractor's weights (its ``state_dict`` on the CPU) with some
    metadata.

    The file is written next to ``path`` first and then renamed over it, so a save
    that fails half-way leaves an existing file at ``path`` as it was. It gets the
    mode of any new file (``0666`` minus the umask, usually ``-rw-r--r--``), not the
    private mode of a temporary file.

    Args:
        model: The extractor (not the Lightning module).
        path: File to write; its folder is created.
        meta: Notes to keep with the weights (epoch, metrics, ...): strings,
            numbers, booleans, ``None``, and lists or dicts of them, so that
            ``weights_only=True`` can read them back.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` is not a torch module, or ``meta`` holds other types.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}."
        )
    meta = dict(meta or {})
    _check_plain(meta, "meta")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "architecture": type(model).__name__,
        "state_dict": {
            k: v.detach().cpu().clone() for k, v in model.state_dict().items()
        },
        "meta": meta,
    }
    handle, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    os.close(handle)
    # mkstemp makes it private (0600); a saved model is for sharing
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has a non-string key {key!r}; use strings."
                )
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(
            f"{where} is a {type(value).__name__}; keep meta to str, int, float, "
            "bool, None, lists and dicts (convert tensors with float(...) or "
            ".tolist()) so that weights_only=True can load it."
        )


def read_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read any checkpoint file safely (``weights_only=True``, on the CPU), without
    changing it.

    Args:
        path: The file.

    Returns:
        What was saved (a dict for the book's files and Lightning's checkpoints).

    Raises:
        CheckpointError: The file is missing, truncated or corrupted, or holds
            objects other than tensors and plain values (which only
            ``weights_only=False`` would load: do that only for files you trust, as
            loading them can run any code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"No checkpoint file at {path}. Check the path (ls its folder) or save "
            "one first."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): the save was interrupted. Save it again."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(
            r"unsupported (?:global: )?GLOBAL ([\w.]+)", str(e), re.IGNORECASE
        )
        # a class or function the file wants called; anything else is damage
        if found:
            what = f" (here {found.group(1)})"
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain values{what}, "
                "so weights_only=True refuses it: loading it could run code. Load "
                "it with weights_only=False only if you trust where it comes from."
            ) from e
        raise CheckpointError(
            f"{path} is truncated or corrupted: it is not a readable torch file "
            f"({_short(e)}). Use another copy or save it again."
        ) from e
    # torch's reader fails in many ways on damaged bytes (RuntimeError, EOFError,
    # struct.error, ...)
    except Exception as e:
        raise CheckpointError(
            f"{path} is truncated or corrupted and cannot be read ({_short(e)}). "
            "Use another copy or save it again."
        ) from e


def _short(error: Exception) -> str:
    return (
        f"{type(error).__name__}: {str(error).splitlines()[0][:150]}"
        if str(error)
        else type(error).__name__
    )


def extractor_state_dict(
    checkpoint: Dict[str, Any], source: str = "checkpoint"
) -> Dict[str, torch.Tensor]:
    """The extractor's weights inside a checkpoint: the book's file, a Lightning
    checkpoint or a plain state dict.

    Args:
        checkpoint: What ``read_checkpoint`` returned.
        source: Name used in error messages (e.g. the path).

    Returns:
        The state dict, with the ``model.`` prefix of OML's ``ExtractorModule``
        removed.

    Raises:
        CheckpointError: Nothing in it looks like model weights.
    """
    if isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint:
        state = checkpoint.get("state_dict", {})
        return {
            k[len(LIGHTNING_PREFIX) :] if k.startswith(LIGHTNING_PREFIX) else k: v
            for k, v in state.items()
        }
    if (
        isinstance(checkpoint, dict)
        and checkpoint
        and all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in checkpoint.items()
        )
    ):
        return checkpoint
    found = (
        sorted(map(str, checkpoint))[:8]
        if isinstance(checkpoint, dict)
        else type(checkpoint).__name__
    )
    raise CheckpointError(
        f"{source} is not a model checkpoint: expected a state dict, a Lightning "
        f"checkpoint or a file from save_extractor, found {found}."
    )


def load_extractor(path: Union[str, Path], model: nn.Module) -> Dict[str, Any]:
    """Load weights into ``model`` from the book's file, a Lightning checkpoint or a
    plain state dict.

    The model is changed only if every weight fits: same names and same shapes.

    Args:
        path: Checkpoint file (read with ``weights_only=True``; never modified).
        model: The extractor to load into, built with the same architecture and
            settings.

    Returns:
        The metadata saved with the weights (``{}`` for other files); a Lightning
        checkpoint gives its ``epoch`` and ``global_step``.

    Raises:
        CheckpointError: See ``read_checkpoint``; also for a file that is not a
            checkpoint or weights of another architecture (the message lists
            missing, unexpected and mismatched weights).
    """
    checkpoint = read_checkpoint(path)
    state = extractor_state_dict(checkpoint, str(path))
    problems = _mismatches(model.state_dict(), state)
    if problems:
        saved_as = (
            checkpoint.get("architecture") if isinstance(checkpoint, dict) else None
        )
        hint = (
            f" It was saved from a {saved_as}."
            if saved_as and saved_as != type(model).__name__
            else ""
        )
        raise CheckpointError(
            f"The weights in {path} do not fit this {type(model).__name__}:{hint} "
            + "; ".join(problems)
            + ". Build the model with the architecture and settings used for "
            "training."
        )
    model.load_state_dict(state)
    if checkpoint.get("format") == FORMAT:
        return checkpoint["meta"]
    if "pytorch-lightning_version" in checkpoint:
        return {
            "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"),
        }
    return {}


def _mismatches(
    expected: Dict[str, torch.Tensor], found: Dict[str, torch.Tensor]
) -> List[str]:
    def head(names: List[str]) -> str:
        return shorten(names, 4, show=str)

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and tuple(found[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {head(missing)}")
    if unexpected:
        problems.append(f"unexpected {head(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (file vs model) {head(shapes)}")
    return problems


def best_checkpoint(directory: Union[str, Path], monitor: str) -> Path:
    """The best checkpoint in a folder, as ``ModelCheckpoint`` recorded it, from the
    files alone.

    Every file that ``ModelCheckpoint`` writes, ``last.ckpt`` included, stores the
    callback's state. This reads the state of the newest file (highest
    ``global_step``) and takes its ``best_model_path``. Only the file name is used,
    looked up in ``directory``: the stored path is relative to the working directory
    of the run that saved it, and the folder may have moved. (A file's
    ``current_score`` is not its own score: ``last.ckpt`` repeats the latest top-k
    save's.)

    Args:
        directory: Folder of ``.ckpt`` files written by
            ``ModelCheckpoint(monitor=...)``.
        monitor: The metric name given to ``ModelCheckpoint`` (picks its state among
            the callbacks').

    Returns:
        The path of the best checkpoint, inside ``directory``.

    Raises:
        CheckpointError: No folder, no ``.ckpt`` file scored on ``monitor`` (the
            message lists what was monitored), or the best file it records is no
            longer in the folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"No folder {directory}. Give the dirpath of your ModelCheckpoint."
        )
    newest, monitored = None, set()
    for path in sorted(directory.glob("*.ckpt")):
        checkpoint = read_checkpoint(path)
        for key, state in checkpoint.get("callbacks", {}).items():
            if not (key.startswith("ModelCheckpoint") and isinstance(state, dict)):
                continue
            monitored.add(str(state.get("monitor")))
            if state.get("monitor") == monitor and state.get("best_model_path"):
                step = int(checkpoint.get("global_step") or 0)
                if newest is None or step > newest[0]:
                    newest = (step, path, state["best_model_path"])
    if newest is None:
        raise CheckpointError(
            f"No checkpoint in {directory} was scored on {monitor!r}; "
            f"monitored: {sorted(monitored) or 'none'}."
        )
    _, source, recorded = newest
    best = directory / Path(recorded).name
    if not best.is_file():
        raise CheckpointError(
            f"{source.name} records {recorded} as the best checkpoint, but "
            f"{best.name} is not in {directory}: it was deleted or moved. Restore "
            "it, or pick from the files there."
        )
    return best
