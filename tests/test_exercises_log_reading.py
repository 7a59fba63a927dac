"""The checker of exercise 03.2 (reading a CSV log with two steps per epoch) accepts
the right answers and turns down typical wrong ones with a reason.

The log is written by hand in the shape Lightning's CSVLogger gives it (a row per
step, a row per validation, a row per epoch end), so no training runs here.
"""

import pandas as pd
import pytest

from oml_helpers import exercises as ex
from verdicts import says as _says

# best at epoch 1 (logged at step 3), last epoch 2; two steps per epoch
MAP5 = [0.60, 0.80, 0.70]
LOSSES = [(0.4, 0.2), (0.3, 0.1), (0.25, 0.15)]


@pytest.fixture
def log_dir(tmp_path):
    rows = []
    for epoch, (value, losses) in enumerate(zip(MAP5, LOSSES)):
        for i, loss in enumerate(losses):
            step = 2 * epoch + i
            rows.append({"epoch": epoch, "step": step, "triplet_loss_step": loss})
        last = 2 * epoch + 1
        rows.append({"epoch": epoch, "step": last, "OVERALL/map/5": value})
        mean = sum(losses) / 2
        rows.append({"epoch": epoch, "step": last, "triplet_loss_epoch": mean})
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.csv", index=False)
    return tmp_path


MEANS = pd.Series({0: 0.3, 1: 0.2, 2: 0.2})


def test_right_answers(log_dir):
    _says(ex.check_log_diagnosis(MEANS, 1, 3, log_dir), ex.RIGHT, "3 epochs")
    # a dict works too, and so does Lightning's own epoch mean
    as_dict = {0: 0.3, 1: 0.2, 2: 0.2}
    _says(ex.check_log_diagnosis(as_dict, 1, 3, log_dir), ex.RIGHT)


def test_wrong_losses(log_dir):
    raw = pd.read_csv(log_dir / "metrics.csv")
    per_step = raw["triplet_loss_step"].dropna()
    last = pd.Series({0: 0.2, 1: 0.1, 2: 0.15})
    with_nan = pd.Series({0: 0.3, 1: float("nan"), 2: 0.2})
    shifted = pd.Series({1: 0.3, 2: 0.2, 3: 0.2})
    cases = [
        (per_step, "one per step row"),
        (raw["triplet_loss_step"], "one value per row"),
        (last, "last step"),
        (with_nan, "NaN"),
        (shifted, "indexed by the epochs [0, 1, 2]"),
        (pd.Series({0: 0.5, 1: 0.2, 2: 0.2}), "differs from the mean"),
        ([0.3, 0.2, 0.2], "pandas Series"),
    ]
    for answer, reason in cases:
        _says(ex.check_log_diagnosis(answer, 1, 3, log_dir), ex.WRONG, reason)


def test_wrong_epochs_and_steps(log_dir):
    cases = [
        (2, 3, "last validated epoch"),
        (3, 3, "step of that row"),
        (0, 3, "not the one with the highest"),
        (1.0, 3, "whole number"),
        (1, 1, "is the epoch"),
        (1, 4, "one too many"),
        (1, 6, "row label"),  # the best value sits on row 6
        (1, 5, "not where the highest"),
        (1, "3", "whole number"),
    ]
    for epoch, step, reason in cases:
        _says(ex.check_log_diagnosis(MEANS, epoch, step, log_dir), ex.WRONG, reason)


def test_untouched_stub_is_not_yet(log_dir):
    _says(ex.check_log_diagnosis(..., 1, 3, log_dir), ex.WRONG, "still `...`")


def test_bad_log_dir(tmp_path, log_dir):
    with pytest.raises(ValueError, match="No metrics.csv"):
        ex.check_log_diagnosis(MEANS, 1, 3, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="has no column"):
        ex.check_log_diagnosis(MEANS, 1, 3, log_dir, metric="OVERALL/cmc/1")
