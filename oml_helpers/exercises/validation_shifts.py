"""Checker for exercise 02.3 of chapter 02, Validation: predict, then measure,
whether blurred pixels beat the trained model on queries moved by 16 pixels."""

from typing import Callable, List

import pandas as pd
import torch

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict

PREDICTIONS = ("blurred", "model")
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


def _blurred(blur: Callable, images: torch.Tensor, name: str) -> object:
    """``blur(images)`` as one float vector per image, or the reason it is not."""
    try:
        out = blur(images.clone())
    except Exception as e:  # the student's code
        return f"`blur` raised {type(e).__name__}: {e}"
    if not isinstance(out, torch.Tensor):
        return f"`blur({name})` gave a {type(out).__name__}; return a tensor."
    if out.dim() < 1 or len(out) != len(images):
        return (
            f"`blur({name})` has the shape {tuple(out.shape)}: give one vector per "
            f"image, {len(images)} rows."
        )
    out = out.detach().flatten(1).float()
    if not torch.isfinite(out).all():
        return f"`blur({name})` holds NaN or infinite values."
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


@checker
def check_blurred_baseline(
    prediction: str,
    blur: Callable[[torch.Tensor], torch.Tensor],
    cmc1_blurred: float,
    moved: torch.Tensor,
    images: torch.Tensor,
    labels: object,
    moved_table: pd.DataFrame,
) -> Verdict:
    """Exercise 02.3: the CMC@1 of blurred pixels on queries moved by 16 pixels.

    The checker recomputes the number from ``blur``, so any blur is accepted; the
    prediction is compared with the measurement but does not decide the verdict.

    Args:
        prediction: "blurred" or "model": which was predicted to score higher.
        blur: The student's function, images (N x 3 x 64 x 64) to N vectors.
        cmc1_blurred: The answer: CMC@1 of ``blur(moved)`` against ``blur(images)``.
        moved: ``images`` with every image moved by 16 pixels (``move_each``).
        images: The validation images, unmoved, in dataset order.
        labels: Their digits, in the same order.
        moved_table: The chapter's table of CMC@1 by shift ("raw pixels" and
            "trained model" columns, a row for 16).

    Returns:
        The verdict; on success it compares blurred pixels, raw pixels and model.
    """
    guess = str(prediction).strip().lower()
    if guess not in PREDICTIONS:
        return _verdict(
            [
                f"`prediction` is {prediction!r}; write 'blurred' or 'model' "
                "before you measure."
            ],
            "",
        )
    problems = _inputs_problems(moved, images)
    if problems:
        return _verdict(problems, "")
    labels = torch.as_tensor(labels)
    queries, gallery = (
        _blurred(blur, moved, "moved"),
        _blurred(blur, images, "images"),
    )
    for out in (queries, gallery):
        if isinstance(out, str):
            return _verdict([out], "")
    truth = _cmc1(queries, gallery, labels)
    try:
        value = float(cmc1_blurred)
    except (TypeError, ValueError):
        return _verdict(
            [
                "`cmc1_blurred` should be a number, the CMC@1; got "
                f"{cmc1_blurred!r}."
            ],
            "",
        )
    if abs(value - truth) > TOLERANCE:
        problem = f"`cmc1_blurred` = {value:.3f}, but your `blur` gives {truth:.3f}"
        if abs(value - _cmc1(gallery, gallery, labels)) <= TOLERANCE:
            problem += "; yours is the CMC@1 of unmoved queries: blur `moved`."
        elif abs(value - _cmc1(moved, images, labels)) <= TOLERANCE:
            problem += "; yours is the raw pixels' CMC@1: blur both sides first."
        else:
            problem += (
                ": rank with `cmc1_moved_queries(blur(moved), blur(images))`."
            )
        return _verdict([problem], "")
    row = moved_table.loc[SHIFT]
    model, raw = float(row["trained model"]), float(row["raw pixels"])
    truth = round(truth, 3)
    winner = "blurred" if truth > model else "model"
    outcome = "as you predicted" if guess == winner else f"you predicted {guess}"
    verdict_text = (
        "the blurred pixels beat the model"
        if winner == "blurred"
        else "the model keeps its lead"
    )
    return _verdict(
        [],
        f"on queries moved by {SHIFT} pixels your blurred pixels score CMC@1 "
        f"{truth:.3f}, against {raw:.3f} for the raw pixels and {model:.3f} for "
        f"the model. So {verdict_text} ({outcome}).",
    )
