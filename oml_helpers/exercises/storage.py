"""Checkers for the exercises of chapter 05 (the SQLite embedding store)."""

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore

# Values of ``split`` that rewrite a WHERE clause if they are pasted into the SQL text.
INJECTIONS = ("validation' OR '1'='1", 'validation" OR "1"="1')


@checker
def check_storage_bytes(float32_bytes: int, float64_bytes: int, n: int = 100_000, dim: int = 64) -> Verdict:
    """Exercise 05.1: bytes taken by ``n`` embeddings of ``dim`` numbers as float32 and as float64."""
    truth = {name: n * dim * np.dtype(name).itemsize for name in ("float32", "float64")}
    problems: List[str] = []
    for name, value in (("float32", float32_bytes), ("float64", float64_bytes)):
        right = truth[name]
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            problems.append(f"give the {name} size as a number of bytes, not {type(value).__name__}.")
        elif value == right:
            continue
        elif value == right * 8:
            problems.append(f"{value:,} for {name} counts bits; a byte is 8 bits.")
        elif value in (n * np.dtype(name).itemsize, dim * np.dtype(name).itemsize):
            problems.append(f"{value:,} for {name} is one {'vector' if value == dim * np.dtype(name).itemsize else 'number per vector'}; "
                            f"count all {n:,} x {dim} numbers.")
        elif value in (right / 2**20, right / 1e6, right / 2**10, right / 1e3):
            problems.append(f"{value} for {name} is in kB or MB; the question asks for bytes.")
        elif value == truth["float64" if name == "float32" else "float32"]:
            problems.append(f"{value:,} is the size of the other dtype: float32 numbers take 4 bytes, float64 8.")
        else:
            problems.append(f"{value:,} bytes for {name} is off: multiply vectors x dimensions x bytes per number "
                            f"(np.dtype(np.{name}).itemsize).")
        break
    return _verdict(problems, f"{truth['float32']:,} bytes ({truth['float32'] / 2**20:.1f} MiB) as float32, twice that, "
                    f"{truth['float64']:,} bytes ({truth['float64'] / 2**20:.1f} MiB), as float64: the same "
                    "numbers, since the model computes in float32.")


def _demo_store(folder: Path) -> Tuple[Path, Dict[str, Dict[int, int]]]:
    """A small store with two splits; returns its path and the true counts per label, per split."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 60).tolist()
    splits = ["train" if i % 3 else "validation" for i in range(60)]
    path = folder / "exercise.db"
    with EmbeddingStore.create(path, model_name="exercise", dim=4) as store:
        store.add(list(range(60)), rng.standard_normal((60, 4)).astype(np.float32), labels=labels, splits=splits)
    truth: Dict[str, Dict[int, int]] = {}
    for label, split in zip(labels, splits):
        truth.setdefault(split, {}).setdefault(label, 0)
        truth[split][label] += 1
    return path, truth


def _as_counts(result: Any) -> Dict[int, int]:
    return {int(label): int(count) for label, count in dict(result).items()}


@checker
def check_counts_per_label(fn: Callable[[sqlite3.Connection, str], Any]) -> Verdict:
    """Exercise 05.2: ``fn(conn, split)`` returns ``{label: number of items}`` for one split, with a ``?`` parameter."""
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        path, truth = _demo_store(Path(folder))
        everything: Dict[int, int] = {}
        for counts in truth.values():
            for label, count in counts.items():
                everything[label] = everything.get(label, 0) + count
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read-only: an injected statement cannot harm it
        try:
            for split in ("train", "validation", *INJECTIONS):
                right = truth.get(split, {})
                try:
                    answer = _as_counts(fn(conn, split))
                except sqlite3.Error as e:
                    problems.append(f"for split {split!r} SQLite said '{e}': the value's quote ended your SQL string. "
                                    "Pass values as ? parameters: conn.execute(sql, (split,)).")
                    break
                except (TypeError, ValueError):
                    problems.append("return a dict {label: count} (or a list of (label, count) pairs).")
                    break
                if answer == right:
                    continue
                if split in INJECTIONS and answer == everything:
                    problems.append(f"the value {split!r} rewrote your WHERE clause and counted every split: it was "
                                    "pasted into the SQL text. Pass it as a ? parameter, so it is only ever a value.")
                elif answer == everything:
                    problems.append(f"for split {split!r} you counted the items of all splits: add WHERE split = ?.")
                else:
                    problems.append(f"for split {split!r} you return {answer}, the store holds {right}: "
                                    "GROUP BY label and count(*).")
                break
        finally:
            conn.close()
    return _verdict(problems, "right counts, and a value that tries to rewrite the SQL stays a harmless value "
                    f"(e.g. {INJECTIONS[0]!r} matches no split).")


def _cosine_store(folder: Path) -> EmbeddingStore:
    """A store of vectors with very different norms, so that normalising matters."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((300, 16)) * rng.uniform(0.1, 10.0, (300, 1))
    store = EmbeddingStore.create(folder / "cosine.db", model_name="exercise", dim=16)
    store.add(list(range(1000, 1300)), vectors.astype(np.float32))
    return store


