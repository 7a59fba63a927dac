"""Benchmark of oml_helpers.storage against numpy brute force, np.load and a per-row Python loop.

Run: ``PYTHONPATH=. python benchmarks/storage_benchmark.py`` (under a minute on 2 CPU cores).
Prints a Markdown table; "cold" means a new connection with an empty cache (the OS file cache is warm,
as it is for the .npy file it is compared with).
"""

import os
import platform
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np
import torch

from oml_helpers.storage import EmbeddingStore
from oml_helpers.storage_search import _int8_dots

N, K = 100_000, 10
LOOP_ROWS_1, LOOP_ROWS_100 = 10_000, 1_000  # rows the row loop really reads, for 1 and for 100 queries


def timed(fn: Callable, repeats: int = 1) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(a: Callable, b: Callable, rounds: int, block: int = 1) -> Tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, timed in turn, so that a busy machine slows both alike.

    Each round calls ``a`` once untimed and then times ``block`` calls, then does the same for ``b``:
    numpy's BLAS threads and torch's threads keep spinning for a while after a call, so the first call
    after the other library ran is slowed by them (``alternating`` measures that on its own).
    """
    times_a, times_b = [], []
    for _ in range(rounds):
        for fn, times in ((a, times_a), (b, times_b)):
            fn()
            times += [timed(fn) for _ in range(block)]
    return statistics.median(times_a), statistics.median(times_b)


def alternating(a: Callable, b: Callable, repeats: int) -> Tuple[float, float]:
    """Median seconds of ``a`` and of ``b`` when each call follows a call of the other."""
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return statistics.median(times_a), statistics.median(times_b)


def brute_force(x: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """The plain numpy top-k by Euclidean distance that the store is compared with."""
    scores = (x @ queries[0])[None] if len(queries) == 1 else queries @ x.T
    scores = sq_norms - 2 * scores
    top = np.argpartition(scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(np.take_along_axis(scores, top, 1), axis=1), 1)


def row_loop(db: Path, queries: np.ndarray, limit: int) -> List[List[int]]:
    """The "study notes" way: float64 BLOBs and, for each query, a Python loop over the rows
    (fetch a row, ``np.frombuffer`` as float64, one distance), then a sort. Not made smarter."""
    conn = sqlite3.connect(db)
    answers = []
    for query in queries.astype(np.float64):
        distances = []
        for item_id, blob in conn.execute("SELECT id, vector FROM items LIMIT ?", (limit,)):
            distances.append((float(np.sqrt(((np.frombuffer(blob, np.float64) - query) ** 2).sum())), item_id))
        answers.append([i for _, i in sorted(distances)[:K]])
    conn.close()
    return answers


def make_data(dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """``N`` random unit vectors and 100 queries near some of them (the same for every run)."""
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((N, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, x[rng.choice(N, 100, replace=False)] + 0.01 * rng.standard_normal((100, dim)).astype(np.float32)


def bench(dim: int, folder: Path) -> List[List[str]]:
    x, queries = make_data(dim)
    path, npy, notes = folder / f"store{dim}.db", folder / f"x{dim}.npy", folder / f"notes{dim}.db"
    meta = {"labels": (np.arange(N) % 1000).tolist(), "paths": [f"images/{i}.png" for i in range(N)],
            "splits": ["validation"] * N, "is_query": [True] * N, "is_gallery": [True] * N}

    store = EmbeddingStore.create(path, "random", dim)
    insert = timed(lambda: store.add(np.arange(N), x, **meta))
    store.close()
    np.save(npy, x)
    with sqlite3.connect(notes) as conn:  # only the rows the loop reads; its time is scaled to N
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, vector BLOB)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", ((i, x[i].astype(np.float64).tobytes()) for i in range(LOOP_ROWS_1)))
    conn.close()

    def open_load():
        with EmbeddingStore.open(path) as s:
            s.load()

    def open_search():
        with EmbeddingStore.open(path) as s:
            return s.search(queries[:1], k=K)

    def npy_search():
        y = np.load(npy)
        return brute_force(y, np.einsum("ij,ij->i", y, y), queries[:1])

    sq = np.einsum("ij,ij->i", x, x)
    assert np.array_equal(open_search().ids, brute_force(x, sq, queries[:1]))  # same answers before timing
    load_t, npy_load_t = timed_pair(open_load, lambda: np.load(npy), 3)
    cold_t, npy_cold_t = timed_pair(open_search, npy_search, 5)
    store = EmbeddingStore.open(path)
    store.search(queries[:1])
    warm1, bf1 = timed_pair(lambda: store.search(queries[0], k=K), lambda: brute_force(x, sq, queries[:1]), 6, 5)
    mixed1, mixed_bf1 = alternating(lambda: store.search(queries[0], k=K), lambda: brute_force(x, sq, queries[:1]), 30)
    warm100, bf100 = timed_pair(lambda: store.search(queries, k=K), lambda: brute_force(x, sq, queries), 5)
    store.close()
    # The loop's time grows linearly with the rows it reads: measured on a subset, scaled to N rows.
    loop1 = timed(lambda: row_loop(notes, queries[:1], LOOP_ROWS_1), 3) * N / LOOP_ROWS_1
    loop100 = timed(lambda: row_loop(notes, queries, LOOP_ROWS_100)) * N / LOOP_ROWS_100

    tracemalloc.start()
    store = EmbeddingStore.open(path)
    store.search(queries[:1])
    cached, peak = tracemalloc.get_traced_memory()
    store.close()
    tracemalloc.stop()

    ms = lambda t: f"{t * 1000:.1f} ms"  # noqa: E731
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    d = f"d={dim}"
    return [
        [d, "insert 100k (one add)", ms(insert), "", "", "", "< 2 s", verdict(insert < 2)],
        [d, "open + load() all", ms(load_t), "", ms(npy_load_t), "", "(info)", f"{load_t / npy_load_t:.1f}x np.load"],
        [d, "search 1 query, warm", ms(warm1), ms(bf1), "", f"{ms(loop1)} (scaled)", "<= 1.2x numpy",
         f"{verdict(warm1 <= 1.2 * bf1)} {warm1 / bf1:.2f}x"],
        [d, "search 1 query, warm, each call after a numpy one", ms(mixed1), ms(mixed_bf1), "", "", "(info)",
         f"{mixed1 / mixed_bf1:.2f}x numpy, {loop1 / mixed1:.0f}x the row loop"],
        [d, "search 100 queries, warm", ms(warm100), ms(bf100), "", f"{ms(loop100)} (scaled)", "<= 1.2x numpy",
         f"{verdict(warm100 <= 1.2 * bf100)} {warm100 / bf100:.2f}x"],
        [d, "cold open + first search", ms(cold_t), "", ms(npy_cold_t), "", "<= 2x np.load+search",
         f"{verdict(cold_t <= 2 * npy_cold_t)} {cold_t / npy_cold_t:.1f}x"],
        [d, "speed-up vs row loop (1 query)", f"{loop1 / warm1:.0f}x", "", "", "", ">= 100x", verdict(loop1 / warm1 >= 100)],
        [d, "speed-up vs row loop (100 queries)", f"{loop100 / warm100:.0f}x", "", "", "", ">= 100x",
         verdict(loop100 / warm100 >= 100)],
        [d, "memory: cache / raw vectors", f"{cached / x.nbytes:.2f}x", "", "", "", "<= 1.5x",
         f"{verdict(cached <= 1.5 * x.nbytes)} (peak while loading {peak / x.nbytes:.1f}x)"],
    ]


def int8_product_in_use(dim: int) -> bool:
    """Whether searches get their shortlist from int8 codes here (else from float32, the fallback)."""
    codes = np.ones((4, dim), np.int8)
    return _int8_dots(codes[:1], codes, np.arange(4)) is not None


def main() -> None:
    header = ["dim", "measure", "store", "numpy in memory", "np.load .npy + numpy", "study-notes row loop",
              "target", "result"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for dim in (128, 384):
            rows += bench(dim, Path(folder))
    print(f"{N:,} random unit vectors, top-{K} Euclidean; {platform.machine()}, {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads, int8 shortlist "
          f"{'on' if all(int8_product_in_use(d) for d in (128, 384)) else 'OFF: float32 fallback'}), "
          f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end. Row loop (one pass over the rows per query): timed on "
          f"{LOOP_ROWS_1:,} float64 rows for 1 query and {LOOP_ROWS_100:,} rows for 100 queries, scaled "
          f"linearly to {N:,} rows (x{N // LOOP_ROWS_1} and x{N // LOOP_ROWS_100}). Store and numpy are timed "
          "in turn, in blocks after one untimed call (medians); the info row times them call by call.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
