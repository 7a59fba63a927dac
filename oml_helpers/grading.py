"""Grade a class: run each submitted notebook in a fresh kernel, tabulate the
exercises' verdicts.

The exercises a chapter expects come from the book's own notebooks: the checker that
each ``solution`` cell calls. A submission is matched to its chapter by its content
(the checkers it calls, else its title), run in its own kernel and empty working
folder under a time limit, and each exercise gets a status from what its checker
printed. Nothing a submission does stops the grading: every problem becomes a row.
``scripts/grade.py`` is the command; it writes the rows as CSV. Reading a
submission and finding its chapter is ``oml_helpers.submissions``.
"""

import csv
import math
import re
import tempfile
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from oml_helpers.exercises.verdict import RIGHT, WRONG
from oml_helpers.submissions import (
    Chapter,
    checker_calls,
    identify,
    read_submission,
)

PASSED, NOT_YET, ERROR, TIME_OUT, MISSING = (
    "passed",
    "not yet",
    "error",
    "time-out",
    "missing",
)
STATUSES = (PASSED, NOT_YET, ERROR, TIME_OUT, MISSING)
COLUMNS = ("student", "chapter", "exercise", "checker", "status", "detail")
SKIP_MARK = "NBVAL_SKIP"  # online cells, skipped as in the book's tests
DETAIL_LENGTH = 300
VERDICT_STARTS = (f"{RIGHT}:", f"{WRONG}:")  # how a checker's verdict begins


@dataclass(frozen=True)
class Row:
    """One line of the table: one student's result on one exercise (``exercise``
    counts from 1)."""

    student: str
    chapter: str
    exercise: str
    checker: str
    status: str
    detail: str


@dataclass
class _Run:
    """What running a notebook did: the cells that finished, and where and why it
    stopped early."""

    finished: Set[int] = field(default_factory=set)
    stopped: Optional[Tuple[int, str, str]] = (
        None  # (cell index or -1, status, why)
    )


def _short(text: str) -> str:
    # one line, no colour codes
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(text).split()))
    return text if len(text) <= DETAIL_LENGTH else text[: DETAIL_LENGTH - 3] + "..."


def run_notebook(nb: nbformat.NotebookNode, workdir: Path, timeout: float) -> _Run:
    """Run ``nb`` in place in a fresh kernel in ``workdir``; stop when ``timeout``
    seconds are up.

    Every cell runs even after one raises; cells marked ``NBVAL_SKIP`` (online) are
    skipped.

    Args:
        nb: the notebook; its outputs are replaced by the new run's.
        workdir: the kernel's working folder.
        timeout: seconds for the whole notebook, counted from the kernel's start.

    Returns:
        Which cells finished, and where and why the run stopped if it did not reach
        the end.
    """
    # -1: before any cell
    run, current, deadline = _Run(), [-1], [time.monotonic() + timeout]
    for cell in nb.cells:
        if cell.cell_type == "code":
            # never read a verdict from an old run
            cell.outputs, cell.execution_count = [], None
            if SKIP_MARK in cell.source:
                cell.metadata["tags"] = [
                    *cell.metadata.get("tags", []),
                    "skip-execution",
                ]
    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        shutdown_kernel="immediate",
        timeout_func=lambda cell: max(1, math.ceil(deadline[0] - time.monotonic())),
        resources={"metadata": {"path": str(workdir)}},
        on_notebook_start=lambda notebook: deadline.__setitem__(
            0, time.monotonic() + timeout
        ),
        on_cell_start=lambda cell, cell_index: current.__setitem__(0, cell_index),
        on_cell_executed=lambda cell, cell_index, execute_reply: run.finished.add(
            cell_index
        ),
    )
    try:
        client.execute()
    except CellTimeoutError:
        run.stopped = (
            current[0],
            TIME_OUT,
            f"the notebook's {timeout:g} s were up",
        )
    except DeadKernelError:
        run.stopped = (
            current[0],
            ERROR,
            "the kernel died (out of memory, or the code quit)",
        )
    except (
        Exception
    ) as e:  # a kernel that does not start, or anything else: a row, not a crash
        run.stopped = (
            current[0],
            ERROR,
            f"the run failed: {type(e).__name__}: {e}",
        )
    return run


def _verdict(cell: nbformat.NotebookNode) -> Tuple[str, str]:
    """Status and detail from an exercise cell's outputs: an error, else the last
    verdict shown."""
    shown = None
    for output in cell.outputs:
        if output.output_type == "error":
            return ERROR, f"{output.ename}: {output.evalue}"
        if output.output_type == "stream":
            text = output.get("text", "")
        else:
            text = output.get("data", {}).get("text/plain", "")
        # each verdict with its wrapped continuation lines, joined
        verdicts: List[str] = []
        for line in text.splitlines():
            if line.startswith(VERDICT_STARTS):
                verdicts.append(line.strip())
            elif verdicts and line.strip():
                verdicts[-1] += " " + line.strip()
        shown = verdicts[-1] if verdicts else shown
    if shown is None:
        return (
            NOT_YET,
            "the cell shows no verdict: end it with its "
            "h.exercises.check_...(...) call",
        )
    return (PASSED if shown.startswith(RIGHT) else NOT_YET), shown


