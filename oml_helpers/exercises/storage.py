"""Checkers for the exercises of chapter 05 (the SQLite embedding store)."""

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore

# Values of ``split`` that rewrite a WHERE clause if they are pasted into the SQL text.
INJECTIONS = ("validation' OR '1'='1", 'validation" OR "1"="1')


def _labelled_store(folder: Path) -> Tuple[EmbeddingStore, np.ndarray, np.ndarray, np.ndarray]:
    """A small store of 3 overlapping clusters (labels 10, 11, 12); returns it, its ids, vectors, labels."""
    rng = np.random.default_rng(4)
    labels = np.repeat([10, 11, 12], 20)
    centres = rng.standard_normal((3, 8)) * 0.9
    vectors = (centres[labels - 10] + rng.standard_normal((60, 8))).astype(np.float32)
    ids = rng.permutation(np.arange(100, 160))  # added in shuffled order: load() sorts them
    store = EmbeddingStore.create(folder / "labelled.db", model_name="exercise", dim=8)
    store.add(ids, vectors, labels=labels.tolist())
    order = np.argsort(ids)
    return store, ids[order], vectors[order], labels[order]


def _precision_reference(vectors: np.ndarray, labels: np.ndarray, k: int, drop_self: bool = True,
                         keep: int = 0, divide_by: int = 0) -> Dict[int, float]:
    """The checker's own answer: float64 brute force, mean share of the k nearest others with the label.

    ``drop_self=False`` keeps the query among its neighbours; ``keep``/``divide_by`` (if nonzero) keep
    fewer neighbours or divide by another count: the typical mistakes, to name them.
    """
    x = vectors.astype(np.float64)
    distances = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    if drop_self:
        np.fill_diagonal(distances, np.inf)
    others = len(x) - 1 if drop_self else len(x)  # a small store may hold fewer than k others
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :min(keep or k, others)]
    precision = (labels[nearest] == labels[:, None]).sum(axis=1) / (divide_by or k)
    return {int(d): float(precision[labels == d].mean()) for d in np.unique(labels)}


def _as_precisions(result: Any) -> Dict[int, float]:
    return {int(label): float(value) for label, value in dict(result).items()}


@checker
def check_precision_per_label(fn: Callable[[EmbeddingStore, int], Any],
                              store: Optional[EmbeddingStore] = None) -> Verdict:
    """Exercise 05.1: ``fn(store, k)`` returns ``{label: mean precision@k of its queries}`` via ``store.search``.

    Args:
        fn: the student's function, run on the checker's own small store for k = 5 and 3.
        store: the chapter's store (optional): if the answer is right, the message gives its
            precision@5 per label, from the checker's own brute force.

    Returns:
        The verdict.
    """
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        own, ids, vectors, labels = _labelled_store(Path(folder))
        try:
            for k in (5, 3):
                right = _precision_reference(vectors, labels, k)
                try:
                    answer = _as_precisions(fn(own, k))
                except (TypeError, ValueError):
                    problems.append("return a dict {label: precision}, one entry per label (e.g. with a dict "
                                    "comprehension over np.unique(labels)).")
                    break
                if set(answer) != set(right):
                    problems.append(f"your labels are {sorted(answer)}, the store holds {sorted(right)}: one entry "
                                    "per label of the stored items, read from store.load().metadata['label'].")
                elif all(np.isclose(answer[d], right[d], atol=1e-9) for d in right):
                    continue
                elif all(np.isclose(answer[d], v, atol=1e-9)
                         for d, v in _precision_reference(vectors, labels, k, drop_self=False).items()):
                    problems.append(f"for k={k} your precision counts each query as its own neighbour (always the "
                                    "right label): ask store.search for k + 1 and drop the query's own id.")
                elif any(all(np.isclose(answer[d], v, atol=1e-9) for d, v in _precision_reference(
                        vectors, labels, k, keep=k - 1, divide_by=divide).items()) for divide in (k, k - 1)):
                    problems.append(f"for k={k} you searched k items and dropped the query: only k - 1 neighbours "
                                    "are left. Ask store.search for k + 1, keep k others.")
                elif len(set(np.round(list(answer.values()), 9))) == 1:
                    problems.append("every label gets the same value: that is the mean over all queries. Average "
                                    "each query's precision over the queries of one label only.")
                else:
                    problems.append(f"for k={k} you return {dict(sorted(answer.items()))}; the checker's own "
                                    f"brute force gives {right}. Precision@k of one query: the share of its k "
                                    "nearest other items that have its label.")
                break
        finally:
            own.close()
    success = ("per-label precision@k from store.search agrees with the checker's own float64 brute force (and "
               "with OML's precision@k when every label has at least k other items).")
    if store is not None and not problems:
        _, chapter_vectors, metadata = store.load()
        reference = _precision_reference(chapter_vectors, metadata["label"].to_numpy(int), 5)
        success += f" On this store, precision@5 per label: { {d: round(p, 2) for d, p in reference.items()} }."
    return _verdict(problems, success)


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


