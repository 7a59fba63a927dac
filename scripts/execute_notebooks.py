"""Re-run every notebook (or the ones named) in place, each in a fresh kernel, from notebooks/.

Cells marked ``# NBVAL_SKIP`` need the internet (Colab-only variants): they are not run, and they
keep no outputs, exactly as nbval treats them in the tests.

Usage: python scripts/execute_notebooks.py [notebooks/01_training.ipynb ...]
"""

import copy
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SKIP_MARK = "NBVAL_SKIP"


def execute(path: Path) -> float:
    """Execute one notebook in place and return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    runnable = copy.deepcopy(nb)
    runnable.cells = [c for c in nb.cells if not (c.cell_type == "code" and SKIP_MARK in c.source)]
    start = time.perf_counter()
    NotebookClient(
        runnable,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    seconds = time.perf_counter() - start
    executed = {c.id: c for c in runnable.cells}
    for cell in nb.cells:
        if cell.cell_type == "code":
            done = executed.get(cell.id)
            cell.outputs = done.outputs if done else []
            cell.execution_count = done.execution_count if done else None
    nbformat.write(nb, path)
    return seconds


def main(paths: list) -> None:
    for path in [Path(p).resolve() for p in paths] or sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{path.name}: ", end="", flush=True)
        print(f"{execute(path):.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
