"""Read a submitted notebook and find which chapter of the book it is.

A chapter's exercises are the ``check_*`` calls of its ``solution`` cells; a
submission is matched by the checkers it calls, else by its title.
``oml_helpers.grading`` runs the submissions and tabulates the verdicts.
"""

import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import nbformat

BOOK_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass(frozen=True)
class Chapter:
    """A chapter as the grader knows it: ``number`` "01", its title, and each
    exercise's checker."""

    number: str
    title: str
    checkers: Tuple[str, ...]


def checker_calls(source: str) -> List[str]:
    """The ``check_*`` functions a cell calls, in order; calls in comments or
    strings do not count.

    Args:
        source: a code cell's source.

    Returns:
        The names, e.g. ``["check_balance_batches"]``.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        # unfinished code: fall back on the text
        code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
        return re.findall(r"\b(check_\w+)\s*\(", code)
    return [
        a.string
        for a, b in zip(tokens, tokens[1:])
        if a.type == tokenize.NAME
        and a.string.startswith("check_")
        and b.string == "("
    ]


def _title(nb: nbformat.NotebookNode) -> str:
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "markdown" and text.startswith("# "):
            return text[2:].splitlines()[0].strip()
    return ""


def chapters(notebooks: Path = BOOK_NOTEBOOKS) -> Dict[str, Chapter]:
    """The book's chapters and the checker of each exercise, read from the chapter
    notebooks.

    Args:
        notebooks: the folder of the book's notebooks, ``NN_name.ipynb``.

    Returns:
        ``{number: Chapter}``, e.g. ``"01"`` with the checkers
        ``("check_balance_batches", ...)``.
    """
    found = {}
    for path in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        solutions = [
            c for c in nb.cells if "solution" in c.metadata.get("tags", [])
        ]
        checkers = tuple(
            checker_calls(c.source)[-1]
            for c in solutions
            if checker_calls(c.source)
        )
        found[path.name[:2]] = Chapter(path.name[:2], _title(nb), checkers)
    if not found:
        raise FileNotFoundError(
            f"no chapter notebooks (NN_name.ipynb) in {notebooks}"
        )
    return found


def identify(
    nb: nbformat.NotebookNode, known: Dict[str, Chapter]
) -> Optional[Chapter]:
    """A notebook's chapter: the one whose checkers it calls most, else the one its
    title names.

    Args:
        nb: a submitted notebook.
        known: the chapters, from ``chapters()``.

    Returns:
        The chapter, or None when neither its checker calls nor its title point at
        one.
    """
    called = {
        name
        for c in nb.cells
        if c.cell_type == "code"
        for name in checker_calls(c.source)
    }
    overlap = {
        number: len(called & set(chapter.checkers))
        for number, chapter in known.items()
    }
    best = max(overlap.values())
    candidates = (
        [number for number, n in overlap.items() if n == best]
        if best
        else list(known)
    )
    title = re.match(r"(\d{2})\b", _title(nb))
    if title and title.group(1) in candidates:
        return known[title.group(1)]
    return known[candidates[0]] if best and len(candidates) == 1 else None


def _is_cell(cell: object) -> bool:
    kinds = ("code", "markdown", "raw")
    if not isinstance(cell, dict) or cell.get("cell_type") not in kinds:
        return False
    return isinstance(cell.get("source"), str)


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a submitted file as a notebook.

    Args:
        path: the file.

    Returns:
        The notebook.

    Raises:
        ValueError: the file is not a readable Jupyter notebook; the message says
            what to hand in.
    """
    fix = "hand in the .ipynb file (in Colab: File > Download > Download .ipynb)"
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        if not isinstance(nb.cells, list) or not all(_is_cell(c) for c in nb.cells):
            raise ValueError("its cells are not a list of cells")
        for cell in nb.cells:
            cell.setdefault("metadata", nbformat.NotebookNode())
    except (
        Exception
    ) as e:  # not text, not JSON, JSON but no notebook: all the same to the teacher
        raise ValueError(
            f"not a Jupyter notebook ({type(e).__name__}: {e}); {fix}"
        ) from None
    return nb
