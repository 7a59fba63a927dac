"""Checkers for the exercises of chapter 00 (the dataframe format, gallery positions and rows)."""

from pathlib import Path
from typing import List, Sequence, Union

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
    """How many images of each digit scikit-learn ships, from the data, not from the book's code."""
    return pd.Series(load_digits().target).value_counts().sort_index()


def _split_problems(df: pd.DataFrame) -> List[str]:
    """What differs from the book's split: every image kept, 0-4 train, 5-9 validation."""
    counts = _digit_counts()
    train, val = split_dataframe(df)
    n_train, n_val = int(counts[counts.index < 5].sum()), int(counts[counts.index >= 5].sum())
    if len(df) != int(counts.sum()):
        return [f"the dataframe has {len(df)} rows; keep all {int(counts.sum())} images, "
                "changing only the roles of the validation rows."]
    if len(train) != n_train or set(train["label"]) != set(range(5)):
        return [f"the training rows changed ({len(train)} rows, labels {sorted(set(train['label']))}); "
                f"keep the {n_train} training images of the digits 0-4 as they are."]
    if len(val) != n_val or set(val["label"]) != set(range(5, 10)):
        return [f"the validation rows changed ({len(val)} rows, labels {sorted(set(val['label']))}); "
                f"keep all {n_val} images of the digits 5-9."]
    return []


@checker
def check_separate_queries(
    df: pd.DataFrame, dataset_root: Union[str, Path], n_queries: int = 20
) -> Verdict:
    """Exercise 00.2: per validation digit, the first ``n_queries`` rows query only, the rest gallery.

    Args:
        df: The student's dataframe, made from the book's ``df`` (all 1,797 digits).
        dataset_root: The folder of the images.
        n_queries: Queries asked for per validation digit.

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
            problems.append(f"{both.sum()} rows are still both query and gallery; "
                            "each should be one or the other.")
        elif (~(val["is_query"] | val["is_gallery"])).any():
            problems.append("some validation rows are neither query nor gallery; "
                            "every row past the first queries of its digit is a gallery item.")
        elif (per_label != n_queries).any() or len(per_label) != val["label"].nunique():
            problems.append(f"queries per label are {per_label.to_dict()}; "
                            f"each label needs exactly {n_queries}.")
        else:
            for label, group in val.groupby("label", sort=True):
                if not group["is_query"].iloc[:n_queries].all():
                    problems.append(f"for label {label} the queries are not the first "
                                    f"{n_queries} rows of that label.")
                    break
    return _verdict(problems, f"{n_queries} queries per digit, searched against a separate gallery; "
                    f"every digit keeps {gallery.min()}-{gallery.max()} gallery images of its own, "
                    "so each query still has matches to find.")


def _top_rows(embeddings: torch.Tensor, row: int, gallery_rows: np.ndarray, k: int) -> List[int]:
    """Dataset rows of the ``k`` gallery items nearest to dataset row ``row``, itself left out."""
    others = gallery_rows[gallery_rows != row]
    distances = torch.cdist(embeddings[[row]].float(), embeddings[others].float())[0]
    order = torch.argsort(distances, stable=True)[:k]
    return others[order.numpy()].tolist()


@checker
def check_query_rows(
    rows: Sequence[int], df: pd.DataFrame, embeddings: torch.Tensor, query: int = 1, k: int = 3
) -> Verdict:
    """Exercise 00.1: the dataset rows of query number ``query``'s ``k`` first results.

    The reference ranks the gallery rows of ``df`` by Euclidean distance itself, without OML.

    Args:
        rows: The student's answer: dataset rows, nearest first.
        df: The dataframe of the dataset, with a fresh index (row i is dataset item i).
        embeddings: One embedding per row of ``df``.
        query: The query's number among the queries (0 is the first query).
        k: How many results.

    Returns:
        The verdict.
    """
    if len(embeddings) != len(df):
        raise ValueError(f"embeddings has {len(embeddings)} rows, df {len(df)}: "
                         "pass one embedding per row of df.")
    query_rows = np.flatnonzero(df["is_query"].astype(bool).to_numpy())
    gallery_rows = np.flatnonzero(df["is_gallery"].astype(bool).to_numpy())
    if not 0 <= query < len(query_rows):
        raise ValueError(f"query must be in 0..{len(query_rows) - 1}, got {query}.")
    row = int(query_rows[query])
    truth = _top_rows(embeddings, row, gallery_rows, k)
    try:
        answer = [int(x) for x in torch.as_tensor(rows).flatten().tolist()]
    except (TypeError, ValueError, RuntimeError):
        return _verdict([f"give a list of {k} dataset rows, e.g. [4, 0, 2], not {rows!r}."], "")
    positions = [int(np.flatnonzero(gallery_rows == r)[0]) for r in truth]
    problems = []
    if answer == truth:
        pass
    elif answer == positions:
        problems.append(f"{answer} are gallery positions (what rr.retrieved_ids holds), not dataset "
                        "rows; map them with dataset.get_gallery_ids().")
    elif query < len(df) and query != row and answer == _top_rows(embeddings, query, gallery_rows, k):
        problems.append(f"those are the results of dataset row {query}. Query {query} counts "
                        f"queries: it is dataset row {row}.")
    elif len(answer) != k:
        problems.append(f"give {k} rows, the query's first {k} results; you gave {len(answer)}.")
    elif sorted(answer) == sorted(truth):
        problems.append("the right rows, in the wrong order: nearest first.")
    else:
        problems.append(f"{answer} is not it. Find query {query}'s dataset row with "
                        "get_query_ids(), rank the gallery by distance to it, and map the "
                        "gallery positions to rows with get_gallery_ids().")
    return _verdict(problems, f"query {query} is dataset row {row}; its first {k} results are "
                    f"gallery positions {positions}, dataset rows {truth}.")
