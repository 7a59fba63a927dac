"""Checkers for the exercises of chapter 00, Data and setup: the first rows of each
validation digit as queries only (00.2) and a ``sequence`` column that leaves a
query no correct match (00.3). Exercise 00.1's checker is in ``ground_truth``."""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits

from oml_helpers.data import DatasetFormatError, check_dataframe, split_dataframe
from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


def _format_problems(df: pd.DataFrame, dataset_root: Union[str, Path]) -> List[str]:
    try:
        check_dataframe(df, dataset_root)
    except DatasetFormatError as e:
        return [f"the dataframe does not follow OML's format. {e}"]
    return []


def _digit_counts() -> pd.Series:
    """How many images of each digit scikit-learn ships, from the data, not from
    the book's code."""
    return pd.Series(load_digits().target).value_counts().sort_index()


def _split_problems(df: pd.DataFrame) -> List[str]:
    """What differs from the book's split: every image kept, 0-4 train, 5-9
    validation."""
    counts = _digit_counts()
    train, val = split_dataframe(df)
    n_train, n_val = (
        int(counts[counts.index < 5].sum()),
        int(counts[counts.index >= 5].sum()),
    )
    if len(df) != int(counts.sum()):
        return [
            f"the dataframe has {len(df)} rows; keep all {int(counts.sum())} "
            "images, changing only the roles of the validation rows."
        ]
    if len(train) != n_train or set(train["label"]) != set(range(5)):
        return [
            f"the training rows changed ({len(train)} rows, labels "
            f"{sorted(set(train['label']))}); keep the {n_train} training images "
            "of the digits 0-4 as they are."
        ]
    if len(val) != n_val or set(val["label"]) != set(range(5, 10)):
        return [
            f"the validation rows changed ({len(val)} rows, labels "
            f"{sorted(set(val['label']))}); keep all {n_val} images of the "
            "digits 5-9."
        ]
    return []


def _row_problems(
    full_index: pd.Index,
    answer: object,
    roles: np.ndarray,
    number: int,
    what: str,
    reader: str,
) -> List[str]:
    """What is wrong with ``answer``, the dataset row of item ``number`` among
    ``roles``' rows."""
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return [
            f"give the dataset row of {what} {number} as a whole number, not "
            f"{answer!r}."
        ]
    row = int(roles[number])
    if answer == row:
        return []
    if answer == number:
        return [
            f"{number} is the {what} number itself, not a dataset row: the "
            f"dataset row of {what} {number} is dataset.{reader}()[{number}]."
        ]
    if answer == full_index[row]:
        return [
            f"{answer} is that image's row in `df`. The validation dataset "
            "numbers its own rows from 0 (after reset_index): read "
            f"dataset.{reader}()[{number}]."
        ]
    return [
        f"{answer} is not the dataset row of {what} {number}. Build the "
        "validation dataset from the validation rows of your dataframe and read "
        f"dataset.{reader}()[{number}]."
    ]


