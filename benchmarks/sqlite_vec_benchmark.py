"""sqlite-vec beside the book's store: is the extension worth adding? (issue 7 asked for a
measurement)

sqlite-vec is a SQLite extension, and Python's standard ``sqlite3`` can load extensions only if it
was built to (``Connection.enable_load_extension``); the book's Python was not. So this script talks
to sqlite-vec through ``apsw``, which brings its own SQLite. Neither is a dependency of the book:
install them beside it, e.g. ``pip install --target /tmp/vecpkgs apsw sqlite-vec``, then run
``PYTHONPATH=.:/tmp/vecpkgs .venv/bin/python benchmarks/sqlite_vec_benchmark.py`` (about a minute).
Same data as ``storage_benchmark.py``; prints a Markdown table.
"""

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import numpy as np

from benchmarks.storage_benchmark import K, N, make_data
from oml_helpers.storage import EmbeddingStore

try:
    import apsw
    import sqlite_vec
except ImportError:
    sys.exit(
        "Needs apsw and sqlite-vec, which the book does not install: see this file's docstring."
    )


def median_seconds(fn: Callable, repeats: int) -> float:
    fn()  # one untimed call first, as in storage_benchmark
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(dim: int, folder: Path) -> List[List[str]]:
    x, queries = make_data(dim)
    conn = apsw.Connection(str(folder / f"vec{dim}.db"))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(f"CREATE VIRTUAL TABLE items USING vec0(embedding float[{dim}])")
    start = time.perf_counter()
    with conn:  # one transaction
        conn.executemany(
            "INSERT INTO items(rowid, embedding) VALUES (?, ?)",
            ((i, x[i].tobytes()) for i in range(N)),
        )
    insert = time.perf_counter() - start

    def vec_search(batch: np.ndarray) -> List[List[int]]:
        sql = "SELECT rowid FROM items WHERE embedding MATCH ? AND k = ? ORDER BY distance"
        return [[row[0] for row in conn.execute(sql, (q.tobytes(), K))] for q in batch]

    store = EmbeddingStore.create(folder / f"store{dim}.db", "random", dim)
    store.add(np.arange(N), x)
    exact = store.search(
        queries, k=K
    ).ids  # exact (float64 re-ranking), checked by the store's tests
    agree = np.mean(np.array(vec_search(queries)) == exact)
    vec1, vec100 = (
        median_seconds(lambda: vec_search(queries[:1]), 10),
        median_seconds(lambda: vec_search(queries), 2),
    )
    store1, store100 = (
        median_seconds(lambda: store.search(queries[:1], k=K), 10),
        median_seconds(lambda: store.search(queries, k=K), 2),
    )
    store.close()
    conn.close()
    ms = lambda t: f"{t * 1000:.1f} ms"  # noqa: E731
    d = f"d={dim}"
    return [
        [d, "insert 100k (one transaction)", ms(insert), "", ""],
        [d, "search 1 query, warm", ms(vec1), ms(store1), f"{vec1 / store1:.1f}x"],
        [d, "search 100 queries, warm", ms(vec100), ms(store100), f"{vec100 / store100:.1f}x"],
        [d, "top-10 ids equal to the exact search", f"{agree:.4f}", "1.0000", ""],
    ]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for dim in (128, 384):
            rows += bench(dim, Path(folder))
    print(
        f"{N:,} random unit vectors, top-{K} Euclidean; "
        f"sqlite-vec {sqlite_vec.__version__} (vec0, brute force) "
        f"through apsw {apsw.apsw_version()} (SQLite {apsw.sqlite_lib_version()}); "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}.\n"
    )
    print("| dim | measure | sqlite-vec | book's store | sqlite-vec / store |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
