"""Every chapter ends with 2-3 exercises whose solutions are hidden in the book and removed in the
student edition.

The student edition is committed in student/notebooks/ (the chapters' Colab badges open it), so it
must stay what scripts/make_student_edition.py writes from notebooks/.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COMMITTED = ROOT / "student" / "notebooks"
REGENERATE = ".venv/bin/python scripts/make_student_edition.py"


def _solutions(nb):
    return [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """A fresh student edition written by the script into a temporary folder: its notebooks/."""
    out = tmp_path_factory.mktemp("student")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_student_edition.py"), str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return out / "notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_chapter_ends_with_exercises(path):
    nb = nbformat.read(path, as_version=4)
    solutions = _solutions(nb)
    assert 2 <= len(solutions) <= 3, f"{path.name} has {len(solutions)} exercises"
    headings = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## ")
    ]
    exercises_at = next(i for i in headings if nb.cells[i].source.startswith("## Exercises"))
    assert exercises_at == headings[-2], "the exercises come last, followed only by the summary"
    for cell in solutions:
        assert (
            "hide-cell" in cell.metadata["tags"]
        ), "solutions are hidden behind a toggle in the book"
        assert (
            "h.exercises.check_" in cell.source
            and "h.exercises.check_" in cell.metadata["student_stub"]
        )
        shown = "".join(
            o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs
        )
        assert shown.startswith(
            "Correct"
        ), f"the reference solution does not pass its check:\n{cell.source}"


def test_student_edition_has_no_solutions(edition):
    sync, edition_script = _load("sync_notebooks"), _load("make_student_edition")
    for path in NOTEBOOKS:
        teacher = nbformat.read(path, as_version=4)
        student = nbformat.read(edition / path.name, as_version=4)
        stubs = [c for c in teacher.cells if sync.is_stub_cell(c)]
        assert len(stubs) == len(_solutions(teacher)), "every solution shows its stub"
        teacher.cells = [c for c in teacher.cells if c not in stubs]
        assert len(student.cells) == len(teacher.cells)
        assert not _solutions(student)
        for t, s in zip(teacher.cells, student.cells):
            if "solution" in t.metadata.get("tags", []):
                assert s.source == t.metadata["student_stub"] and s.source != t.source
                assert s.outputs == [] and "..." in s.source and s.metadata["tags"] == ["exercise"]
            elif t.get("id") == sync.BADGE_ID:  # the same links; the image as seen from student/
                assert s.source == t.source.replace(sync.BADGE_IMAGE, sync.STUDENT_BADGE_IMAGE)
                assert (COMMITTED / sync.STUDENT_BADGE_IMAGE).resolve().is_file()
            elif t.cell_type == "markdown":  # the edition says it leaves the solutions out
                assert s.source == edition_script.HIDDEN_SOLUTIONS.sub(
                    edition_script.NO_SOLUTIONS, t.source
                )
                assert "hidden below each exercise" not in s.source
            else:
                assert s.source == t.source


def test_committed_student_edition_is_up_to_date(edition):
    fresh = sorted(p.name for p in edition.glob("*.ipynb"))
    committed = sorted(p.name for p in COMMITTED.glob("*.ipynb"))
    assert committed == fresh, (
        f"student/notebooks/ holds {committed}, the chapters give {fresh}: "
        f"run {REGENERATE} and commit student/"
    )
    for name in fresh:
        assert (COMMITTED / name).read_text() == (edition / name).read_text(), (
            f"student/notebooks/{name} is out of date with notebooks/{name}: run {REGENERATE} "
            "(after scripts/sync_notebooks.py) and commit student/; never edit it by hand"
        )


def test_solution_without_stub_is_refused(tmp_path):
    module = _load("make_student_edition")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="student_stub"):
        module.student_notebook(path)


def test_book_shows_each_stub_before_its_solution():
    sync = _load("sync_notebooks")
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if "solution" in cell.metadata.get("tags", []):
                shown = cells[i - 1]
                assert shown.id == sync.STUB_PREFIX + cell.id, f"{path.name}: {cell.id}"
                assert shown.cell_type == "markdown" and shown.source.startswith(sync.STUB_INTRO)
                assert cell.metadata["student_stub"].rstrip() in shown.source


def test_solution_without_stub_cannot_be_shown():
    sync = _load("sync_notebooks")
    cell = nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]}, id="x1")
    with pytest.raises(ValueError, match="student_stub"):
        sync.stub_cell(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_only_solutions_are_toggled_as_solutions(path):
    """_config.yml labels hidden cells "Show the solution": any other hidden cell needs its own."""
    for cell in nbformat.read(path, as_version=4).cells:
        tags = cell.metadata.get("tags", [])
        if "hide-cell" in tags and "solution" not in tags:
            prompt = cell.metadata.get("mystnb", {}).get("code_prompt_show", "")
            assert prompt and "solution" not in prompt.lower(), (
                f"{path.name}: the hidden cell {cell.id} is not a solution; give it "
                'metadata.mystnb.code_prompt_show (e.g. "Show the code"), or tag it remove-cell'
            )
