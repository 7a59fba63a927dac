"""The grader turns every kind of submission, broken ones included, into rows of the grades table.

The notebooks here are small and synthetic: they call chapter 01's checkers, which need no
training. One test runs a real student notebook, chapter 00's (the fastest chapter).
"""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from oml_helpers import grading, submissions
from oml_helpers.grading import COLUMNS, ERROR, MISSING, NOT_YET, PASSED, TIME_OUT

ROOT = Path(__file__).resolve().parent.parent
GRADE = ROOT / "scripts" / "grade.py"
BOOK = submissions.chapters()
CH01 = BOOK["01"]
TITLE_01 = "# 01 · Training with a triplet loss"
ALL_01_ERRORS = [("01", checker, ERROR) for checker in CH01.checkers]
SHARE_STUB = (
    "import torch\n\n\ndef active_share(margin):\n    ...\n\n\n"
    "h.exercises.check_half_margin(\n"
    "    active_share, 0.1, torch.eye(4), torch.tensor([0, 0, 1, 1])\n)"
)

# a right answer to exercise 01.1: OML's own sampler follows its rules
OML_SAMPLER_ANSWER = (
    "import numpy as np\nfrom oml.samplers import BalanceSampler\n\n\n"
    "def f(labels, n_labels, n_instances, seed):\n    np.random.seed(seed)\n"
    "    return list(BalanceSampler(labels, n_labels, n_instances))\n\n\n"
    "h.exercises.check_balance_batches(f)"
)


def _notebook(folder: Path, student: str, *cells: str, title: str = TITLE_01) -> Path:
    """A notebook of a title cell and the given code cells, written to ``folder/student.ipynb``."""
    nb = new_notebook(cells=[new_markdown_cell(title), *map(new_code_cell, cells)])
    path = folder / f"{student}.ipynb"
    nbformat.write(nb, path)
    return path


def _by_checker(rows):
    return {row.checker: (row.status, row.detail) for row in rows}


def test_chapters_and_their_exercises_come_from_the_book():
    assert list(BOOK) == [p.name[:2] for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    assert CH01.checkers == (
        "check_balance_batches",
        "check_half_margin",
        "check_collapse_diagnosis",
    )
    assert CH01.title == TITLE_01[2:]
    assert all(2 <= len(chapter.checkers) <= 3 for chapter in BOOK.values())


def test_checker_calls_leave_out_comments_and_strings():
    source = 'x = "check_a(1)"  # check_b(2)\nh.exercises.check_c(x)\ncheck_d (3)\n# check_e()'
    assert submissions.checker_calls(source) == ["check_c", "check_d"]
    assert submissions.checker_calls("check_a(1\n") == ["check_a"]  # unfinished code: read as text


def test_chapter_is_recognised_by_content_not_file_name(tmp_path):
    def chapter_of(cell, title):
        return submissions.identify(
            nbformat.read(_notebook(tmp_path, "x", cell, title=title), 4), BOOK
        )

    assert chapter_of("h.exercises.check_balance_batches(1)", "# My homework") == CH01
    assert chapter_of("print(1)", "# 02 · Validation, my notes") == BOOK["02"]
    assert chapter_of("h.exercises.check_balance_batches(1)", "# 02 · Validation") == CH01
    assert chapter_of("print(1)", "# My homework") is None


def test_passed_not_yet_and_an_error_in_one_run(tmp_path):
    path = _notebook(
        tmp_path,
        "alice",
        "import oml_helpers as h",
        OML_SAMPLER_ANSWER,
        SHARE_STUB,
        "h.exercises.check_collapse_diagnosis(looks_collapsed, logs, hard_logs)",  # never defined
    )
    rows = grading.grade_file(path, BOOK, timeout=120)
    assert [(r.student, r.chapter, r.exercise) for r in rows] == [("alice", "01", n) for n in "123"]
    found = _by_checker(rows)
    status, detail = found["check_balance_batches"]
    assert status == PASSED and "2 batches of 3 x 4 = 12 indices, 24 in an epoch" in detail
    status, detail = found["check_half_margin"]
    assert status == NOT_YET and "`active_share` returned None" in detail
    assert found["check_collapse_diagnosis"] == (
        ERROR,
        "NameError: name 'looks_collapsed' is not defined",
    )


def test_infinite_loop_times_out_and_a_deleted_check_is_missing(tmp_path):
    loop = "while True:\n    pass\ncheck_balance_batches(1)"
    path = _notebook(tmp_path, "bob", loop, "check_collapse_diagnosis(f, g, k)")
    found = _by_checker(grading.grade_file(path, BOOK, timeout=3))
    assert (
        found["check_balance_batches"][0] == TIME_OUT and "3 s" in found["check_balance_batches"][1]
    )
    status, detail = found["check_collapse_diagnosis"]
    assert status == TIME_OUT and "before this one" in detail
    status, detail = found["check_half_margin"]
    assert status == MISSING and "no cell calls" in detail


def test_a_kernel_that_dies_is_an_error(tmp_path):
    path = _notebook(tmp_path, "carol", "import os\nos._exit(1)\ncheck_balance_batches(1)")
    status, detail = _by_checker(grading.grade_file(path, BOOK, timeout=60))[
        "check_balance_batches"
    ]
    assert status == ERROR and "kernel died" in detail


def test_a_kernel_that_does_not_start_is_an_error(tmp_path, monkeypatch):
    class NoKernel(grading.NotebookClient):
        def execute(self, **kwargs):
            raise RuntimeError("No such kernel named python3")

    monkeypatch.setattr(grading, "NotebookClient", NoKernel)
    path = _notebook(tmp_path, "jo", "check_balance_batches(1)")
    status, detail = _by_checker(grading.grade_file(path, BOOK, timeout=10))[
        "check_balance_batches"
    ]
    assert status == ERROR and "No such kernel" in detail and "as the kernel started" in detail


NO_CELL = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"source": "x"}]}'


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b"[1, 2]", b'{"nbformat": 4, "cells": [1]}', NO_CELL, b"\xff\xfe"],
)
def test_a_file_that_is_no_notebook_is_an_error(tmp_path, content):
    path = tmp_path / "dave.ipynb"
    path.write_bytes(content)
    (row,) = grading.grade_file(path, BOOK, timeout=10)
    assert (row.student, row.chapter, row.status) == ("dave", "", ERROR)
    assert "not a Jupyter notebook" in row.detail
    rows = grading.grade_file(path, BOOK, timeout=10, expected=CH01)  # a row per exercise
    assert [(r.chapter, r.checker, r.status) for r in rows] == ALL_01_ERRORS


