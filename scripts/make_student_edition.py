"""Write the student edition: every notebook with the exercise solutions replaced by empty stubs.

Solution cells carry the tag ``solution`` and, in ``metadata.student_stub``, the code a student
starts from (the names to define and the check to run). Outputs of those cells are dropped.

Usage: python scripts/make_student_edition.py [output folder, default: student/]
"""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def student_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` with each solution cell replaced by its stub."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            if "student_stub" not in cell.metadata:
                raise ValueError(f"{path.name}: a solution cell has no metadata.student_stub:\n{cell.source[:200]}")
            cell.source = cell.metadata.pop("student_stub")
            cell.metadata["tags"] = ["exercise"]
            cell.outputs, cell.execution_count = [], None
    return nb


def main(out: Path) -> None:
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nbformat.write(student_notebook(path), out / "notebooks" / path.name)
        print(f"wrote {out / 'notebooks' / path.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "student")