def _exercise(
    nb: nbformat.NotebookNode, run: _Run, checker: str
) -> Tuple[str, str]:
    cells = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and checker in checker_calls(c.source)
    ]
    if not cells:
        return (
            MISSING,
            f"no cell calls {checker}(...): put back the exercise's cell",
        )
    i = cells[-1]  # the student's last word
    if i in run.finished:
        return _verdict(nb.cells[i])
    if run.stopped and i == run.stopped[0]:
        return run.stopped[
            1
        ], f"{run.stopped[2]} while this exercise's cell (cell {i + 1}) ran"
    if run.stopped and i > run.stopped[0]:
        where = (
            f"in cell {run.stopped[0] + 1}"
            if run.stopped[0] >= 0
            else "as the kernel started"
        )
        return run.stopped[1], f"{run.stopped[2]} {where}, before this one"
    return NOT_YET, f"the exercise's cell (cell {i + 1}) did not run"


def grade_file(
    path: Path,
    known: Dict[str, Chapter],
    timeout: float,
    expected: Optional[Chapter] = None,
) -> List[Row]:
    """Grade one submission: a row per exercise of its chapter (one row if the
    chapter is unknown).

    Args:
        path: the submitted file; its stem is the student's name.
        known: the chapters, from ``chapters()``.
        timeout: seconds the notebook may run.
        expected: the chapter the teacher asked for; a notebook of another chapter
            is an error.

    Returns:
        The rows; problems with the file are rows with the status "error", never
        exceptions.
    """

    def failed(detail: str, chapter: Optional[Chapter] = expected) -> List[Row]:
        if chapter is None:
            return [Row(path.stem, "", "", "", ERROR, _short(detail))]
        return [
            Row(path.stem, chapter.number, str(n), name, ERROR, _short(detail))
            for n, name in enumerate(chapter.checkers, 1)
        ]

    try:
        nb = read_submission(path)
    except ValueError as e:
        return failed(str(e))
    chapter = expected
    try:
        chapter = identify(nb, known)
        if expected and chapter and chapter != expected:
            return failed(
                f"this notebook is chapter {chapter.title!r}, "
                f"not {expected.title!r}: "
                f"hand in the chapter {expected.number} notebook"
            )
        chapter = chapter or expected
        if chapter is None:
            return failed(
                "cannot tell which chapter this notebook is from: it calls no "
                "exercise checker and its title is no chapter's; "
                "name it with --chapter NN"
            )
        with tempfile.TemporaryDirectory(
            prefix="oml-grade-", ignore_cleanup_errors=True
        ) as work:
            run = run_notebook(nb, Path(work), timeout)
        return [
            Row(
                path.stem,
                chapter.number,
                str(n),
                name,
                *map(_short, _exercise(nb, run, name)),
            )
            for n, name in enumerate(chapter.checkers, 1)
        ]
    except (
        Exception
    ) as e:  # a bug of the grader's own must not lose the other students' grades
        return failed(
            f"the grader failed on this file: {type(e).__name__}: {e}", chapter
        )


def grade_folder(
    folder: Path,
    known: Dict[str, Chapter],
    timeout: float,
    expected: Optional[Chapter] = None,
    skip: Sequence[Path] = (),
    report: Callable[[Path, List[Row], float], None] = lambda *args: None,
) -> List[Row]:
    """Grade every file in ``folder`` (hidden files and ``skip`` aside), in name
    order.

    Args:
        folder: the submissions, one file per student.
        known: the chapters, from ``chapters()``.
        timeout: seconds each notebook may run.
        expected: the chapter every submission should be, if the teacher says so.
        skip: files to leave out, e.g. the CSV being written.
        report: called after each file with its path, its rows and the seconds it
            took.

    Returns:
        All rows, file by file.
    """
    skipped = {Path(p).resolve() for p in skip}
    rows: List[Row] = []
    for path in sorted(Path(folder).iterdir()):
        if (
            path.is_file()
            and not path.name.startswith(".")
            and path.resolve() not in skipped
        ):
            start = time.monotonic()
            rows += (graded := grade_file(path, known, timeout, expected))
            report(path, graded, time.monotonic() - start)
    return rows


def write_csv(rows: Sequence[Row], out: Path) -> None:
    """Write the rows, with a header of ``COLUMNS``, to the CSV file ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(row) for row in rows)