@checker
def check_cosine_top_k(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int], Tuple[Any, Any]]) -> Verdict:
    """Exercise 05.3: ``fn(ids, vectors, query, k)`` returns the ids and cosine distances of the k nearest, nearest first."""
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        store = _cosine_store(Path(folder))
        try:
            ids, vectors, _ = store.load()
            queries = np.random.default_rng(8).standard_normal((5, 16)).astype(np.float32) * 3
            for query in queries:
                for k in (1, 5):
                    truth = store.search(query, k=k, metric="cosine")
                    answer = fn(ids.copy(), vectors.copy(), query.copy(), k)
                    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
                        return _verdict(["return a pair: (ids of the k nearest, their cosine distances)."], "")
                    found_ids, found = (np.asarray(x).ravel() for x in answer)
                    found = found.astype(np.float64)
                    similarity = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
                    if len(found_ids) != k or len(found) != k:
                        problems.append(f"for k={k} you return {len(found_ids)} ids and {len(found)} distances; "
                                        "return exactly k of each (check your slice).")
                    elif np.array_equal(found_ids, truth.ids):
                        if np.allclose(found, 1 - truth.distances, atol=1e-4) and not np.allclose(found, truth.distances, atol=1e-4):
                            problems.append("the ids are right but you return cosine similarities; the distance is 1 - similarity.")
                        elif not np.allclose(found, truth.distances, atol=1e-4):
                            problems.append(f"the ids are right but the distances {np.round(found, 4).tolist()} should be "
                                            f"{np.round(truth.distances, 4).tolist()} (1 - cosine similarity).")
                    elif np.array_equal(found_ids, store.search(query, k=k + 1, metric="cosine").ids[1:]):
                        problems.append("you skipped the nearest item: the query is not stored here, so nothing needs "
                                        "dropping; the slice should start at 0.")
                    elif np.array_equal(found_ids, ids[np.argsort(vectors @ query)[::-1][:k]]):
                        problems.append("you ranked by the raw dot product: long vectors win. Divide by both norms "
                                        "(or normalise the vectors and the query) first.")
                    elif np.array_equal(found_ids, ids[np.argsort(similarity)[:k]]):
                        problems.append("those are the k farthest items: nearest means the smallest distance "
                                        "(the largest similarity), so sort ascending by distance.")
                    else:
                        problems.append(f"for k={k} you return ids {found_ids.tolist()}, the store's search gives "
                                        f"{truth.ids.tolist()}.")
                    if problems:
                        return _verdict(problems, "")
        finally:
            store.close()
    return _verdict(problems, "your brute force gives the same ids and distances as EmbeddingStore.search(metric='cosine').")
