"""Checker for exercise 00.1 (Data and setup): each query's correct items, as
gallery positions, worked out from a dataframe by hand and compared with OML's
``gt_ids``."""

import warnings
from pathlib import Path
from typing import Callable, Dict, List, Union

import pandas as pd
import torch
from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


def oml_gt_ids(
    frame: pd.DataFrame, dataset_root: Union[str, Path]
) -> List[List[int]]:
    """OML's ``gt_ids`` for ``frame``: one list of gallery positions per query.

    Args:
        frame: A validation dataframe with a fresh index (``label``, ``path``,
            ``is_query``, ``is_gallery``, perhaps ``sequence``).
        dataset_root: The folder the paths start from (no image is read).

    Returns:
        For each query, in query order, the gallery positions of its correct items.
    """
    dataset = ImageQueryGalleryLabeledDataset(frame, dataset_root=dataset_root)
    embeddings = torch.zeros(len(frame), 1)  # gt_ids do not depend on them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Some of the queries don't have ... gts"
        rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=1)
    return [ids.tolist() for ids in rr.gt_ids]


def gt_cases(toy: pd.DataFrame, val: pd.DataFrame) -> Dict[str, pd.DataFrame]:
    """The dataframes the check tries, each with a fresh index.

    Args:
        toy: Chapter 00's six images (rows 0 and 1 queries, the others gallery).
        val: The book's validation dataframe (every image query and gallery).

    Returns:
        A name for each case, and its dataframe.
    """
    columns = ["label", "path", "split", "is_query", "is_gallery"]
    toy = toy[columns].reset_index(drop=True)
    val = val[columns].reset_index(drop=True)
    with_sequences = toy.assign(sequence=["A", "B", "A", "C", "D", "E"])
    lone = toy.copy()
    lone.loc[1, "label"] = 7  # the only 7: nothing to find
    separate = val.copy()
    first_five = separate.groupby("label").cumcount() < 5
    separate["is_query"], separate["is_gallery"] = first_five, ~first_five
    bursts = val.assign(sequence=val.index // 3)  # three rows per sequence
    return {
        "the six images": toy,
        "the six images with their sequences": with_sequences,
        "the six images, query 1 relabelled as the only 7": lone,
        "the 896 validation digits, every image both query and gallery": val,
        "five queries per digit against a separate gallery": separate,
        "the 896 digits in sequences of three rows": bursts,
    }


def _as_lists(answer: object) -> List[List[int]]:
    return [
        [int(i) for i in torch.as_tensor(ids).flatten().tolist()] for ids in answer
    ]


def _hint(frame: pd.DataFrame, got: List[List[int]], want: List[List[int]]) -> str:
    """Why ``got`` differs from OML's ``want`` on ``frame``: the usual mistakes."""
    n_queries = int(frame["is_query"].astype(bool).sum())
    if len(got) != n_queries:
        return (
            f"you gave {len(got)} lists; give one per query ({n_queries}), in the "
            "order of the query rows."
        )
    gallery_rows = frame.index[frame["is_gallery"].astype(bool)].tolist()
    as_rows = [[gallery_rows[i] for i in ids] for ids in want]
    if got == as_rows and got != want:
        return (
            "those are dataset rows. gt_ids hold gallery positions: the number of "
            "each item among the gallery rows (0, 1, 2, ...), not its row."
        )
    if any(sorted(g) != g for g in got):
        return "list each query's positions in increasing order."
    extra = [set(g) - set(w) for g, w in zip(got, want)]
    q = next((q for q, e in enumerate(extra) if e), None)
    if q is not None:
        query_row = frame.index[frame["is_query"].astype(bool)][q]
        position = min(extra[q])
        row = gallery_rows[position] if position < len(gallery_rows) else None
        if row == query_row:
            return (
                f"query {q} lists gallery position {position}, which is its own "
                "row: a query is never its own match."
            )
        if "sequence" in frame and row is not None:
            if frame.loc[row, "sequence"] == frame.loc[query_row, "sequence"]:
                return (
                    f"query {q} lists gallery position {position}, which shares "
                    "its sequence: OML skips such items."
                )
        return (
            f"query {q} lists gallery position {position}, which is not one of "
            "its correct items. Is its label the query's?"
        )
    return (
        "some correct items are missing: compare each query's label with every "
        "gallery row's."
    )


@checker
def check_gt_ids(
    my_gt_ids: Callable[[pd.DataFrame], object],
    toy: pd.DataFrame,
    val: pd.DataFrame,
    dataset_root: Union[str, Path],
) -> Verdict:
    """Exercise 00.1: the student's ``my_gt_ids(frame)`` against OML's ``gt_ids``.

    Args:
        my_gt_ids: The student's function: a validation dataframe in, one list of
            gallery positions per query out.
        toy: Chapter 00's six images (``toy``, before its ``sequence`` column).
        val: The book's validation dataframe, ``df_val``.
        dataset_root: The folder of the images (no image is read).

    Returns:
        The verdict, naming the first case that differs and why.
    """
    problems: List[str] = []
    counts = {}
    for name, frame in gt_cases(toy, val).items():
        want = oml_gt_ids(frame, dataset_root)
        try:
            got = _as_lists(my_gt_ids(frame.copy()))
        except Exception as e:  # the student's code failed: say where
            problems.append(f"on {name}, your function raised {e!r}.")
            break
        if got != want:
            problems.append(f"on {name}: {_hint(frame, got, want)}")
            break
        counts[name] = sorted({len(ids) for ids in want})
    loo = counts.get(
        "the 896 validation digits, every image both query and gallery"
    )
    success = f"your lists equal OML's gt_ids on all {len(counts)} dataframes."
    separate = counts.get("five queries per digit against a separate gallery")
    if loo:
        success += (
            f" In the leave-one-out set each query has {loo[0]}-{loo[-1]} correct "
            "items: all the other images of its digit."
        )
    if separate:
        success += (
            " With five queries per digit against a separate gallery, each has "
            f"{separate[0]}-{separate[-1]}: every gallery image of its digit, "
            "since no query is in the gallery."
        )
    return _verdict(problems, success)
