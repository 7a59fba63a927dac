"""Write the Colab badge and the Colab set-up cell into every notebook, from _config.yml.

The repository address lives in one place, ``repository.url`` (and ``repository.branch``) in
_config.yml. This script puts, right after each notebook's title, a badge that opens the chapter's
student edition (``student/notebooks/``, the exercises without their solutions) in Colab, a second
link that opens the full notebook with the solutions, and a code cell that, only inside Colab,
clones the book and runs ``oml_helpers/colab.py``. Before each exercise's hidden solution it
writes a markdown cell showing the code the student edition starts from (the solution's
``metadata.student_stub``), so that a reader of the book sees what to fill in without opening the
solution. Run it after changing the setting or adding a
notebook; the tests fail while a notebook is out of date. ``make_student_edition.py`` copies the
same badge cell into the student edition (``badge_cell``), so run it afterwards.

Usage: python scripts/sync_notebooks.py [--check]
"""

import sys
from pathlib import Path
from typing import Dict, List

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BADGE_ID, SETUP_ID = "colab-badge", "colab-setup"
# The cell before a solution that shows its starting code: its id is this prefix + the solution's.
STUB_PREFIX = "stub-"
STUB_INTRO = "Start from this code, the exercise cell of the student edition:"
# Jupyter Book leaves cells with this tag out of the HTML: the set-up cell is for Colab, and the
# badge above it already says what it does. It stays in the notebook, where Colab runs it.
SETUP_TAGS = ["remove-cell"]
# A local copy, so that the rendered book loads nothing from other hosts (notebooks/ -> _static/).
BADGE_IMAGE = "../_static/colab-badge.svg"
STUDENT_BADGE_IMAGE = "../../_static/colab-badge.svg"  # the same file, seen from student/notebooks/

SETUP_TEMPLATE = """\
# Colab set-up: inside Google Colab this fetches the book and installs OML 4.0 with
# its dependencies (about a minute) without touching Colab's numpy and torch.
# Elsewhere it does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    # no online version check when OML imports albumentations
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    BOOK = "/content/oml-book"
    REPO, BRANCH = "{url}", "{branch}"
    if not os.path.isdir(BOOK):
        clone = ["git", "clone", "--quiet", "--depth", "1", "--branch", BRANCH]
        subprocess.run(clone + [REPO, BOOK], check=True)
    setup = subprocess.run(
        [sys.executable, f"{{BOOK}}/oml_helpers/colab.py"],
        capture_output=True,
        text=True,
    )
    print(setup.stdout, setup.stderr)
    setup.check_returncode()
    sys.path.insert(0, BOOK)"""


def repository() -> Dict[str, str]:
    """The repository URL (without a trailing slash or .git) and branch from _config.yml."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/").removesuffix(".git")
    if not url.startswith("https://github.com/"):
        raise ValueError(
            "repository.url in _config.yml must be a "
            f"https://github.com/<owner>/<name> address, got {url!r}."
        )
    return {"url": url, "branch": str(repo.get("branch", "main"))}


def colab_url(notebook: Path) -> str:
    """The address that opens ``notebook`` (a path inside the repository) in Colab."""
    repo = repository()
    slug = repo["url"].removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{notebook.relative_to(ROOT).as_posix()}"


def student_path(notebook: Path) -> Path:
    """Where the student edition of a chapter notebook lives (written by make_student_edition.py).

    Args:
        notebook: a chapter notebook, ``notebooks/NN_name.ipynb``.

    Returns:
        ``student/notebooks/NN_name.ipynb`` in the repository.
    """
    return ROOT / "student" / "notebooks" / notebook.name


def badge_cell(notebook: Path, image: str = BADGE_IMAGE) -> nbformat.NotebookNode:
    """The badge cell: Colab opens the student edition; a second link opens the full notebook.

    Args:
        notebook: a chapter notebook, ``notebooks/NN_name.ipynb``.
        image: the badge image's path as seen from the notebook that gets the cell.

    Returns:
        A markdown cell with the id ``BADGE_ID``.
    """
    student, full = colab_url(student_path(notebook)), colab_url(ROOT / "notebooks" / notebook.name)
    return nbformat.v4.new_markdown_cell(
        f"[![Open the student edition in Colab]({image})]({student}) opens the student edition "
        f"in Colab: the exercises without their solutions. [Open the full notebook, with the "
        f"solutions, in Colab]({full}).",
        id=BADGE_ID,
    )


def is_stub_cell(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` is one that ``stub_cell`` wrote (the book's copy of a starting code)."""
    return cell.get("id", "").startswith(STUB_PREFIX)


def stub_cell(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The markdown cell that shows an exercise's starting code, placed before its solution.

    Args:
        solution: a code cell tagged ``solution`` with ``metadata.student_stub``.

    Returns:
        A markdown cell with the id ``STUB_PREFIX`` + the solution's id.
    """
    stub = solution.metadata.get("student_stub", "").rstrip()
    if not stub:
        raise ValueError(f"the solution cell {solution.id} has no metadata.student_stub.")
    return nbformat.v4.new_markdown_cell(
        f"{STUB_INTRO}\n\n```python\n{stub}\n```", id=STUB_PREFIX + solution.id
    )


def synced_cells(path: Path) -> List[nbformat.NotebookNode]:
    """The notebook's cells with the badge and set-up cells inserted or refreshed after the
    title, and a fresh stub cell before each solution."""
    nb = nbformat.read(path, as_version=4)
    repo = repository()
    badge = badge_cell(path)
    setup = nbformat.v4.new_code_cell(SETUP_TEMPLATE.format(**repo), id=SETUP_ID)
    old = {cell.id: cell for cell in nb.cells}
    if SETUP_ID in old and old[SETUP_ID].source == setup.source:
        setup = old[SETUP_ID]  # keep its recorded execution
    elif SETUP_ID in old and not old[SETUP_ID].outputs:  # outside Colab it prints nothing
        setup.execution_count = old[SETUP_ID].execution_count  # so the run it records still holds
    setup.metadata["tags"] = list(SETUP_TAGS)
    rest = [
        cell for cell in nb.cells if cell.id not in (BADGE_ID, SETUP_ID) and not is_stub_cell(cell)
    ]
    if not rest or rest[0].cell_type != "markdown" or not rest[0].source.startswith("# "):
        raise ValueError(f"{path.name} must start with a markdown cell holding its '# ' title.")
    cells = [rest[0], badge, setup]
    for cell in rest[1:]:
        if "solution" in cell.metadata.get("tags", []):
            cells.append(stub_cell(cell))
        cells.append(cell)
    return cells


def _key(cell: nbformat.NotebookNode) -> tuple:
    return cell.id, cell.source, tuple(cell.metadata.get("tags", []))


def main(check: bool) -> int:
    stale = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = synced_cells(path)
        if [_key(c) for c in cells] != [_key(c) for c in nb.cells]:
            stale.append(path.name)
            if not check:
                nb.cells = cells
                nbformat.write(nb, path)
    if stale:
        print(("out of date: " if check else "updated: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
