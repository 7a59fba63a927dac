"""Checker for exercise 05.2: a change to several items is one transaction (all
of it or none)."""

import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore

_LABELS = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]  # ids 0-9


def _state(store: EmbeddingStore) -> Dict[str, Any]:
    ids, vectors, metadata = store.load()
    return {
        "labels": dict(zip(ids.tolist(), metadata["label"].tolist())),
        "vectors": vectors,
    }


def _relabel_problem(
    fn: Callable[[EmbeddingStore, Sequence[int], int], Any],
    store: EmbeddingStore,
    before: Dict[str, Any],
) -> Optional[str]:
    """The problem with ``fn``'s answer for stored ids only, or None."""
    try:
        answer = fn(store, [2, 3], 7)
    except Exception as e:  # the student's code failed: say how
        return f"relabel(store, [2, 3], 7) raised {type(e).__name__}: {e}"
    after = _state(store)
    changed = {
        i for i in after["labels"] if after["labels"][i] != before["labels"][i]
    }
    if changed != {2, 3} or after["labels"][2] != 7 or after["labels"][3] != 7:
        return (
            f"after relabel(store, [2, 3], 7) the changed ids are {sorted(changed)}, their labels "
            f"{[after['labels'][i] for i in sorted(changed)]}: only 2 and 3 should change, to 7."
        )
    if not np.array_equal(after["vectors"], before["vectors"]):
        return "relabel changed vectors: pass only labels= to store.update, not embeddings."
    if not isinstance(answer, (int, np.integer)) or answer != 2:
        return (
            f"relabel(store, [2, 3], 7) returned {answer!r}: return how many stored items now have "
            "the label 7 (2 here), e.g. len(store.load(label=new_label).ids)."
        )
    return None


def _atomic_problem(
    fn: Callable[[EmbeddingStore, Sequence[int], int], Any], store: EmbeddingStore
) -> Optional[str]:
    """The problem with ``fn`` for a batch with an id that is not stored, or
    None."""
    before = _state(store)["labels"]
    try:
        fn(store, [4, 5, 99], 8)
    except (
        Exception
    ):  # the expected outcome: the store's UnknownIdError, or the student's own
        raised = True
    else:
        raised = False
    after = _state(store)["labels"]
    changed = sorted(i for i in after if after[i] != before[i])
    if changed:
        return (
            f"relabel(store, [4, 5, 99], 8), with 99 not stored, still changed id(s) {changed}. "
            "One store.update call is one transaction: it changes all ids or none. A loop of "
            "calls commits each one: pass all the ids to a single update."
        )
    if not raised:
        return (
            "relabel(store, [4, 5, 99], 8) returned although id 99 is not stored: let the "
            "store's error through, so that the caller knows nothing was changed."
        )
    return None


@checker
def check_relabel(
    fn: Callable[[EmbeddingStore, Sequence[int], int], Any],
) -> Verdict:
    """Exercise 05.2: ``fn(store, ids, new_label)`` relabels stored ids in one
    transaction.

    Args:
        fn: the student's function, run on a small store of the checker's own (ids
            0-9): first with stored ids only (those must change, nothing else), then
            with an id that is not stored (it must raise, and change nothing).

    Returns:
        The verdict.
    """
    with tempfile.TemporaryDirectory() as folder:
        vectors = (
            np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
        )
        with EmbeddingStore.create(
            Path(folder) / "relabel.db", model_name="exercise", dim=4
        ) as store:
            store.add(np.arange(10), vectors, labels=_LABELS)
            problem = _relabel_problem(fn, store, _state(store))
            if problem is None:
                problem = _atomic_problem(fn, store)
    return _verdict(
        [problem] if problem else [],
        "ids 2 and 3 got the label 7 and nothing else changed; with id 99 not stored, "
        "your function raised and ids 4 and 5 kept their labels: one update, one "
        "transaction.",
    )
