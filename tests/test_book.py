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
    _check_helper_links(html)


def _check_helper_links(html: Path) -> None:
    """Every ``h.name`` in a chapter's code links to its entry on the reference page
    (_ext/link_helpers.py), and every such link lands on an entry that is there."""
    import re

    import oml_helpers

    reference = (html / "book" / "reference.html").read_text()
    entries = set(re.findall(r'id="(oml_helpers\.[\w.]+)"', reference))
    call = re.compile(
        r'<span class="n">h</span><span class="o">\.</span>'
        r'(?:<span class="n">exercises</span><span class="o">\.</span>)?'
        r'(<a class="helper-link" href="([^"]*)"[^>]*>)?<span class="n">(\w+)</span>'
    )
    for page in sorted((html / "notebooks").glob("*.html")):
        calls = call.findall(page.read_text())
        assert calls, f"{page.name}: no h.name found in its code; has the highlighting changed?"
        for link, href, name in calls:
            if name == "exercises":
                continue
            assert link, f"{page.name}: h.{name} does not link to the reference page"
            anchor = href.split("#")[-1]
            assert href.startswith("../book/reference.html#") and anchor in entries, (
                f"{page.name}: h.{name} links to {href}, which is not an entry of the "
                f"reference page"
            )
            assert anchor.endswith(f".{name}") and hasattr(oml_helpers, anchor.split(".")[1])
