"""Checks that keep the book's prose true on every machine.

Training on a CPU gives different last digits from one kind of CPU to the next
(their vector instructions add numbers up in different orders), so a chapter cannot
promise "CMC@1 = 0.887". It says "about 0.89" instead, and right after the number is
printed, a check fails the notebook if the value ever leaves the range that the text
states. The book's tests run every notebook, so a change that moves a number out of
its range is caught.
"""

import math
import numbers


class OutsideStatedRangeError(AssertionError):
    """A number the text describes fell outside the range the text states for it."""


def expect_between(what: str, value: float, low: float, high: float) -> None:
    """Fail when ``value`` leaves ``[low, high]``, the range the chapter's text
    states for it.

    Silent when the value is in range, so it can follow any print.

    Args:
        what: What the number is, as the text calls it (e.g. ``"trained CMC@1"``).
        value: The number computed in the notebook.
        low: Smallest value the text allows.
        high: Largest value the text allows.

    Raises:
        ValueError: ``low > high``, or a bound or the value is not a finite number.
        OutsideStatedRangeError: The value is outside the range; the message says
            where the text and the run disagree.
    """
    for name, number in (("value", value), ("low", low), ("high", high)):
        if (
            isinstance(number, bool)
            or not isinstance(number, numbers.Real)
            or not math.isfinite(number)
        ):
            raise ValueError(
                f"{what}: {name} must be a finite number, got {number!r}."
            )
    if low > high:
        raise ValueError(
            f"{what}: the range is empty (low {low} > high {high}); "
            "swap the bounds."
        )
    if not low <= value <= high:
        raise OutsideStatedRangeError(
            f"{what} is {value:.4g}, outside the range the text states "
            f"({low:g} to {high:g}). If the code changed on purpose, rerun the "
            "chapter and update its text and this range; otherwise something broke."
        )
