"""Checker for exercise 02.3 of chapter 02, Validation: predict, then measure,
whether coarsened pixels (block means of a growing width) beat the trained model
on queries moved by 16 pixels, and what the coarsening costs on unmoved ones."""

from typing import Callable, List

import pandas as pd
import torch

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

PREDICTIONS = ("pixels", "model")
WIDTHS = (4, 8, 16, 32)  # block widths of the sweep, in pixels
SHIFT = 16  # pixels: the table's row where the model leads the raw pixels
# one query of the 896 moves CMC@1 by 0.0011; leave room for float noise
TOLERANCE = 0.003


def _cmc1(
    queries: torch.Tensor, gallery: torch.Tensor, labels: torch.Tensor
) -> float:
    """CMC@1 of each query against every gallery vector but its own (row i of
    both is image i), as the chapter's ``cmc1_moved_queries`` computes it."""
    distances = torch.cdist(queries.flatten(1).float(), gallery.flatten(1).float())
    distances.fill_diagonal_(float("inf"))
    return float((labels[distances.argmin(1)] == labels).float().mean())


def _blurred(blur: Callable, images: torch.Tensor, name: str, width: int) -> object:
    """``coarsen(images, width)`` as one float vector per image, or the reason it is
    not."""
    try:
        out = blur(images.clone(), width)
    except Exception as e:  # the student's code
        return f"`coarsen` raised {type(e).__name__}: {e}"
    if not isinstance(out, torch.Tensor):
        return (
            f"`coarsen({name}, {width})` gave a {type(out).__name__}; return a "
            "tensor."
        )
    if out.dim() < 1 or len(out) != len(images):
        return (
            f"`coarsen({name}, {width})` has the shape {tuple(out.shape)}: "
            f"give one vector per image, {len(images)} rows."
        )
    out = out.detach().flatten(1).float()
    if not torch.isfinite(out).all():
        return f"`coarsen({name}, {width})` holds NaN or infinite values."
    return out


def _inputs_problems(moved: object, images: torch.Tensor) -> List[str]:
    """What is wrong with ``moved`` as the moved copy of ``images`` (empty if
    nothing)."""
    if not isinstance(moved, torch.Tensor) or moved.shape != images.shape:
        shape = tuple(getattr(moved, "shape", ()))
        return [
            f"`moved` has the shape {shape}, the images {tuple(images.shape)}: "
            f"use `move_each(images, {SHIFT})`."
        ]
    changed = (moved != images).flatten(1).any(1).float().mean()
    if changed < 0.5:
        return [
            f"`moved` equals the unmoved images: use `move_each(images, {SHIFT})`."
        ]
    return []


def _as_sweep(sweep: object) -> object:
    """The answer as a DataFrame (a row per width, "moved" and "unmoved"), or the
    reason it cannot be one."""
    if isinstance(sweep, dict):
        if all(
            isinstance(v, dict) for v in sweep.values()
        ):  # inner keys name columns
            sweep = pd.DataFrame.from_dict(sweep, orient="index")
        else:  # pairs: (moved, unmoved) by position
            sweep = pd.DataFrame.from_dict(
                {k: list(v) for k, v in sweep.items()}, orient="index"
            )
            if sweep.shape[1] == 2:
                sweep.columns = ["moved", "unmoved"]
    if not isinstance(sweep, pd.DataFrame):
        return (
            "`sweep` should be a DataFrame (a row per width, the columns "
            f"'moved' and 'unmoved'); got {type(sweep).__name__}."
        )
    if not {"moved", "unmoved"} <= set(sweep.columns):
        return (
            "`sweep` needs the columns 'moved' and 'unmoved'; yours has "
            f"{list(sweep.columns)}."
        )
    missing = [w for w in WIDTHS if w not in set(sweep.index)]
    if missing:
        return f"`sweep` has no row for the widths {missing}: give {list(WIDTHS)}."
    try:
        return sweep.loc[list(WIDTHS), ["moved", "unmoved"]].astype(float)
    except (TypeError, ValueError):
        return "`sweep` should hold numbers, the CMC@1 values."


