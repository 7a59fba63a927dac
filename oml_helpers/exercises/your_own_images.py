"""Checkers for the exercises of chapter 08, Your own images: what the other tiles
of a query's own photo cost (08.3). Exercise 08.1 (kNN with "unknown") is checked
in ``own_images_knn``, 08.2 (misses by colour mode) in ``own_images_modes``."""

from typing import Any, Sequence

import numpy as np
import torch

from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


def _photo(class_name: str) -> str:
    return str(class_name).rsplit("_", 1)[0]


def same_photo_cmc1(
    rr: RetrievalResults, query_names: Sequence[str], gallery_names: Sequence[str]
) -> tuple:
    """CMC@1 of ``rr`` as it is, and with each query's other tiles of its own photo
    taken out of its gallery (a tile ``coffee_11`` is of the photo ``coffee``).

    Returns:
        ``(with_them, without_them)``, two floats.
    """
    query_names = np.asarray(query_names)
    gallery_names = np.asarray(gallery_names)
    with_them, without_them = [], []
    for q, ids in enumerate(rr.retrieved_ids):
        found = gallery_names[ids.numpy()]
        mine = query_names[q]
        other_tile = np.array(
            [_photo(f) == _photo(mine) and f != mine for f in found], dtype=bool
        )
        with_them.append(found[0] == mine)
        kept = found[~other_tile]
        without_them.append(len(kept) > 0 and kept[0] == mine)
    return float(np.mean(with_them)), float(np.mean(without_them))


@checker
def check_same_photo_cost(
    cmc1_without: float,
    rr: RetrievalResults,
    query_names: Sequence[str],
    gallery_names: Sequence[str],
    guess: Any = None,
    raised: Any = None,
) -> Verdict:
    """Exercise 08.3: CMC@1 when each query's gallery loses the other tiles of the
    query's own photo.

    Args:
        cmc1_without: The student's CMC@1 without those tiles.
        rr: The test queries' retrieval results.
        query_names: One class name per query of ``rr``.
        gallery_names: One class name per gallery position.
        guess: The student's prediction, written first; echoed beside the measure.
        raised: The student's answer to "which number would a split by tile
            most likely raise?": ``"with"`` or ``"without"`` (the tiles).

    Returns:
        The verdict: right when both the number and ``raised`` are right.
    """
    if torch.is_tensor(cmc1_without):
        cmc1_without = cmc1_without.item()
    if not isinstance(cmc1_without, (float, int, np.floating)) or isinstance(
        cmc1_without, bool
    ):
        return _verdict(
            [f"give CMC@1 as one number, not {type(cmc1_without).__name__}."], ""
        )
    if len(query_names) != len(rr.retrieved_ids):
        raise ValueError(
            f"query_names has {len(query_names)} names for "
            f"{len(rr.retrieved_ids)} queries: give one class name per query of rr."
        )
    with_them, without_them = same_photo_cmc1(rr, query_names, gallery_names)
    tol = 0.5 / len(rr.retrieved_ids)
    if not np.isclose(cmc1_without, without_them, rtol=0, atol=tol):
        if np.isclose(cmc1_without, with_them, rtol=0, atol=tol):
            hint = (
                " That is CMC@1 with the other tiles still there: drop them from "
                "each query's list before you take its first answer."
            )
        elif np.isclose(cmc1_without, 0, atol=tol):
            hint = (
                " Keep the query's own tile: drop only the other tiles of its "
                "photo."
            )
        else:
            hint = (
                " For each query, drop the retrieved images of the same photo but "
                "another tile, then check whether the first one left is its tile."
            )
        return _verdict(
            [f"CMC@1 without them is not {cmc1_without:.3f}.{hint}"], ""
        )
    measured = (
        f"CMC@1 is {with_them:.2f} with the other tiles of the query's photo in "
        f"the gallery and {without_them:.2f} without them."
    )
    if guess is not None:
        measured += f" You guessed {float(guess):.2f}."
    answer = raised.strip().lower() if isinstance(raised, str) else raised
    if answer not in ("with", "without"):
        return _verdict(
            [
                f"{measured} Now answer the last question: set raised to "
                '"with" or "without", the number a split by tile would most '
                "likely raise."
            ],
            "",
        )
    if answer == "without":
        return _verdict(
            [
                f"{measured} Without those tiles the model never has to tell a "
                "photo's parts apart, and training on other tiles of the same "
                "photos would teach exactly that: which number would it help?"
            ],
            "",
        )
    return _verdict(
        [],
        f"{measured} Those tiles are the hardest distractors. A split by tile "
        f"would most likely raise the first number, {with_them:.2f}: training "
        "would have seen other tiles of the same photos and learnt to tell a "
        "photo's tiles apart, the very skill these distractors test, so the "
        "score would look better than on photos the model never saw.",
    )
