"""Checkers for exercise 02.2 of chapter 02, Validation: the rank-1 confusion
table, and each digit's CMC@1 read off its diagonal. Exercise 02.1 (average
precision) is in ``validation_ap``, 02.3 (shifted digits) in
``validation_shifts``."""

from typing import List

import numpy as np
import pandas as pd
import torch

from oml.interfaces.datasets import IQueryGalleryLabeledDataset
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import RIGHT, WRONG, Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


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
    """Exercise 02.2: rows = the query's digit, columns = the digit of its first
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


def _as_per_digit(answer: object, digits: List[int]) -> np.ndarray:
    """The answer as one float per digit; ``ValueError`` with the reason."""
    if isinstance(answer, dict):
        answer = pd.Series(answer)
    if isinstance(answer, pd.DataFrame) and answer.shape[1] == 1:
        answer = answer.iloc[:, 0]
    if isinstance(answer, pd.Series):
        if sorted(int(i) for i in answer.index) != digits:
            raise ValueError(
                f"index the answer by the digits {digits}; yours: "
                f"{list(answer.index)}."
            )
        answer = answer.sort_index()
    values = np.asarray(
        answer.detach().cpu() if torch.is_tensor(answer) else answer
    )
    if values.dtype == object or not np.issubdtype(values.dtype, np.number):
        raise ValueError(
            "give one number per digit (a Series indexed by digit, a dict or an "
            f"array), not {type(answer).__name__}."
        )
    if values.shape != (len(digits),):
        raise ValueError(
            f"give {len(digits)} numbers, one per digit; yours has the shape "
            f"{values.shape}."
        )
    return values.astype(float)


def _share(counts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """``counts / totals``, 0 where a total is 0."""
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


@checker
def check_cmc1_from_diagonal(
    cmc1_by_digit: object,
    rr: RetrievalResults,
    dataset: IQueryGalleryLabeledDataset,
) -> Verdict:
    """Exercise 02.2, part 3: each digit's CMC@1 from the rank-1 confusion table.

    Args:
        cmc1_by_digit: The answer: one share per digit, sorted by digit (a Series
            or dict keyed by digit, or an array).
        rr: The retrieval results the table counts.
        dataset: The dataset ``rr`` was computed on.

    Returns:
        The verdict; a right answer's compares the shares with the counts.
    """
    truth = rank1_confusion(rr, dataset)
    counts = truth.to_numpy().astype(float)
    digits = [int(d) for d in truth.index]
    diagonal = np.diag(counts)
    right = _share(diagonal, counts.sum(1))
    try:
        mine = _as_per_digit(cmc1_by_digit, digits)
    except ValueError as e:
        return _verdict([str(e)], "")
    problems = []
    if np.allclose(mine, right, atol=1e-3):
        pass
    elif np.allclose(mine, diagonal):
        problems.append(
            "these are the diagonal's counts; divide each by its row's total, "
            "the number of queries of that digit."
        )
    elif np.allclose(mine, _share(diagonal, counts.sum(0)), atol=1e-3):
        problems.append(
            "you divided by the column totals: of the first results showing a "
            "digit, how many were right. CMC@1 asks per query: divide by the "
            "row totals."
        )
    elif np.allclose(mine, diagonal / counts.sum(), atol=1e-3):
        problems.append(
            "you divided by all queries; divide each digit's diagonal count by "
            "the queries of that digit, its row's total."
        )
    else:
        problems.append(
            "not the diagonal over the row totals: a query scores CMC@1 = 1 "
            "exactly when its first result shows its own digit."
        )
    worst = int(np.argmin(right))
    missed = int(counts[worst].sum() - diagonal[worst])
    shown = ", ".join(f"{d}: {v:.3f}" for d, v in zip(digits, right))
    return _verdict(
        problems,
        f"the diagonal over the row totals gives {shown}. The hardest digit is "
        f"{digits[worst]}: {missed} of its queries retrieve another digit first.",
    )


@checker
def check_mixups(
    table: object,
    cmc1_by_digit: object,
    rr: RetrievalResults,
    dataset: IQueryGalleryLabeledDataset,
) -> Verdict:
    """Exercise 02.2 whole: the rank-1 confusion table (``check_confusion_table``),
    then each digit's CMC@1 from its diagonal (``check_cmc1_from_diagonal``), once
    the table is right.

    Returns:
        The first part's verdict while the table is wrong, else both parts'.
    """
    table_verdict = check_confusion_table(table, rr, dataset)
    if not table_verdict:
        return table_verdict
    cmc1_verdict = check_cmc1_from_diagonal(cmc1_by_digit, rr, dataset)
    found = table_verdict.message.split(": ", 1)[1]
    shares = cmc1_verdict.message.split(": ", 1)[1]
    if not cmc1_verdict:
        return Verdict(
            False, f"{WRONG}: your table is right; `cmc1_by_digit`: {shares}"
        )
    return Verdict(True, f"{RIGHT}: {found}\nAnd {shares}")