def _sweep_problem(mine: pd.DataFrame, truth: pd.DataFrame, raw: float) -> str:
    """The first wrong row of the answer, with a likely reason ("" if none)."""
    for width in WIDTHS:
        got, right = mine.loc[width], truth.loc[width]
        if (abs(got - right) <= TOLERANCE).all():
            continue
        text = (
            f"at width {width} you have moved {got['moved']:.3f}, unmoved "
            f"{got['unmoved']:.3f}; your `coarsen` gives {right['moved']:.3f} and "
            f"{right['unmoved']:.3f}"
        )
        if (abs(got.to_numpy()[::-1] - right.to_numpy()) <= TOLERANCE).all():
            return text + ": the two columns are swapped."
        if abs(got["moved"] - raw) <= TOLERANCE:
            return (
                text + ": that is the raw pixels' CMC@1; coarsen both sides first."
            )
        return text + (
            ": rank with `cmc1_moved_queries(coarsen(moved, width), "
            "coarsen(images, width))`, and `coarsen(images, width)` on both "
            "sides for 'unmoved'."
        )
    return ""


@checker
def check_coarse_pixels(
    prediction: str,
    blur: Callable[[torch.Tensor, int], torch.Tensor],
    sweep: object,
    moved: torch.Tensor,
    images: torch.Tensor,
    labels: object,
    moved_table: pd.DataFrame,
) -> Verdict:
    """Exercise 02.3: CMC@1 of coarsened pixels at each width of ``WIDTHS``, on
    queries moved by 16 pixels and on unmoved ones.

    The checker recomputes every number from ``blur``, so any coarsening or blur
    is accepted; the prediction is compared with the measurement but does not
    decide the verdict.

    Args:
        prediction: "pixels" or "model": which was predicted to score higher on
            moved queries at the best width.
        blur: The student's function, (images N x 3 x 64 x 64, width) to N vectors.
        sweep: The answer: a DataFrame indexed by width with the columns "moved"
            (``coarsen(moved, w)`` against ``coarsen(images, w)``) and "unmoved"
            (``coarsen(images, w)`` against itself), or a dict width -> (moved,
            unmoved).
        moved: ``images`` with every image moved by 16 pixels (``move_each``).
        images: The validation images, unmoved, in dataset order.
        labels: Their digits, in the same order.
        moved_table: The chapter's table of CMC@1 by shift ("raw pixels" and
            "trained model" columns, rows 0 and 16).

    Returns:
        The verdict; on success it prints the sweep beside the raw pixels and the
        model.
    """
    guess = str(prediction).strip().lower()
    if guess not in PREDICTIONS:
        return _verdict(
            [
                f"`prediction` is {prediction!r}; write 'pixels' or 'model' "
                "before you measure."
            ],
            "",
        )
    problems = _inputs_problems(moved, images)
    if problems:
        return _verdict(problems, "")
    mine = _as_sweep(sweep)
    if isinstance(mine, str):
        return _verdict([mine], "")
    labels = torch.as_tensor(labels)
    rows = {}
    for width in WIDTHS:
        queries = _blurred(blur, moved, "moved", width)
        gallery = _blurred(blur, images, "images", width)
        for out in (queries, gallery):
            if isinstance(out, str):
                return _verdict([out], "")
        rows[width] = {
            "moved": _cmc1(queries, gallery, labels),
            "unmoved": _cmc1(gallery, gallery, labels),
        }
    truth = pd.DataFrame(rows).T
    raw = float(moved_table.loc[SHIFT, "raw pixels"])
    problem = _sweep_problem(mine, truth, raw)
    if problem:
        return _verdict([problem], "")
    model = float(moved_table.loc[SHIFT, "trained model"])
    model_unmoved = float(moved_table.loc[0, "trained model"])
    best = int(truth["moved"].idxmax())
    top = round(float(truth.loc[best, "moved"]), 3)
    winner = "pixels" if top > model else "model"
    outcome = "as you predicted" if guess == winner else f"you predicted {guess}"
    lead = "beat" if winner == "pixels" else "stay below"
    return _verdict(
        [],
        f"your best width for queries moved by {SHIFT} pixels, {best}, gives "
        f"them CMC@1 {top:.3f}, and the unmoved queries "
        f"{truth.loc[best, 'unmoved']:.3f}. The raw pixels score {raw:.3f} "
        f"moved, the model {model:.3f} moved and {model_unmoved:.3f} unmoved: "
        f"the coarsened pixels {lead} the model ({outcome}).\n"
        f"{truth.round(3).rename_axis('width').to_string()}",
    )
