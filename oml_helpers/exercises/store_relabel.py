"""Checker for exercise 05.2: label corrections applied all at once or not at all,
with the labels they replace returned for an undo, and an unknown label refused."""

import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore, UnknownIdError

Relabel = Callable[[EmbeddingStore, Dict[int, int]], Any]

# the checker's store: ids 0-9, two items per label, so that two ids' old labels
# differ and a swap shows
LABELS = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
# the first call: stored ids, not in id order, each to a new label of its own
CORRECTIONS = {6: 0, 2: 4}
# the second call: id 99 is not stored, and a loop meets it third
WITH_MISSING = {4: 3, 5: 3, 99: 3}
MISSING = 99
# the third call: stored ids, but 42 is no label the store holds (a typo)
WITH_UNKNOWN_LABEL = {3: 0, 8: 42}
UNKNOWN_LABEL = 42


def _labels(store: EmbeddingStore) -> Dict[int, Any]:
    loaded = store.load()
    return dict(zip(loaded.ids.tolist(), loaded.metadata["label"].tolist()))


def _changed(before: Mapping[int, Any], after: Mapping[int, Any]) -> Dict[int, Any]:
    return {i: after[i] for i in sorted(after) if after[i] != before.get(i)}


def _as_labels(answer: Any) -> Optional[Dict[int, int]]:
    """``answer`` as ``{int id: int label}``, or None if it is not such a dict."""
    if not isinstance(answer, Mapping):
        return None
    try:
        return {int(i): int(label) for i, label in answer.items()}
    except (TypeError, ValueError):
        return None


def _corrections_problem(fn: Relabel, store: EmbeddingStore) -> Optional[str]:
    """The problem with ``fn``'s answer for stored ids only, or None."""
    before, vectors = _labels(store), store.load().vectors
    call = f"relabel(store, {CORRECTIONS})"
    try:
        answer = fn(store, dict(CORRECTIONS))
    except Exception as e:  # the student's code failed: say how
        return f"{call} raised {type(e).__name__}: {e}"
    changed = _changed(before, _labels(store))
    if changed != CORRECTIONS:
        swapped = dict(zip(CORRECTIONS, reversed(CORRECTIONS.values())))
        why = (
            " The new labels went to each other's ids: take the ids and their "
            "labels from the dict in one order, list(corrections) and "
            "list(corrections.values())."
            if changed == swapped
            else ""
        )
        return (
            f"after {call} the changed labels are {changed}: exactly "
            f"{CORRECTIONS} should change.{why}"
        )
    if len(store) != len(before) or not np.array_equal(
        store.load().vectors, vectors
    ):
        return (
            f"{call} changed the items themselves (their count or vectors): "
            "pass only labels= to store.update."
        )
    old = {i: before[i] for i in CORRECTIONS}
    returned = _as_labels(answer)
    if returned is None:
        return (
            f"{call} returned {answer!r}: return the labels the corrections "
            "replace, as a dict {id: old label}."
        )
    if returned == CORRECTIONS:
        return (
            f"{call} returned the new labels, {returned}: read the old ones "
            "with store.load(ids=...) before the update."
        )
    if returned == dict(zip(CORRECTIONS, reversed(old.values()))):
        return (
            f"{call} returned {returned}: the old labels are paired with the "
            "wrong ids. store.load returns its items sorted by id, not in the "
            "order you asked for: pair each label with load's own ids."
        )
    if returned != old:
        return f"{call} returned {returned}; the labels it replaced were {old}."
    return None


def _run(
    fn: Relabel, store: EmbeddingStore, corrections: Dict[int, int]
) -> Tuple[Optional[Exception], Dict[int, Any]]:
    """Call ``fn(store, corrections)``; return the error it raised (or None) and the
    labels it changed."""
    before = _labels(store)
    error: Optional[Exception] = None
    try:
        fn(store, dict(corrections))
    except Exception as e:  # the expected outcome, if it is the right error
        error = e
    return error, _changed(before, _labels(store))