@checker
def check_separate_queries(
    df: pd.DataFrame,
    dataset_root: Union[str, Path],
    gallery_row: int,
    query_row: int,
    n_queries: int = 20,
    query: int = 99,
    fewest_gallery: Optional[int] = None,
) -> Verdict:
    """Exercise 00.2: per validation digit, the first ``n_queries`` rows query only,
    the rest gallery.

    Args:
        df: The student's dataframe, made from the book's ``df`` (all 1,797 digits).
        dataset_root: The folder of the images.
        gallery_row: The student's dataset row of the item at gallery position 0.
        query_row: The student's dataset row of query number ``query``.
        n_queries: Queries asked for per validation digit.
        query: The query whose dataset row is asked for.
        fewest_gallery: The student's count of gallery images kept by the digit
            with the fewest; not checked when None.

    Returns:
        The verdict; when right, it says how many gallery images each digit keeps.
    """
    problems = _format_problems(df, dataset_root) or _split_problems(df)
    gallery = pd.Series(dtype=int)
    if not problems:
        _, val = split_dataframe(df)
        both = val["is_query"] & val["is_gallery"]
        per_label = val[val["is_query"]].groupby("label").size()
        gallery = val[val["is_gallery"]].groupby("label").size()
        if both.any():
            problems.append(
                f"{both.sum()} rows are still both query and gallery; "
                "each should be one or the other."
            )
        elif (~(val["is_query"] | val["is_gallery"])).any():
            problems.append(
                "some validation rows are neither query nor gallery; "
                "every row past the first queries of its digit is a gallery item."
            )
        elif (per_label != n_queries).any() or len(per_label) != val[
            "label"
        ].nunique():
            problems.append(
                f"queries per label are {per_label.to_dict()}; "
                f"each label needs exactly {n_queries}."
            )
        else:
            for label, group in val.groupby("label", sort=True):
                if not group["is_query"].iloc[:n_queries].all():
                    problems.append(
                        f"for label {label} the queries are not the first "
                        f"{n_queries} rows of that label."
                    )
                    break
    if not problems:
        full_index = df.index[df["split"] != "train"]
        gallery_rows = np.flatnonzero(val["is_gallery"].to_numpy(bool))
        query_rows = np.flatnonzero(val["is_query"].to_numpy(bool))
        if not 0 <= query < len(query_rows):
            raise ValueError(
                f"query must be between 0 and {len(query_rows) - 1}, got {query}."
            )
        problems = _row_problems(
            full_index,
            gallery_row,
            gallery_rows,
            0,
            "gallery position",
            "get_gallery_ids",
        ) or _row_problems(
            full_index, query_row, query_rows, query, "query", "get_query_ids"
        )
    if not problems and fewest_gallery is not None:
        if fewest_gallery != gallery.min():
            problems.append(
                f"fewest_gallery={fewest_gallery!r} is not it. Count the "
                "is_gallery rows of each label and take the smallest count."
            )
    return _verdict(
        problems,
        f"{n_queries} queries per digit, against a separate gallery; each "
        f"digit keeps {gallery.min()}-{gallery.max()} gallery images of its own. "
        f"Gallery position 0 is dataset row {gallery_row}, and query {query} is "
        f"dataset row {query_row}.",
    )


def _roles(
    df: pd.DataFrame, embeddings: torch.Tensor, query: int
) -> Tuple[np.ndarray, np.ndarray]:
    """The dataset rows of the queries and of the gallery, after checking the
    checker's inputs.

    Raises:
        ValueError: When ``embeddings`` does not match ``df`` or ``query`` is no
            query's number.
    """
    if len(embeddings) != len(df):
        raise ValueError(
            f"embeddings has {len(embeddings)} rows, df {len(df)}: "
            "pass one embedding per row of df."
        )
    query_rows = np.flatnonzero(df["is_query"].astype(bool).to_numpy())
    gallery_rows = np.flatnonzero(df["is_gallery"].astype(bool).to_numpy())
    if not 0 <= query < len(query_rows):
        raise ValueError(f"query must be in 0..{len(query_rows) - 1}, got {query}.")
    return query_rows, gallery_rows


def _same_sequence(a: object, b: object) -> bool:
    """Whether two sequence ids are one sequence; empty cells (None, NaN) all
    count as one."""
    return (pd.isna(a) and pd.isna(b)) or (
        not pd.isna(a) and not pd.isna(b) and a == b
    )


