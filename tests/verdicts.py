"""The one assertion the exercise-checker tests share."""

from oml_helpers.exercises import RIGHT, Verdict


def says(result: Verdict, verdict: str, *fragments: str) -> None:
    """Assert that a checker's verdict is ``verdict`` (RIGHT or WRONG) and its text holds each
    fragment."""
    out = result.message  # the text as written; the notebook shows it wrapped (repr)
    assert bool(result) == (verdict == RIGHT), out
    assert out.startswith(verdict), out
    for fragment in fragments:
        assert fragment in out, out
