"""Checkers for the exercises of chapter 02, Validation: OML's AP@k against the
textbook's (02.1), OML's AP@k for one query by hand (02.2) and the rank-1
confusion table (02.3)."""

from typing import Callable, List, Sequence

import numpy as np
import pandas as pd
import torch

from oml.functional.metrics import calc_map, calc_precision
from oml.interfaces.datasets import IQueryGalleryLabeledDataset
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


# exercise 02.1: hits at ranks 2 and 5
TEXTBOOK_HITS = [False, True, False, False, True]
TEXTBOOK_N_GT = 4


def textbook_ap(is_correct: Sequence[bool], n_gt: int, k: int) -> float:
    """The recommender-system AP@k: the precision at each hit within the first k,
    summed, / min(k, n).

    Args:
        is_correct: Rank by rank, whether each retrieved item is correct.
        n_gt: The number of correct items in the gallery (at least 1).
        k: The cut-off.

    Returns:
        The AP@k of Kaggle's ``ml_metrics.apk`` (0.0 when nothing in the first k is
        correct).
    """
    hits, total = 0, 0.0
    for rank, correct in enumerate(list(is_correct)[:k], start=1):
        if correct:
            hits += 1
            total += hits / rank
    return total / min(k, n_gt)


def _off(value: float, target: float) -> bool:
    return not np.isclose(float(value), target, atol=1e-3)


@checker
def check_oml_against_textbook(
    precision: float, map_: float, textbook: float
) -> Verdict:
    """Exercise 02.1: precision@5, OML's mAP@5 and the textbook AP@5 of
    ``TEXTBOOK_HITS``.

    Args:
        precision: The answer for OML's precision@5.
        map_: The answer for OML's mAP@5.
        textbook: The answer for the textbook AP@5 (the sum divided by min(k, n)).

    Returns:
        The verdict; the first value that is off is named, with a hint for the usual
        mistakes.
    """
    k, n, hits = 5, TEXTBOOK_N_GT, torch.tensor(TEXTBOOK_HITS)
    truth = {
        "precision": float(calc_precision([hits], [n], (k,))[0][0]),
        "map": float(calc_map([hits], [n], (k,))[0][0]),
        "textbook": textbook_ap(TEXTBOOK_HITS, n, k),
    }
    sum_ = truth["textbook"] * min(k, n)  # the sum of the precision at each hit
    n_k = int(hits[:k].sum())
    by_k = f"you divided by k = {k}; "
    # name: (label, hint, [(the value a typical mistake gives, what to say)])
    mistakes = {
        "precision": (
            "precision@5",
            "OML's precision@k divides the hits in the first k by min(k, n).",
            [(n_k / k, by_k + f"OML divides by min(k, n) = {min(k, n)}.")],
        ),
        "map": (
            "mAP@5",
            "OML averages the precision at each hit over the hits within the "
            "first k.",
            [
                (
                    truth["textbook"],
                    "that is the textbook's AP@5, divided by min(k, n) = "
                    f"{min(k, n)}; OML divides the same sum by n_k = {n_k}, the "
                    f"hits it found in the first {k}.",
                ),
                (
                    sum_ / k,
                    by_k
                    + f"OML divides by the hits within the first k, n_k = {n_k}.",
                ),
            ],
        ),
        "textbook": (
            "textbook AP@5",
            "the textbook AP@k sums the precision at each hit within "
            "the first k, / min(k, n).",
            [
                (
                    truth["map"],
                    "that is OML's mAP@5; the textbook divides the same sum by "
                    f"min(k, n) = {min(k, n)}, so that the {min(k, n) - n_k} "
                    "correct items not found count as misses.",
                ),
                (
                    sum_ / k,
                    by_k + f"the textbook divides by min(k, n) = {min(k, n)}.",
                ),
            ],
        ),
    }
    problems = []
    if not _off(map_, truth["textbook"]) and not _off(textbook, truth["map"]):
        problems.append(
            "your mAP@5 and textbook AP@5 are swapped: OML divides the sum by "
            "the hits it found, the textbook by min(k, n)."
        )
    for name, value in (
        ("precision", precision),
        ("map", map_),
        ("textbook", textbook),
    ):
        label, hint, typical = mistakes[name]
        if _off(value, truth[name]):
            hint = next(
                (say for wrong, say in typical if not _off(value, wrong)), hint
            )
            problems.append(f"{label} = {value} is off; {hint}")
    ratio = truth["map"] / truth["textbook"]
    return _verdict(
        problems,
        f"precision@5 = {truth['precision']:.3f}, OML's mAP@5 = "
        f"{truth['map']:.3f}, the textbook AP@5 = {truth['textbook']:.3f}: OML's "
        f"is {ratio:.0f} times the textbook's, since it averages over the {n_k} "
        f"hits it found, not the {min(k, n)} a perfect top {k} would hold.",
    )