@checker
def check_lost_match(
    sequence: Sequence,
    n_results: int,
    warning: Union[str, Sequence[str]],
    df: pd.DataFrame,
    embeddings: torch.Tensor,
    query: int = 1,
    k: int = 3,
) -> Verdict:
    """Exercise 00.3: a ``sequence`` column that leaves query ``query`` no correct
    item.

    The other queries must keep all their correct items. The reference masks by
    hand, without
    OML: a gallery row is skipped for a query when both share a sequence id.

    Args:
        sequence: The student's sequence id for each row of ``df``.
        n_results: How many items the student found OML retrieves for query
            ``query``.
        warning: The text of the warning OML gave (a string, or a list of the texts
            caught).
        df: The six-image dataframe (``label``, ``is_query``, ``is_gallery``), fresh
            index.
        embeddings: One embedding per row of ``df`` (only the row count is used).
        query: The query's number among the queries.
        k: The ``n_items`` of ``RetrievalResults``.

    Returns:
        The verdict.
    """
    query_rows, gallery_rows = _roles(df, embeddings, query)
    ids = list(sequence) if not isinstance(sequence, (str, bytes)) else None
    if ids is None or len(ids) != len(df):
        return _verdict(
            [
                f"give one sequence id per row of the dataframe ({len(df)}), e.g. "
                "a list of letters."
            ],
            "",
        )
    labels = df["label"].to_numpy()

    def kept(q_row: int) -> List[int]:
        return [
            int(g)
            for g in gallery_rows
            if g != q_row and not _same_sequence(ids[q_row], ids[g])
        ]

    def correct(q_row: int) -> List[int]:
        return [g for g in kept(q_row) if labels[g] == labels[q_row]]

    row = int(query_rows[query])
    empty = [i for i, x in enumerate(ids) if pd.isna(x)]
    lost = {
        int(r): [
            g
            for g in gallery_rows
            if labels[g] == labels[r] and g != r and g not in correct(int(r))
        ]
        for r in query_rows
        if r != row
    }
    lost = {r: rows for r, rows in lost.items() if rows}
    problems = []
    if empty:
        problems.append(
            f"rows {empty} have no id. OML numbers the ids with pd.factorize, "
            "which gives every empty cell one code, so those rows count as one "
            "sequence and skip one another: give every row an id."
        )
    elif correct(row):
        problems.append(
            f"query {query} (dataset row {row}) still has correct items, rows "
            f"{correct(row)}: a gallery row is skipped only when it has the "
            "query's own sequence id."
        )
    elif lost:
        r, rows = next(iter(lost.items()))
        problems.append(
            f"dataset row {r}, another query, lost its correct item(s) {rows}: "
            "they share its sequence id. Only the one query should lose its "
            "matches."
        )
    elif not kept(row):
        problems.append(
            f"query {query} (dataset row {row}) now gets no results at all: every "
            "gallery row shares its sequence id. Such a query has no correct item "
            "and no results, and OML scores it 1.0 in CMC, precision and mAP "
            "(oml/functional/metrics.py), a free perfect score. Give the other "
            "rows other ids, so that it still retrieves something."
        )
    elif not isinstance(n_results, (int, np.integer)) or isinstance(
        n_results, bool
    ):
        problems.append(f"give `n_results` as a whole number, not {n_results!r}.")
    elif n_results != min(k, len(kept(row))):
        hint = (
            " Only the gallery items left after the skip can be retrieved, and OML "
            "drops the skipped ones from the list."
            if n_results == k
            else ""
        )
        problems.append(
            f"{n_results} is not how many items query {query} gets: count "
            f"len(rr.retrieved_ids[{query}]).{hint}"
        )
    elif not _names_no_gts(warning):
        problems.append(
            f"{warning!r} is not OML's warning. Catch it with "
            "warnings.catch_warnings(record=True) and give str(w.message)."
        )
    n_kept = min(k, len(kept(row)))
    left = f"only {n_kept} results (rows {kept(row)[:k]} are all that is left)"
    return _verdict(
        problems,
        f"query {query} (dataset row {row}) shares its sequence with every "
        f"gallery image of its label, so it has no correct item and {left}. OML "
        "warns that some queries have no ground truth (gts). Such a query scores "
        "0 in CMC and mAP; its precision is 0/0, so OML's mean precision becomes "
        "NaN.",
    )


# as oml/retrieval/retrieval_results.py words it
NO_GTS_WARNING = "Some of the queries don't have available gts."


def _names_no_gts(warning: object) -> bool:
    """Whether ``warning`` (a text or a list of texts) holds OML's warning about
    queries with no gts."""
    texts = [warning] if isinstance(warning, str) else warning
    try:
        return any(
            isinstance(t, str) and NO_GTS_WARNING.lower() in t.lower()
            for t in texts
        )
    except TypeError:  # not iterable
        return False
