"""The result type every exercise checker returns."""

from typing import List

RIGHT, WRONG = "Correct", "Not yet"


class Verdict:
    """The outcome of a check: truthy when right; its text says what is right or what to fix."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = ok, message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.message


def verdict(problems: List[str], success: str) -> Verdict:
    """A verdict from the problems found (the first one is reported) or, if none, the success message."""
    return Verdict(not problems, f"{WRONG}: {problems[0]}" if problems else f"{RIGHT}: {success}")
