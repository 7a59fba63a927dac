"""Tests for exercise 02.3's checker: blurred pixels against the model on moved queries."""

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


def _blur(images):
    return F.avg_pool2d(images, 8).flatten(1)


@pytest.fixture
def setup(small_df, digits_root):
    """50 validation images (10 per digit 5-9), moved by 16 pixels, their digits,
    a table like the chapter's and the right answer."""
    _, val = make_datasets(small_df, digits_root)
    images = torch.stack([val[i]["input_tensors"] for i in range(len(val))])
    labels = torch.as_tensor(val.get_labels())
    moved = _move_each(images, 16)
    table = pd.DataFrame({"raw pixels": [0.5, 0.2], "trained model": [0.6, 0.3]}, index=[10, 16])
    right = _cmc1(_blur(moved), _blur(images), labels)
    return images, labels, moved, table, right


def test_right_answers(setup):
    images, labels, moved, table, right = setup
    for guess in ("blurred", " Model "):
        result = ex.check_blurred_baseline(guess, _blur, right, moved, images, labels, table)
        says(result, ex.RIGHT, f"score CMC@1 {right:.3f}", "0.200 for the raw", "0.300")
        assert repr(result).splitlines()[0].startswith("Correct")
    text = ex.check_blurred_baseline(
        "model", _blur, right, moved, images, labels.numpy(), table
    ).message
    winner = "blurred" if round(right, 3) > 0.3 else "model"
    assert ("as you predicted" in text) == (winner == "model")


def test_any_blur_is_accepted(setup):
    images, labels, moved, table, _ = setup

    def coarse(x):
        return F.avg_pool2d(x, 16).flatten(1)

    right = _cmc1(coarse(moved), coarse(images), labels)
    result = ex.check_blurred_baseline("model", coarse, right, moved, images, labels, table)
    says(result, ex.RIGHT)


def test_wrong_numbers(setup):
    images, labels, moved, table, right = setup
    check = ex.check_blurred_baseline
    unmoved = _cmc1(_blur(images), _blur(images), labels)
    raw = _cmc1(moved.flatten(1), images.flatten(1), labels)
    if abs(unmoved - right) > 0.01:
        says(check("model", _blur, unmoved, moved, images, labels, table), ex.WRONG, "unmoved")
    if abs(raw - right) > 0.01:
        says(check("model", _blur, raw, moved, images, labels, table), ex.WRONG, "raw pixels")
    if min(abs(right + 0.1 - v) for v in (right, unmoved, raw)) > 0.01:
        result = check("model", _blur, right + 0.1, moved, images, labels, table)
        says(result, ex.WRONG, "cmc1_moved_queries")
    says(check("model", _blur, "high", moved, images, labels, table), ex.WRONG, "a number")


def test_bad_input(setup):
    images, labels, moved, table, right = setup
    check = ex.check_blurred_baseline
    says(check("both", _blur, right, moved, images, labels, table), ex.WRONG, "'blurred'")
    says(check("model", _blur, right, images, images, labels, table), ex.WRONG, "unmoved")
    says(check("model", _blur, right, moved[:10], images, labels, table), ex.WRONG, "shape")
    says(check("model", lambda x: 1.0, right, moved, images, labels, table), ex.WRONG, "tensor")
    says(check("model", lambda x: x[:3], right, moved, images, labels, table), ex.WRONG, "rows")
    says(check("model", lambda x: x / 0 * 0, right, moved, images, labels, table), ex.WRONG, "NaN")

    def broken(x):
        raise ValueError("oops")

    says(check("model", broken, right, moved, images, labels, table), ex.WRONG, "raised")
    says(check(..., _blur, right, moved, images, labels, table), ex.WRONG, "`prediction` is still")

    def unfinished(x): ...

    says(check("model", unfinished, right, moved, images, labels, table), ex.WRONG, "None")
