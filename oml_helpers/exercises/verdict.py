"""The result type every exercise checker returns, and the wrapper that lets
checkers read stubs."""

import functools
import inspect
import textwrap
import types
from typing import Any, Callable, List

RIGHT, WRONG = "Correct", "Not yet"
# the rendered book's code and output boxes show about this many characters
WIDTH = 84


def wrap_lines(text: str, width: int = WIDTH) -> str:
    """``text`` with each line longer than ``width`` wrapped at spaces; shorter
    lines stay as they are."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
        if len(line) > width
        else line
        for line in text.split("\n")
    )


class Verdict:
    """The outcome of a check: truthy when right; its text says what is right or
    what to fix."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = ok, message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        # as the notebook shows it: no line wider than the page
        return wrap_lines(self.message)


def verdict(problems: List[str], success: str) -> Verdict:
    """A verdict from the problems found (the first one is reported) or, if none,
    the success message."""
    return Verdict(
        not problems,
        f"{WRONG}: {problems[0]}" if problems else f"{RIGHT}: {success}",
    )


class _Unanswered(BaseException):
    """Raised when a student's function returns None on its first call: its body is
    still ``...``.

    A BaseException, so that a checker's ``except Exception`` (which reports what
    the student's code raised) lets it through to ``checker``.
    """


def _answers_something(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, raising ``_Unanswered`` if its first call returns None (later
    calls pass as is)."""
    called = []

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if result is None and not called:
            raise _Unanswered(fn.__name__)
        called.append(True)
        return result

    return guarded


def checker(check: Callable[..., Verdict]) -> Callable[..., Verdict]:
    """Make a checker answer "Not yet" to an exercise's untouched starting code
    instead of crashing.

    The student edition's stubs pass ``...`` for an answer not given yet, or a
    function whose body is still ``...`` (it returns None). Either gets a "Not yet"
    verdict that says what to fill in.

    Args:
        check: the checker; its arguments that are plain functions (``def`` or
            ``lambda``) are the student's answers.

    Returns:
        The checker, wrapped; with real answers it behaves exactly as ``check``.
    """
    signature = inspect.signature(check)

    @functools.wraps(check)
    def wrapped(*args: Any, **kwargs: Any) -> Verdict:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return check(*args, **kwargs)  # the usual error for wrong arguments
        for name, value in bound.arguments.items():
            if value is Ellipsis:
                return Verdict(
                    False,
                    f"{WRONG}: the answer given as `{name}` is still `...`: "
                    "replace each `...` in this cell with your answer.",
                )
            if isinstance(value, types.FunctionType):
                bound.arguments[name] = _answers_something(value)
        try:
            return check(*bound.args, **bound.kwargs)
        except _Unanswered as e:
            return Verdict(
                False,
                f"{WRONG}: your function `{e}` returned None: write its body in "
                "place of the `...`, and end it with `return` and the result.",
            )

    return wrapped
