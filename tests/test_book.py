"""The book builds with Jupyter Book 1.x, warnings treated as errors, from the committed outputs."""

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{path.stem}" in toc, f"{path.name} is missing from _toc.yml"


def test_notebooks_are_committed_with_outputs():
    """The book renders committed outputs, so each runnable code cell must have been executed."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and "NBVAL_SKIP" not in cell.source:
                assert (
                    cell.execution_count is not None
                ), f"{path.name}: a cell was never run:\n{cell.source[:200]}"


def test_book_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [
            str(JUPYTER_BOOK),
            "build",
            str(ROOT),
            "--path-output",
            str(tmp_path),
            "-W",
            "--keep-going",
            "-n",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    html = tmp_path / "_build" / "html"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = html / "notebooks" / f"{path.stem}.html"
        assert page.is_file(), f"no page for {path.name}"
        nb = nbformat.read(path, as_version=4)
        n_figures = sum(
            "image/png" in o.get("data", {})
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
        )
        n_images = page.read_text().count('src="../_images/')
        assert (
            n_images >= n_figures
        ), f"{page.name} shows {n_images} of the notebook's {n_figures} figures"
        # the Colab set-up cell stays in the notebook but not on the page (tag remove-cell)
        assert (
            "Colab set-up: inside Google Colab" not in page.read_text()
        ), f"{page.name} shows the set-up cell"