def _missing_id_problem(fn: Relabel, store: EmbeddingStore) -> Optional[str]:
    """The problem with ``fn`` for corrections that include an id that is not
    stored, or None; the name of the error raised, else."""
    count = len(store)
    call = f"relabel(store, {WITH_MISSING}), with id {MISSING} not stored,"
    error, changed = _run(fn, store, WITH_MISSING)
    if changed:
        return (
            f"{call} {'raised' if error else 'returned'}, but it had already "
            f"changed the labels {changed}. Each store.update call is its own "
            "transaction, committed when it returns: a loop commits the ids "
            f"before {MISSING} and then fails. Pass all the ids and labels to "
            "one store.update (one transaction: all of them or none), or check "
            "that every id is stored before writing anything."
        )
    if len(store) != count:
        return (
            f"{call} changed the number of items from {count} to {len(store)}: "
            "corrections change labels only, and none at all here."
        )
    if error is None:
        return (
            f"{call} returned without an error: the caller would believe that "
            "the corrections went in. Let the store's UnknownIdError through "
            "(do not catch it), or raise an error of your own that names the id."
        )
    if isinstance(error, UnknownIdError):
        return None
    if type(error) is Exception:
        return (
            f"{call} raised a bare Exception ({error}). A caller who wants to "
            "handle a missing id would have to catch every error, bugs "
            "included: let the store's UnknownIdError through, or raise a "
            f"KeyError or ValueError that names id {MISSING}."
        )
    if str(MISSING) not in str(error):
        return (
            f"{call} raised {type(error).__name__}: {error}. That does not say "
            f"which id is missing: let the store's UnknownIdError through (it "
            f"names the ids), or raise an error whose message names {MISSING}."
        )
    return None


def _unknown_label_problem(fn: Relabel, store: EmbeddingStore) -> Optional[str]:
    """The problem with ``fn`` for corrections to a label that no stored item has,
    or None."""
    call = (
        f"relabel(store, {WITH_UNKNOWN_LABEL}), with {UNKNOWN_LABEL} no label "
        "the store holds,"
    )
    error, changed = _run(fn, store, WITH_UNKNOWN_LABEL)
    if changed:
        return (
            f"{call} {'raised' if error else 'returned'}, but it had changed the "
            f"labels {changed}. store.update writes any integer label, so a typo "
            "goes in unnoticed: compare the new labels with those already "
            "stored, set(store.load().metadata['label']), before writing, and "
            f"raise an error that names {UNKNOWN_LABEL}."
        )
    if error is None:
        return (
            f"{call} returned without an error: the caller would believe that "
            f"the corrections went in. Raise an error that names {UNKNOWN_LABEL}."
        )
    if type(error) is Exception:
        return (
            f"{call} raised a bare Exception ({error}): raise a ValueError that "
            f"names label {UNKNOWN_LABEL}, so that a caller can catch just that."
        )
    if str(UNKNOWN_LABEL) not in str(error):
        return (
            f"{call} raised {type(error).__name__}: {error}. That does not say "
            f"which label is unknown: name {UNKNOWN_LABEL} in the message."
        )
    return None


@checker
def check_relabel(fn: Relabel) -> Verdict:
    """Exercise 05.2: ``fn(store, corrections)`` sets the labels of
    ``corrections``, ``{id: new label}``, in one transaction and returns the labels
    it replaced, ``{id: old label}``.

    Args:
        fn: the student's function, run on a small store of the checker's own (ids
            0-9): first with stored ids only (those labels must change, nothing
            else, and the old ones come back), then with an id that is not stored
            (it must raise the store's UnknownIdError, or a specific error that
            names the id, and change nothing), then with a label that no stored
            item has (it must raise an error that names the label, and change
            nothing).

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
            store.add(np.arange(10), vectors, labels=LABELS)
            problem = _corrections_problem(fn, store)
            if problem is None:
                problem = _missing_id_problem(fn, store)
            if problem is None:
                problem = _unknown_label_problem(fn, store)
    return _verdict(
        [problem] if problem else [],
        "the corrections went in and you returned the labels they replaced; "
        f"with id {MISSING} not stored, your function raised an error that "
        "names it, and ids 4 and 5 kept their labels; the unknown label "
        f"{UNKNOWN_LABEL} was refused in the same way. The prediction's answer: "
        "a loop of one update per id would already have committed 2 labels, "
        f"those of 4 and 5, when it met {MISSING}, since each update is its own "
        "transaction.",
    )
