"""Time every chapter: each notebook runs top to bottom in a fresh kernel, as the tests run it.

Prints one row per chapter (seconds, and its slowest cells) and the total, against the book's
targets: each chapter within 60 s and all of them within 6 minutes on 2 CPU cores. Cells marked
``# NBVAL_SKIP`` (online, Colab-only) are left out, as in the tests. Nothing is written back.

Usage: python benchmarks/chapter_times.py [notebooks/01_training.ipynb ...] [--cells N]
"""

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import List, Tuple

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTER_LIMIT_S, TOTAL_LIMIT_S = 60, 360


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or what platform knows), with its core count."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def time_notebook(path: Path) -> Tuple[float, List[Tuple[float, str]]]:
    """Run one notebook in a fresh kernel; return its wall time and ``(seconds, first line)`` per
    cell."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and "NBVAL_SKIP" in c.source)]
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()
    total = time.perf_counter() - start
    cells = []
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in timing:
            seconds = _seconds(timing["shell.execute_reply"]) - _seconds(
                timing["iopub.execute_input"]
            )
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            cells.append((seconds, first[:60]))
    return total, sorted(cells, reverse=True)


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--cells", type=int, default=2, help="slowest cells to show per chapter")
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    print(f"{date.today()}, {cpu_name()}, {platform.python_version()}")
    print("| chapter | seconds | target | slowest cells |\n|---|---|---|---|")
    total = 0.0
    for path in paths:
        seconds, cells = time_notebook(path)
        total += seconds
        slow = "; ".join(f"{s:.0f} s `{line}`" for s, line in cells[: args.cells])
        verdict = "ok" if seconds <= CHAPTER_LIMIT_S else "OVER"
        print(
            f"| {path.stem} | {seconds:.0f} | {verdict} (<= {CHAPTER_LIMIT_S}) | {slow} |",
            flush=True,
        )
    verdict = "ok" if total <= TOTAL_LIMIT_S else "OVER"
    print(f"| all | {total:.0f} | {verdict} (<= {TOTAL_LIMIT_S}) | |")


if __name__ == "__main__":
    main()
