"""Tests for exercise 02.3's checker: a sweep of coarsened pixels against the model."""

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from oml_helpers import make_datasets
from oml_helpers import exercises as ex
from verdicts import says


def _move_each(images, length, seed=0):
    """The chapter's move: each image by ``length`` pixels in a random direction."""
    generator = torch.Generator().manual_seed(seed)
    angles = 2 * math.pi * torch.rand(len(images), generator=generator)
    padded = F.pad(images, (length,) * 4, value=-1.0)
    moved = []
    for image, angle in zip(padded, angles.tolist()):
        y = length - round(length * math.sin(angle))
        x = length - round(length * math.cos(angle))
        moved.append(image[:, y : y + 64, x : x + 64])
    return torch.stack(moved)


def _cmc1(queries, gallery, labels):
    distances = torch.cdist(queries, gallery)
    distances.fill_diagonal_(float("inf"))
    return float((labels[distances.argmin(1)] == labels).float().mean())


def _blur(images, width):
    return F.avg_pool2d(images, width).flatten(1)


def _sweep(blur, moved, images, labels):
    rows = {
        w: {
            "moved": _cmc1(blur(moved, w), blur(images, w), labels),
            "unmoved": _cmc1(blur(images, w), blur(images, w), labels),
        }
        for w in ex.validation_shifts.WIDTHS
    }
    return pd.DataFrame(rows).T


@pytest.fixture
def setup(small_df, digits_root):
    """50 validation images (10 per digit 5-9), moved by 16 pixels, their digits,
    a table like the chapter's and the right answer."""
    _, val = make_datasets(small_df, digits_root)
    images = torch.stack([val[i]["input_tensors"] for i in range(len(val))])
    labels = torch.as_tensor(val.get_labels())
    moved = _move_each(images, 16)
    table = pd.DataFrame(
        {"raw pixels": [0.9, 0.5, 0.2], "trained model": [0.8, 0.6, 0.3]}, index=[0, 10, 16]
    )
    return images, labels, moved, table, _sweep(_blur, moved, images, labels)


def test_right_answers(setup):
    images, labels, moved, table, right = setup
    best = int(right["moved"].idxmax())
    for guess in ("pixels", " Model "):
        result = ex.check_coarse_pixels(guess, _blur, right, moved, images, labels, table)
        says(result, ex.RIGHT, f"pixels, {best}, gives", "0.200 moved", "0.300 moved", "0.800")
        assert repr(result).splitlines()[0].startswith("Correct")
    as_dict = {w: (r["moved"], r["unmoved"]) for w, r in right.iterrows()}
    text = ex.check_coarse_pixels(
        "model", _blur, as_dict, moved, images, labels.numpy(), table
    ).message
    winner = "pixels" if round(right["moved"].max(), 3) > 0.3 else "model"
    assert ("as you predicted" in text) == (winner == "model")
    # a dict of dicts is read by its keys, whatever their order
    by_name = {w: {"unmoved": r["unmoved"], "moved": r["moved"]} for w, r in right.iterrows()}
    result = ex.check_coarse_pixels("model", _blur, by_name, moved, images, labels, table)
    assert repr(result).splitlines()[0].startswith("Correct"), result.message


def test_any_blur_is_accepted(setup):
    images, labels, moved, table, _ = setup

    def box(x, width):
        return F.avg_pool2d(x, width + 1, stride=4, padding=width // 2).flatten(1)

    right = _sweep(box, moved, images, labels)
    says(ex.check_coarse_pixels("model", box, right, moved, images, labels, table), ex.RIGHT)


def test_wrong_numbers(setup):
    images, labels, moved, table, right = setup
    check = ex.check_coarse_pixels
    swapped = right.rename(columns={"moved": "unmoved", "unmoved": "moved"})
    says(check("model", _blur, swapped, moved, images, labels, table), ex.WRONG, "swapped")
    raw = right.copy()
    raw["moved"] = 0.2
    if (abs(right["moved"] - 0.2) > 0.01).any():
        says(check("model", _blur, raw, moved, images, labels, table), ex.WRONG, "raw pixels")
    off = right + 0.1
    says(check("model", _blur, off, moved, images, labels, table), ex.WRONG, "cmc1_moved_queries")
    says(
        check("model", _blur, right.drop(index=32), moved, images, labels, table),
        ex.WRONG,
        "[32]",
    )
    says(check("model", _blur, right[["moved"]], moved, images, labels, table), ex.WRONG, "columns")
    says(check("model", _blur, 0.3, moved, images, labels, table), ex.WRONG, "DataFrame")


def test_bad_input(setup):
    images, labels, moved, table, right = setup
    check = ex.check_coarse_pixels
    says(check("both", _blur, right, moved, images, labels, table), ex.WRONG, "'pixels'")
    says(check("model", _blur, right, images, images, labels, table), ex.WRONG, "unmoved")
    says(check("model", _blur, right, moved[:10], images, labels, table), ex.WRONG, "shape")
    says(check("model", lambda x, w: 1.0, right, moved, images, labels, table), ex.WRONG, "tensor")
    says(check("model", lambda x, w: x[:3], right, moved, images, labels, table), ex.WRONG, "rows")
    nan = lambda x, w: x / 0 * 0  # noqa: E731
    says(check("model", nan, right, moved, images, labels, table), ex.WRONG, "NaN")

    def broken(x, w):
        raise ValueError("oops")

    says(check("model", broken, right, moved, images, labels, table), ex.WRONG, "raised")
    says(check(..., _blur, right, moved, images, labels, table), ex.WRONG, "`prediction` is still")

    def unfinished(x, w): ...

    says(check("model", unfinished, right, moved, images, labels, table), ex.WRONG, "None")
