"""Exercise 04.2's checker: the unpaired bootstrap interval against the paired one."""

import numpy as np
import pytest

from oml_helpers import exercises as ex
from oml_helpers.exercises.checkpointing_bootstrap import reference_intervals
from verdicts import in_sentences, says


def _scores(shift=0.0, seed=0, n=900):
    """Two models' per-query scores that share each query's difficulty, as real ones do."""
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0.0, 1.0, n)
    a = np.clip(difficulty + rng.normal(0, 0.05, n) + shift, 0, 1)
    b = np.clip(difficulty + rng.normal(0, 0.05, n), 0, 1)
    return a, b


def _unpaired(a, b, seed=1, resamples=2000):
    """A student's answer: each model's queries resampled on their own."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(a), size=(resamples, len(a)))
    j = rng.integers(0, len(a), size=(resamples, len(a)))
    return tuple(np.percentile(a[i].mean(axis=1) - b[j].mean(axis=1), [2.5, 97.5]))


def _paired(a, b, seed=1, resamples=2000):
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(a), size=(resamples, len(a)))
    return tuple(np.percentile((a - b)[i].mean(axis=1), [2.5, 97.5]))


def test_the_unpaired_interval_with_the_right_prediction_is_correct():
    a, b = _scores(shift=0.02)
    for seed in (1, 2, 3):  # any seed of the student's
        says(ex.check_unpaired_interval("wider", _unpaired(a, b, seed), a, b), ex.RIGHT, "wider")


def test_the_reference_intervals_are_what_they_claim():
    a, b = _scores(shift=0.02)
    paired, unpaired = reference_intervals(a, b)
    assert paired[0] < 0.02 < paired[1] and unpaired[0] < 0.02 < unpaired[1]
    assert np.ptp(unpaired) > 3 * np.ptp(paired), "shared difficulty: pairing narrows it"


def test_wrong_answers_are_caught():
    a, b = _scores(shift=0.02)
    right = _unpaired(a, b)
    says(ex.check_unpaired_interval("narrower", right, a, b), ex.WRONG, "not narrower")
    says(ex.check_unpaired_interval("wider", _paired(a, b), a, b), ex.WRONG, "paired interval")
    says(ex.check_unpaired_interval("wider", _unpaired(b, a), a, b), ex.WRONG, "second model minus")
    says(ex.check_unpaired_interval("wider", right[::-1], a, b), ex.WRONG, "low end above")
    says(ex.check_unpaired_interval("wider", (0.0, 0.001), a, b), ex.WRONG, "not the unpaired")
    # half as many queries: an interval too wide by about 1.4
    says(ex.check_unpaired_interval("wider", _unpaired(a[::2], b[::2]), a, b), ex.WRONG)


def test_independent_models_make_the_paired_interval_no_narrower():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 900), rng.uniform(0, 1, 900)
    paired, unpaired = reference_intervals(a, b)
    assert abs(np.ptp(paired) / np.ptp(unpaired) - 1) < 0.1


def test_bad_input():
    a, b = _scores()
    says(ex.check_unpaired_interval("bigger", _unpaired(a, b), a, b), ex.WRONG, "'wider' or")
    says(ex.check_unpaired_interval("wider", "abc", a, b), ex.WRONG, "two numbers")
    says(ex.check_unpaired_interval("wider", 0.5, a, b), ex.WRONG, "two numbers")
    says(ex.check_unpaired_interval(..., _unpaired(a, b), a, b), ex.WRONG, "still `...`")
    with pytest.raises(ValueError, match="same queries"):
        ex.check_unpaired_interval("wider", (0, 1), a, b[:-1])
    with pytest.raises(ValueError, match="1-D array"):
        ex.check_unpaired_interval("wider", (0, 1), a.reshape(30, 30), b)
    with pytest.raises(ValueError, match="finite"):
        ex.check_unpaired_interval("wider", (0, 1), np.full(5, np.nan), np.zeros(5))


def test_every_verdict_reads_as_sentences():
    a, b = _scores(shift=0.02)
    right = _unpaired(a, b)
    for prediction, interval in (
        ("wider", right),
        ("narrower", right),
        ("wider", _paired(a, b)),
        ("wider", _unpaired(b, a)),
        ("wider", right[::-1]),
        ("wider", (0.0, 0.001)),
        ("wider", "abc"),
        ("bigger", right),
    ):
        in_sentences(ex.check_unpaired_interval(prediction, interval, a, b))
