"""The assertions the exercise-checker tests share."""

import re

from oml_helpers.exercises import RIGHT, Verdict


def says(result: Verdict, verdict: str, *fragments: str) -> None:
    """Assert that a checker's verdict is ``verdict`` (RIGHT or WRONG) and its text holds each
    fragment."""
    out = result.message  # the text as written; the notebook shows it wrapped (repr)
    assert bool(result) == (verdict == RIGHT), out
    assert out.startswith(verdict), out
    for fragment in fragments:
        assert fragment in out, out


def in_sentences(result: Verdict) -> None:
    """Assert that a verdict reads as sentences: it ends with a full stop, and every sentence
    after the first starts with a capital letter."""
    text = result.message
    assert text.endswith("."), text
    for start in re.findall(r"\. (\S)", text):
        assert start.isupper(), text
