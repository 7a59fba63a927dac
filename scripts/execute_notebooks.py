"""Re-run every notebook (or the ones named) in place, each in a fresh kernel, from notebooks/.

Usage: python scripts/execute_notebooks.py [notebooks/01_training.ipynb ...]
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(path: Path) -> float:
    """Execute one notebook in place and return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(paths: list) -> None:
    for path in [Path(p).resolve() for p in paths] or sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{path.name}: ", end="", flush=True)
        print(f"{execute(path):.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