def test_a_notebook_of_another_chapter_than_expected_is_an_error(tmp_path):
    path = _notebook(
        tmp_path, "erin", "h.exercises.check_average_precision(ap)", title="# 02 · Validation"
    )
    rows = grading.grade_file(path, BOOK, timeout=10, expected=CH01)
    assert [(r.chapter, r.checker, r.status) for r in rows] == ALL_01_ERRORS
    assert f"not {CH01.title!r}" in rows[0].detail and BOOK["02"].title in rows[0].detail


def test_an_unrecognisable_notebook(tmp_path):
    path = _notebook(tmp_path, "frank", "print('hello')", title="# My homework")
    (row,) = grading.grade_file(path, BOOK, timeout=10)
    assert row.status == ERROR and "--chapter" in row.detail
    rows = grading.grade_file(path, BOOK, timeout=30, expected=CH01)  # told the chapter: it runs
    assert [r.status for r in rows] == [MISSING] * 3


def test_the_command_writes_one_row_per_student_and_exercise(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "gina.ipynb").write_text("not json")
    (folder / "hugo.pdf").write_bytes(b"%PDF-1.4")
    (folder / ".hidden.ipynb").write_text("ignored")
    out = folder / "grades.csv"
    out.write_text("an old run, left out")
    result = subprocess.run(
        [sys.executable, str(GRADE), str(folder), "--out", str(out), "--chapter", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == COLUMNS
    expected = [(s, str(n), ERROR) for s in ("gina", "hugo") for n in (1, 2, 3)]
    assert [(r[0], r[2], r[4]) for r in table[1:]] == expected
    assert "gina.ipynb: chapter 01, 3 error" in result.stdout


def test_the_command_refuses_a_chapter_the_book_has_not(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script prepends the checkout to both
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    spec = importlib.util.spec_from_file_location("grade", GRADE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit) as refused:
        script.main([str(tmp_path), "--out", str(tmp_path / "grades.csv"), "--chapter", "42"])
    assert refused.value.code == 2
    assert "'42' is no chapter: use one of 00, 01" in capsys.readouterr().err
    assert not (tmp_path / "grades.csv").exists()


def test_a_real_student_notebook(tmp_path):
    """Chapter 00's student edition with exercise 1 answered (the book's solution), 2 not."""
    nb = nbformat.read(ROOT / "student" / "notebooks" / "00_data_and_setup.ipynb", as_version=4)
    book = nbformat.read(ROOT / "notebooks" / "00_data_and_setup.ipynb", as_version=4)
    solution = next(c for c in book.cells if "solution" in c.metadata.get("tags", []))
    next(c for c in nb.cells if "exercise" in c.metadata.get("tags", [])).source = solution.source
    nbformat.write(nb, tmp_path / "ines.ipynb")
    found = _by_checker(grading.grade_file(tmp_path / "ines.ipynb", BOOK, timeout=300))
    assert found["check_gt_ids"] == (
        PASSED,
        "Correct: your lists equal OML's gt_ids on all 6 dataframes. In the leave-one-out "
        "set each query has 173-181 correct items: all the other images of its digit. "
        "With five queries per digit against a separate gallery, each has 169-177: every "
        "gallery image of its digit, since no query is in the gallery.",
    )
    status, detail = found["check_separate_queries"]
    assert status == NOT_YET and "still `...`" in detail
