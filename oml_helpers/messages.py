"""Pieces of the helpers' error messages: a long list cut to its first items."""

from typing import Any, Callable, Iterable


def shorten(items: Iterable, n: int = 5, show: Callable[[Any], str] = repr) -> str:
    """The first ``n`` items, comma-separated, and how many there are when more.

    Args:
        items: What to list (consumed once).
        n: Items shown at the most.
        show: How one item is written: ``repr`` (as ``str`` of a list writes it) or
            ``str``.

    Returns:
        E.g. ``"'a', 'b', ... (7 in all)"``, or all of them when there are at most
        ``n``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    items = list(items)
    more = f", ... ({len(items)} in all)" if len(items) > n else ""
    return ", ".join(show(item) for item in items[:n]) + more