def _cosine_reference(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The checker's own answer: float64 cosine distances, sorted ascending, ties to the earlier row."""
    x, q = vectors.astype(np.float64), query.astype(np.float64)
    distances = 1 - x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    order = np.argsort(distances, kind="stable")[:k]
    return ids[order], distances[order]


@checker
def check_cosine_top_k(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int], Tuple[Any, Any]]) -> Verdict:
    """Exercise 05.3: ``fn(ids, vectors, query, k)`` returns the ids and cosine distances of the k nearest, nearest first."""
    rng = np.random.default_rng(7)  # vectors of very different norms, so that normalising matters
    vectors = (rng.standard_normal((300, 16)) * rng.uniform(0.1, 10.0, (300, 1))).astype(np.float32)
    ids = np.arange(1000, 1300)
    problems: List[str] = []
    for query in np.random.default_rng(8).standard_normal((5, 16)).astype(np.float32) * 3:
        for k in (1, 5):
            truth_ids, truth = _cosine_reference(ids, vectors, query, k)
            answer = fn(ids.copy(), vectors.copy(), query.copy(), k)
            if not isinstance(answer, (tuple, list)) or len(answer) != 2:
                return _verdict(["return a pair: (ids of the k nearest, their cosine distances)."], "")
            found_ids, found = (np.asarray(x).ravel() for x in answer)
            found = found.astype(np.float64)
            similarity = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
            if len(found_ids) != k or len(found) != k:
                problems.append(f"for k={k} you return {len(found_ids)} ids and {len(found)} distances; "
                                "return exactly k of each (check your slice).")
            elif np.array_equal(found_ids, truth_ids):
                if np.allclose(found, 1 - truth, atol=1e-4) and not np.allclose(found, truth, atol=1e-4):
                    problems.append("the ids are right but you return cosine similarities; the distance is 1 - similarity.")
                elif not np.allclose(found, truth, atol=1e-4):
                    problems.append(f"the ids are right but the distances {np.round(found, 4).tolist()} should be "
                                    f"{np.round(truth, 4).tolist()} (1 - cosine similarity).")
            elif np.array_equal(found_ids, _cosine_reference(ids, vectors, query, k + 1)[0][1:]):
                problems.append("you skipped the nearest item: the query is not stored here, so nothing needs "
                                "dropping; the slice should start at 0.")
            elif np.array_equal(found_ids, ids[np.argsort(vectors @ query)[::-1][:k]]):
                problems.append("you ranked by the raw dot product: long vectors win. Divide by both norms "
                                "(or normalise the vectors and the query) first.")
            elif np.array_equal(found_ids, ids[np.argsort(similarity)[:k]]):
                problems.append("those are the k farthest items: nearest means the smallest distance "
                                "(the largest similarity), so sort ascending by distance.")
            else:
                problems.append(f"for k={k} you return ids {found_ids.tolist()}; a float64 brute force gives "
                                f"{truth_ids.tolist()}.")
            if problems:
                return _verdict(problems, "")
    return _verdict(problems, "your brute force gives the same ids and distances as the checker's own float64 "
                    "brute force (and as store.search(metric='cosine') would).")
