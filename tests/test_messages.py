"""Tests of oml_helpers.messages: long lists in error messages."""

import pytest

from oml_helpers.messages import shorten


def test_shorten_cuts_and_counts():
    assert shorten(range(7), n=3) == "0, 1, 2, ... (7 in all)"
    assert shorten(["a", "b"]) == "'a', 'b'"  # repr by default, as str(list) writes items
    assert f"[{shorten(['a', 'b'])}]" == str(["a", "b"])
    assert shorten(["a", "b", "c"], n=2, show=str) == "a, b, ... (3 in all)"
    assert shorten([]) == ""
    assert shorten(iter("xyz"), n=3) == "'x', 'y', 'z'"  # exactly n: no count


def test_shorten_bad_n():
    with pytest.raises(ValueError, match="n must be at least 1"):
        shorten([1, 2], n=0)
