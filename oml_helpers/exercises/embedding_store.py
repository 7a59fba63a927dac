"""Checker for the first exercise of chapter 05, Keeping embeddings: precision@k
per label from the store (05.1). Exercise 05.2, label corrections in one
transaction, is in ``store_relabel``; 05.3, with the model, in
``store_and_model``."""

import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore


def _labelled_store(
    folder: Path,
) -> Tuple[EmbeddingStore, np.ndarray, np.ndarray, np.ndarray]:
    """A small store of 3 overlapping clusters (labels 10, 11, 12); returns it,
    its ids, vectors, labels."""
    rng = np.random.default_rng(4)
    labels = np.repeat([10, 11, 12], 20)
    centres = rng.standard_normal((3, 8)) * 0.9
    vectors = (centres[labels - 10] + rng.standard_normal((60, 8))).astype(
        np.float32
    )
    # added in shuffled order: load() sorts them
    ids = rng.permutation(np.arange(100, 160))
    store = EmbeddingStore.create(
        folder / "labelled.db", model_name="exercise", dim=8
    )
    store.add(ids, vectors, labels=labels.tolist())
    order = np.argsort(ids)
    return store, ids[order], vectors[order], labels[order]


def _precision_reference(
    vectors: np.ndarray,
    labels: np.ndarray,
    k: int,
    drop_self: bool = True,
    keep: int = 0,
    divide_by: int = 0,
) -> Dict[int, float]:
    """The checker's own answer: float64 brute force, mean share of the k nearest
    others with the label.

    ``drop_self=False`` keeps the query among its neighbours; ``keep``/``divide_by``
    (if nonzero) keep fewer neighbours or divide by another count: the typical
    mistakes, to name them.
    """
    x = vectors.astype(np.float64)
    sq = (x**2).sum(axis=1)
    # squared: the same order, n x n floats
    distances = sq[:, None] + sq[None, :] - 2 * x @ x.T
    if drop_self:
        np.fill_diagonal(distances, np.inf)
    # a small store may hold fewer than k others
    others = len(x) - 1 if drop_self else len(x)
    nearest = np.argsort(distances, axis=1, kind="stable")[
        :, : min(keep or k, others)
    ]
    precision = (labels[nearest] == labels[:, None]).sum(axis=1) / (divide_by or k)
    return {int(d): float(precision[labels == d].mean()) for d in np.unique(labels)}


def _as_precisions(result: Any) -> Dict[int, float]:
    return {int(label): float(value) for label, value in dict(result).items()}


@checker
def check_precision_per_label(
    fn: Callable[[EmbeddingStore, int], Any], store: Optional[EmbeddingStore] = None
) -> Verdict:
    """Exercise 05.1: ``fn(store, k)`` returns ``{label: mean precision@k of its
    queries}`` via ``store.search``.

    Args:
        fn: the student's function, run on the checker's own small store for k = 5
            and 3.
        store: the chapter's store (optional): if the answer is right on the
            checker's store, ``fn`` runs on this one too for k = 5, against the
            brute force, and the message gives its values.

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
                    problems.append(
                        "return a dict {label: precision}, one entry per label "
                        "(e.g. with a dict comprehension over np.unique(labels))."
                    )
                    break
                if set(answer) != set(right):
                    problems.append(
                        f"your labels are {sorted(answer)}, the store holds "
                        f"{sorted(right)}: one entry per label of the stored "
                        "items, read from store.load().metadata['label']."
                    )
                elif all(np.isclose(answer[d], right[d], atol=1e-9) for d in right):
                    continue
                elif all(
                    np.isclose(answer[d], v, atol=1e-9)
                    for d, v in _precision_reference(
                        vectors, labels, k, drop_self=False
                    ).items()
                ):
                    problems.append(
                        f"for k={k} your precision counts each query as its own "
                        "neighbour (always the right label): ask store.search "
                        "for k + 1 and drop the query's own id."
                    )
                elif any(
                    all(
                        np.isclose(answer[d], v, atol=1e-9)
                        for d, v in _precision_reference(
                            vectors, labels, k, keep=k - 1, divide_by=divide
                        ).items()
                    )
                    for divide in (k, k - 1)
                ):
                    problems.append(
                        f"for k={k} you searched k items and dropped the query: "
                        "only k - 1 neighbours are left. Ask store.search for k "
                        "+ 1, keep k others."
                    )
                elif len(set(np.round(list(answer.values()), 9))) == 1:
                    problems.append(
                        "every label gets the same value: that is the mean over "
                        "all queries. Average each query's precision over the "
                        "queries of one label only."
                    )
                else:
                    problems.append(
                        f"for k={k} you return {dict(sorted(answer.items()))}; "
                        f"the checker's own brute force gives {right}. "
                        "Precision@k of one query: the share of its k nearest "
                        "other items that have its label."
                    )
                break
        finally:
            own.close()
    success = (
        "per-label precision@k from store.search agrees with the checker's own "
        "float64 brute force (and with OML's precision@k when every label has at "
        "least k other items)."
    )
    if store is not None and not problems:
        _, chapter_vectors, metadata = store.load()
        reference = _precision_reference(
            chapter_vectors, metadata["label"].to_numpy(int), 5
        )
        answer = _as_precisions(fn(store, 5))
        shown = {d: round(p, 2) for d, p in answer.items()}
        if set(answer) != set(reference) or not all(
            np.isclose(answer[d], reference[d], atol=1e-9) for d in reference
        ):
            problems.append(
                "right on the checker's store, but on yours your function gives "
                f"{shown} for k=5, the brute force "
                f"{ {d: round(p, 2) for d, p in reference.items()} }: does it "
                "use only the store it is given (no names from the notebook)?"
            )
        success += (
            f" On this store your function gives precision@5 per label: {shown}."
        )
    return _verdict(problems, success)
