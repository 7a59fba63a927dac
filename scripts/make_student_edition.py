"""Write the student edition: every notebook with the exercise solutions replaced by empty stubs.

Solution cells carry the tag ``solution`` and, in ``metadata.student_stub``, the code a student
starts from (the names to define and the check to run). Outputs of those cells are dropped, and
so is the markdown cell before each that shows the same starting code in the book. The
badge cell is the chapter's own (``sync_notebooks.badge_cell``), its image path adjusted to the
student edition's folder. The edition in student/ is committed: the tests fail while it is out of
date with notebooks/, so run this after changing a notebook (and after sync_notebooks.py).

Usage: python scripts/make_student_edition.py [output folder, default: student/]
"""

import importlib.util
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
# The full notebooks' sentence about hidden solutions, and what the student edition says instead.
HIDDEN_SOLUTIONS = re.compile(
    r"The solutions are hidden below each exercise:\s+click to reveal them\s+after trying\."
)
NO_SOLUTIONS = (
    "This student edition leaves the solutions out; the full notebook (linked at the top) has them."
)


def _sync_module():
    path = ROOT / "scripts" / "sync_notebooks.py"
    spec = importlib.util.spec_from_file_location("sync_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` with each solution cell replaced by its stub."""
    sync = _sync_module()
    nb = nbformat.read(path, as_version=4)
    # the book shows each stub before its hidden solution; here the stub is the code cell itself
    nb.cells = [c for c in nb.cells if not sync.is_stub_cell(c)]
    for i, cell in enumerate(nb.cells):
        if cell.get("id") == sync.BADGE_ID:
            nb.cells[i] = sync.badge_cell(path, image=sync.STUDENT_BADGE_IMAGE)
        elif "solution" in cell.metadata.get("tags", []):
            if "student_stub" not in cell.metadata:
                raise ValueError(
                    f"{path.name}: a solution cell has no metadata.student_stub:\n"
                    f"{cell.source[:200]}"
                )
            cell.source = cell.metadata.pop("student_stub")
            cell.metadata["tags"] = ["exercise"]
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = HIDDEN_SOLUTIONS.sub(NO_SOLUTIONS, cell.source)
    return nb


def main(out: Path) -> None:
    folder = out / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    chapters = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in chapters:
        nbformat.write(student_notebook(path), folder / path.name)
        print(f"wrote {folder / path.name}")
    for stale in sorted(set(folder.glob("*.ipynb")) - {folder / p.name for p in chapters}):
        stale.unlink()  # its chapter is gone or renamed
        print(f"removed {stale}")


if __name__ == "__main__":
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        sys.exit(__doc__)
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "student")
