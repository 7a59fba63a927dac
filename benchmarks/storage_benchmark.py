"""Benchmark of oml_helpers.storage beside numpy brute force, FAISS's IndexFlatL2, np.load and a row
loop.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/storage_benchmark.py`` (about a minute on 2 CPU
cores). FAISS is optional: ``pip install -e '.[benchmark]'`` (faiss-cpu); without it its columns are
skipped. Prints a Markdown table. "Cold" means a new connection with an empty cache (the OS file
cache is warm, as it is for the .npy file it is compared with).
"""

import datetime
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from oml_helpers.storage import EmbeddingStore

try:
    import faiss
except ImportError:  # the benchmark extra is not installed
    faiss = None

N, K = 100_000, 10
# rows the row loop really reads, for 1 and for 100 queries
LOOP_ROWS_1, LOOP_ROWS_100 = 10_000, 1_000


def timed(fn: Callable) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_in_turn(fns: List[Callable], rounds: int, block: int = 1) -> List[float]:
    """Median seconds of each function, timed in turn (one untimed call, then ``block`` timed ones)
    for
    ``rounds`` rounds, so that a busy moment slows all of them alike."""
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            fn()
            out += [timed(fn) for _ in range(block)]
    return [statistics.median(t) for t in times]


def brute_force(x: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """The plain numpy top-k by Euclidean distance, in float32, that the store is compared with."""
    scores = (x @ queries[0])[None] if len(queries) == 1 else queries @ x.T
    scores = sq_norms - 2 * scores
    top = np.argpartition(scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(np.take_along_axis(scores, top, 1), axis=1), 1)


def row_loop(db: Path, queries: np.ndarray, limit: int) -> List[List[int]]:
    """The study notes' search: for each query, a Python loop over the rows (fetch,
    ``np.frombuffer`` as
    float64, one distance), then a sort. Not made smarter."""
    conn = sqlite3.connect(db)
    answers = []
    for query in queries.astype(np.float64):
        distances = []
        for item_id, blob in conn.execute("SELECT id, vector FROM items LIMIT ?", (limit,)):
            distances.append(
                (float(np.sqrt(((np.frombuffer(blob, np.float64) - query) ** 2).sum())), item_id)
            )
        answers.append([i for _, i in sorted(distances)[:K]])
    conn.close()
    return answers


def notes_fixed(db: Path, queries: np.ndarray) -> np.ndarray:
    """The three-line numpy fix of the row loop: one SELECT, one matrix, one brute force."""
    conn = sqlite3.connect(db)
    ids, blobs = zip(*conn.execute("SELECT id, vector FROM items").fetchall())
    x = np.frombuffer(b"".join(blobs), np.float64).reshape(len(ids), -1)
    conn.close()
    return np.asarray(ids)[brute_force(x, np.einsum("ij,ij->i", x, x), queries)]


def make_data(dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """``N`` random unit vectors and 100 queries near some of them (the same for every run)."""
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((N, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, x[rng.choice(N, 100, replace=False)] + 0.01 * rng.standard_normal((100, dim)).astype(
        np.float32
    )


def bench(dim: int, folder: Path) -> List[List[str]]:
    x, queries = make_data(dim)
    path, npy, notes = folder / f"store{dim}.db", folder / f"x{dim}.npy", folder / f"notes{dim}.db"
    meta = {
        "labels": (np.arange(N) % 1000).tolist(),
        "paths": [f"images/{i}.png" for i in range(N)],
        "splits": ["validation"] * N,
        "is_query": [True] * N,
        "is_gallery": [True] * N,
    }
    store = EmbeddingStore.create(path, "random", dim)
    insert = timed(lambda: store.add(np.arange(N), x, **meta))
    close = timed(store.close)  # saves the snapshot: the next opens read it instead of the rows
    np.save(npy, x)
    with sqlite3.connect(notes) as conn:  # the study notes' table: float64 BLOBs, one per row
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, vector BLOB)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)",
            ((i, x[i].astype(np.float64).tobytes()) for i in range(N)),
        )
    conn.close()
    sq = np.einsum("ij,ij->i", x, x)
    index = None
    if faiss is not None:
        index = faiss.IndexFlatL2(dim)
        index.add(x)

    def cold_store():
        with EmbeddingStore.open(path) as s:
            return s.search(queries[:1], k=K)

    def cold_npy():
        y = np.load(npy)
        return brute_force(y, np.einsum("ij,ij->i", y, y), queries[:1])

    # same answers before timing
    assert np.array_equal(cold_store().ids, brute_force(x, sq, queries[:1]))
    cold, cold_np, cold_fix = timed_in_turn(
        [cold_store, cold_npy, lambda: notes_fixed(notes, queries[:1])], 5
    )
    store = EmbeddingStore.open(path)
    store.search(queries[:1])
    warm = {}
    for n_queries, rounds, block in ((1, 6, 5), (100, 5, 1)):
        q = queries[:n_queries] if n_queries > 1 else queries[0]
        fns = [lambda: store.search(q, k=K), lambda: brute_force(x, sq, queries[:n_queries])]
        if index is not None:
            fns.append(lambda: index.search(queries[:n_queries], K))
        warm[n_queries] = timed_in_turn(fns, rounds, block) + [None] * (3 - len(fns))
        assert np.array_equal(
            store.search(queries[:n_queries], k=K).ids, brute_force(x, sq, queries[:n_queries])
        )
    store.close()
    # The loop's time grows linearly with the rows it reads: measured on a subset, scaled to N rows.
    loop = {
        1: timed(lambda: row_loop(notes, queries[:1], LOOP_ROWS_1)) * N / LOOP_ROWS_1,
        100: timed(lambda: row_loop(notes, queries, LOOP_ROWS_100)) * N / LOOP_ROWS_100,
    }
    tracemalloc.start()
    store = EmbeddingStore.open(path)
    store.search(queries[:1])
    cached, peak = tracemalloc.get_traced_memory()
    store.close()
    tracemalloc.stop()

    ms = lambda t: "" if t is None else f"{t * 1000:.1f} ms"  # noqa: E731
    ok = lambda passed: "PASS" if passed else "FAIL"  # noqa: E731
    d, rows = f"d={dim}", []
    rows.append(
        [d, "insert 100k (one add, committed)", ms(insert), "", "", "", "", "< 2 s", ok(insert < 2)]
    )
    rows.append(
        [
            d,
            "then close (saves the snapshot)",
            ms(close),
            "",
            "",
            "",
            "",
            "information",
            f"add + close {insert + close:.1f} s",
        ]
    )
    for n_queries, (t, t_np, t_faiss) in warm.items():
        verdict = f"{ok(t <= 1.2 * t_np)} {t / t_np:.2f}x numpy"
        verdict += "" if t_faiss is None else f"; {ok(t <= 1.5 * t_faiss)} {t / t_faiss:.2f}x FAISS"
        rows.append(
            [
                d,
                f"search {n_queries} quer{'y' if n_queries == 1 else 'ies'}, warm",
                ms(t),
                ms(t_np),
                ms(t_faiss),
                "",
                f"{ms(loop[n_queries])} (scaled)",
                "<= 1.2x numpy, <= 1.5x FAISS",
                verdict,
            ]
        )
    rows.append(
        [
            d,
            "cold open + first search",
            ms(cold),
            "",
            "",
            ms(cold_np),
            f"{ms(cold_fix)} (numpy fix)",
            "<= 4x np.load+search",
            f"{ok(cold <= 4 * cold_np)} {cold / cold_np:.1f}x",
        ]
    )
    rows.append(
        [
            d,
            "memory: cache / raw vectors",
            f"{cached / x.nbytes:.2f}x",
            "",
            "",
            "",
            "",
            "<= 1.5x",
            f"{ok(cached <= 1.5 * x.nbytes)} (peak while loading {peak / x.nbytes:.2f}x)",
        ]
    )
    return rows


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    header = [
        "dim",
        "measure",
        "store",
        "numpy in memory",
        "FAISS IndexFlatL2",
        "np.load .npy + numpy",
        "study notes",
        "target",
        "result",
    ]
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for dim in (128, 384):
            rows += bench(dim, Path(folder))
    threads: Optional[int] = faiss.omp_get_max_threads() if faiss is not None else None
    print(
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"numpy {np.__version__}, SQLite {sqlite3.sqlite_version}, "
        + (
            f"faiss-cpu {faiss.__version__} ({threads} threads)"
            if faiss is not None
            else "FAISS not installed (pip install -e '.[benchmark]'): its columns are empty"
        )
        + f"; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after."
    )
    print(
        f"{N:,} random unit vectors, top-{K} Euclidean. Timings are medians, "
        "each measure's columns timed in turn. "
        "Study notes: the row loop over float64 BLOBs, "
        f"timed on {LOOP_ROWS_1:,} rows (1 query) and {LOOP_ROWS_100:,} rows "
        f"(100 queries) and scaled to {N:,}; the numpy fix reads all rows with one "
        "SELECT into one matrix and searches it.\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