def _oml_ap(is_correct: Sequence[bool], n_gt: int, k: int) -> float:
    """OML's AP@k of one query's ranking."""
    row = [torch.tensor(list(is_correct), dtype=torch.bool)]
    return float(calc_map(row, [n_gt], (k,))[0][0])


def _describe_case(is_correct: Sequence[bool], n_gt: int, k: int) -> str:
    hits = "".join("x" if c else "." for c in is_correct) or "(none retrieved)"
    notes = []
    if not len(is_correct):
        notes.append(
            "an empty ranking: OML gives 1.0 when n_gt = 0 (nothing to find) and "
            "0.0 otherwise"
        )
    elif n_gt == 0:
        notes.append("no correct item exists (n_gt = 0)")
    if k > len(is_correct) > 0:
        notes.append("k is longer than the ranking: only the retrieved items count")
    return f"hits '{hits}' (x = correct), n_gt={n_gt}, k={k}" + (
        f" ({'; '.join(notes)})" if notes else ""
    )


# exercise 02.2: empty, n_gt = 0, k longer than the ranking
AP_EDGE_CASES = [
    ([], 0, 5),
    ([], 3, 5),
    ([False, False, False], 0, 3),
    ([True, False, True], 2, 10),
    ([False, True], 1, 5),
]


@checker
def check_average_precision(
    fn: Callable[[Sequence[bool], int, int], float],
) -> Verdict:
    """Exercise 02.2: ``fn(is_correct, n_gt, k)`` computes OML's AP@k for one query.

    The rankings include ``AP_EDGE_CASES``; an error raised by ``fn`` is reported
    with its case.
    """
    rng = np.random.default_rng(0)
    cases = [
        ([True, False, True], 2, 3),
        ([False, False, False], 3, 3),
        ([False, True, False, True, True], 5, 4),
    ]
    cases += [
        (list(rng.random(8) < 0.4), 6, int(rng.integers(1, 9))) for _ in range(30)
    ]
    cases += AP_EDGE_CASES
    problems = []
    for is_correct, n_gt, k in cases:
        truth = _oml_ap(is_correct, n_gt, k)
        try:
            value = float(fn(list(map(bool, is_correct)), n_gt, k))
        # the student's code failing on one case is an answer to explain
        except Exception as e:
            problems.append(
                f"for {_describe_case(is_correct, n_gt, k)} your function raised "
                f"{type(e).__name__}: {e}. OML gives {truth:.4f}."
            )
            break
        if not np.isclose(value, truth, atol=1e-4):
            problems.append(
                f"for {_describe_case(is_correct, n_gt, k)} you return "
                f"{value:.4f}, OML gives {truth:.4f}."
            )
            break
    return _verdict(
        problems,
        f"matches OML's mAP on {len(cases)} rankings, the edge cases included.",
    )


def rank1_confusion(
    rr: RetrievalResults, dataset: IQueryGalleryLabeledDataset
) -> pd.DataFrame:
    """Counts of (query's label, first result's label) over all queries, correct
    ones included.

    Args:
        rr: Retrieval results of ``dataset``'s queries (retrieved ids are gallery
            positions).
        dataset: The labelled query/gallery dataset ``rr`` was computed on.

    Returns:
        A square table of counts: a row per query label, a column per label, both
        sorted.

    Raises:
        ValueError: ``rr`` and ``dataset`` hold different numbers of queries.
    """
    labels = torch.as_tensor(dataset.get_labels())
    query_rows = dataset.get_query_ids().view(-1)
    gallery_rows = dataset.get_gallery_ids().view(-1)
    if len(rr.retrieved_ids) != len(query_rows):
        raise ValueError(
            f"rr holds {len(rr.retrieved_ids)} queries, the dataset "
            f"{len(query_rows)}: pass the dataset rr was computed on."
        )
    digits = sorted(int(d) for d in labels.unique())
    index = {d: i for i, d in enumerate(digits)}
    counts = np.zeros((len(digits), len(digits)), dtype=int)
    for q, ids in zip(query_rows.tolist(), rr.retrieved_ids):
        if len(ids):
            counts[
                index[int(labels[q])], index[int(labels[gallery_rows[ids[0]]])]
            ] += 1
    return pd.DataFrame(counts, index=digits, columns=digits)


