"""House style: one formatter and one linter over the whole repository.

ruff formats and lints the Python files and the notebooks' code cells with the settings in
pyproject.toml: 84 columns in oml_helpers/ and notebooks/, the width the book's rendered code
boxes show (tests/test_browser.py measures that), and 100 in tests/, scripts/, benchmarks/ and
_ext/, which the book never shows (their ruff.toml). The student edition is generated from the
notebooks and left out. Fix a failure with ``ruff format .`` and then ``ruff check .``: the second
lists what the formatter cannot mend (a long string or comment to split by hand).
"""

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_is_installed_at_the_pinned_version():
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("ruff==")
    )
    version = _ruff("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.split()[-1] == pinned, (
        f"ruff {version.stdout.strip()} is installed but requirements.txt pins {pinned}: "
        "run scripts/setup_env.sh"
    )


def test_code_is_formatted():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, (
        "Some files are not formatted as ruff formats them (pyproject.toml); run "
        f"`ruff format .` and commit:\n{result.stdout}{result.stderr}"
    )


def test_code_passes_the_linter():
    result = _ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, (
        "ruff check finds problems (E501: a line longer than the rendered code box; split it "
        f"by hand):\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("path", ["oml_helpers/probe.py", "notebooks/probe.ipynb"])
def test_rendered_code_is_checked_at_the_code_box_width(path):
    """The linter must reject, in rendered code, a line the code box would cut off."""
    line = "x = " + "1 + " * 20 + "1"
    assert len(line) == 85
    if path.endswith(".py"):
        text = line + "\n"
    else:
        text = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(line)]))
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "E501"]
        + ["--output-format", "concise", "--stdin-filename", path, "-"],
        cwd=ROOT,
        input=text,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "E501" in result.stdout, result.stdout


FENCED_PYTHON = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def python_blocks(markdown: str) -> List[str]:
    """The code of each fenced ```python block in a markdown text."""
    return FENCED_PYTHON.findall(markdown)


def test_python_blocks_are_found():
    text = "Prose.\n\n```python\nx = 1\n```\n\n```python\ny = (\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = (\n"]


PROSE_FILES = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))


def _markdown_parts(path: Path) -> List[Tuple[str, str]]:
    """(where, markdown) for each markdown cell of a notebook, or the whole of a .md page."""
    if path.suffix == ".md":
        return [(path.name, path.read_text())]
    nb = nbformat.read(path, as_version=4)
    return [(f"cell {c.get('id')}", c.source) for c in nb.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", PROSE_FILES, ids=lambda p: p.name)
def test_code_shown_in_prose_is_valid_python(path):
    """Code in the prose (a dropdown that spells out a helper, the store appendix's quoted cells)
    is not checked by ruff or run by nbval; a re-wrap of the paragraph around it once joined its
    lines into invalid Python."""
    broken = []
    for where, markdown in _markdown_parts(path):
        for code in python_blocks(markdown):
            try:
                ast.parse(code)
            except SyntaxError as e:
                broken.append(f"{where}: line {e.lineno}: {e.text!r}")
    assert broken == [], "fenced python blocks that do not parse:\n" + "\n".join(broken)
