"""expect_between: the check that keeps a chapter's "about 0.89" true on every CPU."""

import math

import pytest

from oml_helpers import OutsideStatedRangeError, expect_between


@pytest.mark.parametrize("value", [0.85, 0.9, 0.92])
def test_in_range_is_silent(value, capsys):
    assert expect_between("trained CMC@1", value, 0.85, 0.92) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", [0.8499, 0.9201, -1.0])
def test_out_of_range_names_the_number_and_the_range(value):
    with pytest.raises(
        OutsideStatedRangeError,
        match=r"trained CMC@1 is .* outside the range the text states \(0.85 to 0.92\)",
    ):
        expect_between("trained CMC@1", value, 0.85, 0.92)


def test_it_is_an_assertion_error():
    # nbval and pytest report it as a failed check, and `except AssertionError` catches it
    assert issubclass(OutsideStatedRangeError, AssertionError)


def test_a_point_range_is_allowed():
    expect_between("files", 2, 2, 2)
    with pytest.raises(OutsideStatedRangeError):
        expect_between("files", 3, 2, 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.9", None, True])
def test_a_value_that_is_not_a_finite_number_is_refused(bad):
    with pytest.raises(ValueError, match="value must be a finite number"):
        expect_between("x", bad, 0, 1)


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="empty"):
        expect_between("x", 0.5, 1, 0)
    with pytest.raises(ValueError, match="high must be a finite number"):
        expect_between("x", 0.5, 0, math.nan)


def test_numpy_and_torch_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    expect_between("numpy", np.float32(0.5), 0, 1)
    expect_between("torch", float(torch.tensor(0.5)), 0, 1)