def _as_counts(table: object, shape: tuple) -> np.ndarray:
    """The answer as a float array; ``ValueError`` with the reason when it cannot
    be one."""
    if isinstance(table, pd.DataFrame):
        values = table.to_numpy()
    elif torch.is_tensor(table):
        values = table.detach().cpu().numpy()
    else:
        values = np.asarray(table)
    if values.dtype == object or not np.issubdtype(values.dtype, np.number):
        raise ValueError(
            "give a table of numbers (a DataFrame or a 2-d array), not "
            f"{type(table).__name__}."
        )
    if values.shape != shape:
        raise ValueError(
            f"give a {shape[0]}x{shape[1]} table, one row and one column per "
            f"digit; yours has the shape {values.shape}."
        )
    return values.astype(float)


def _wrong_labels(table: object, truth: pd.DataFrame) -> List[str]:
    if not isinstance(table, pd.DataFrame):
        return []
    digits = list(truth.index)
    if [int(i) for i in table.index] != digits or [
        int(c) for c in table.columns
    ] != digits:
        return [
            f"label the rows and the columns with the digits {digits} in this "
            f"order (yours: rows {list(table.index)}, columns "
            f"{list(table.columns)})."
        ]
    return []


@checker
def check_confusion_table(
    table: object, rr: RetrievalResults, dataset: IQueryGalleryLabeledDataset
) -> Verdict:
    """Exercise 02.3: rows = the query's digit, columns = the digit of its first
    result, counts.

    Args:
        table: The answer: a DataFrame (rows and columns labelled with the digits)
            or a 2-d array whose rows and columns follow the sorted digits.
        rr: The retrieval results the table should count.
        dataset: The dataset ``rr`` was computed on.

    Returns:
        The verdict; a right answer's names the most confused pair.
    """
    truth = rank1_confusion(rr, dataset)
    right = truth.to_numpy()
    try:
        mine = _as_counts(table, right.shape)
    except ValueError as e:
        return _verdict([str(e)], "")
    problems = _wrong_labels(table, truth)
    n_queries = int(right.sum())
    off = ~np.eye(len(right), dtype=bool)
    if problems or np.array_equal(mine, right):
        pass
    elif np.isclose(mine.sum(), len(right)) or np.isclose(mine.sum(), 1.0):
        problems.append(
            "the table holds shares; count queries instead (each query adds 1 to "
            "one cell)."
        )
    elif np.array_equal(mine, right.T):
        problems.append(
            "rows and columns are swapped: a row is the query's digit, a column "
            "the digit of its first result."
        )
    elif np.array_equal(mine[off], right[off]):
        problems.append(
            "the wrong cells are right, the diagonal is not: a query whose first "
            "result shows its own digit counts too, on the diagonal."
        )
    elif mine.sum() != n_queries:
        problems.append(
            f"your counts add up to {mine.sum():g}, but there are {n_queries} "
            "queries and each one counts once, with its first result only "
            "(rr.retrieved_ids[q][0])."
        )
    else:
        problems.append(
            "the right total but not the right cells. A retrieved id is a "
            "gallery position: map it to a dataset row with "
            "dataset.get_gallery_ids() before reading its label, and take the "
            "query's label from get_query_ids()."
        )
    wrong = pd.Series(
        right[off],
        index=[(a, b) for a in truth.index for b in truth.columns if a != b],
    )
    (a, b), n = wrong.idxmax(), int(wrong.max())
    correct = int(np.trace(right))
    return _verdict(
        problems,
        f"{correct} of the {n_queries} queries are right at rank 1 (the "
        f"diagonal); the most frequent mistake is a {a} retrieving a {b} ({n} "
        f"times, and {int(truth.loc[b, a])} the other way). Rows: the query's "
        f"digit; columns: its first result's.\n{truth.to_string()}",
    )
