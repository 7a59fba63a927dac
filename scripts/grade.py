"""Grade a class: run every submitted student notebook in a folder; one CSV row per exercise.

Each file in SUBMISSIONS_DIR is one student's notebook (its name without .ipynb is the student's).
Each runs in a fresh kernel, in an empty working folder, for at most --timeout seconds; its chapter
is recognised from its content. The CSV has the columns student, chapter, exercise, checker, status
(passed, not yet, error, time-out, missing) and detail. It runs the students' code with your rights:
see book/how_to_use.md. The logic is in oml_helpers/grading.py.

Usage: python scripts/grade.py SUBMISSIONS_DIR --out grades.csv [--timeout SECONDS] [--chapter NN]
"""

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
# This checkout's oml_helpers, for the grader and for the kernels it starts (they inherit the path).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from oml_helpers.grading import STATUSES, Row, grade_folder, write_csv  # noqa: E402
from oml_helpers.submissions import chapters  # noqa: E402


def _counts(rows: List[Row]) -> str:
    counts = Counter(row.status for row in rows)
    return ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])


def _report(path: Path, rows: List[Row], seconds: float) -> None:
    chapter = rows[0].chapter or "?"
    print(f"{path.name}: chapter {chapter}, {_counts(rows)} ({seconds:.0f} s)", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="the submitted notebooks, one per student")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (600)")
    parser.add_argument("--chapter", help="the chapter every submission should be from, e.g. 01")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder: give the one with the notebooks")
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    known = chapters()
    expected = None
    if args.chapter:
        number = re.match(r"\d+", args.chapter)
        expected = known.get(f"{int(number.group()):02d}") if number else None
        if expected is None:
            parser.error(f"--chapter {args.chapter!r} is no chapter: use one of {', '.join(known)}")
    rows = grade_folder(args.submissions, known, args.timeout, expected, [args.out], _report)
    write_csv(rows, args.out)
    students = len({row.student for row in rows})
    print(f"wrote {args.out}: {len(rows)} rows for {students} files; {_counts(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
