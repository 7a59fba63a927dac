"""Tests for exercise 02.3's checker: raw pixels against the model on shifted images."""

import pytest
import torch
import torch.nn.functional as F

from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers import SmallCNN, make_datasets, seed_everything
from oml_helpers import exercises as ex
from verdicts import says


def _shift(images, max_px=6, seed=0):
    """Each image moved by a random whole number of pixels, the border filled with -1."""
    g = torch.Generator().manual_seed(seed)
    n, _, height, width = images.shape
    padded = F.pad(images, (max_px,) * 4, value=-1.0)
    moves = torch.randint(0, 2 * max_px + 1, (n, 2), generator=g).tolist()
    return torch.stack(
        [padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(moves)]
    )


def _cmc1(vectors, dataset):
    rr = RetrievalResults.from_embeddings(vectors, dataset, n_items=1)
    metrics = calc_retrieval_metrics_rr(
        rr, cmc_top_k=(1,), precision_top_k=(), map_top_k=(), verbose=False
    )
    return float(metrics["cmc"][1])


@pytest.fixture
def setup(small_df, digits_root):
    """50 validation images (10 per digit 5-9), a random SmallCNN, the shifted images
    and their two CMC@1."""
    _, val = make_datasets(small_df, digits_root)
    seed_everything(0)
    model = SmallCNN().eval()
    clean = torch.stack([val[i]["input_tensors"] for i in range(len(val))])
    shifted = _shift(clean)
    with torch.no_grad():
        right = (_cmc1(shifted.flatten(1), val), _cmc1(model(shifted), val))
        clean_model = _cmc1(model(clean), val)
    return model, val, clean, shifted, right, clean_model


def test_right_answers(setup):
    model, val, _, shifted, (pixels, cnn), _ = setup
    for guess in ("pixels", " Model "):
        result = ex.check_shift_robustness(guess, shifted, pixels, cnn, model, val)
        says(result, ex.RIGHT, "raw pixels' CMC@1 falls from", f"to {pixels:.3f}")
        assert repr(result).splitlines()[0].startswith("Correct")
    # the verdict names who keeps CMC@1 better and whether the guess agreed
    text = ex.check_shift_robustness("pixels", shifted, pixels, cnn, model, val).message
    assert ("as you predicted" in text) != ("you predicted pixels" in text)


def test_wrong_numbers(setup):
    model, val, clean, shifted, (pixels, cnn), clean_model = setup
    check = ex.check_shift_robustness
    says(check("model", shifted, cnn, pixels, model, val), ex.WRONG, "`cmc1_pixels`")
    says(check("model", shifted, pixels, pixels + 0.1, model, val), ex.WRONG, "`cmc1_model`")
    # the clean images' CMC@1 instead of the shifted ones'
    if abs(clean_model - cnn) > 0.01:
        result = check("model", shifted, pixels, clean_model, model, val)
        says(result, ex.WRONG, "clean images")
    says(check("model", shifted, "high", cnn, model, val), ex.WRONG, "should be a number")


def test_bad_input(setup):
    model, val, clean, shifted, (pixels, cnn), _ = setup
    check = ex.check_shift_robustness
    says(check("both", shifted, pixels, cnn, model, val), ex.WRONG, "'pixels' or 'model'")
    says(check("model", clean, pixels, cnn, model, val), ex.WRONG, "differ from the clean")
    says(check("model", shifted[:10], pixels, cnn, model, val), ex.WRONG, "the shape")
    says(check("model", list(shifted), pixels, cnn, model, val), ex.WRONG, "torch.stack")
    nan = shifted.clone()
    nan[0, 0, 0, 0] = float("nan")
    says(check("model", nan, pixels, cnn, model, val), ex.WRONG, "NaN")
    says(check(..., shifted, pixels, cnn, model, val), ex.WRONG, "`prediction` is still")
