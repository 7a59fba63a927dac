"""Checker for exercise 08.2 of chapter 08, Your own images: which same-thing pairs
a match threshold misses when the pairs are split by colour mode (both images
colour, or both greyscale, against one of each), and which fix addresses it."""

from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch
from PIL import Image

from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


def _colour_modes(dataset: Any, root: Any) -> np.ndarray:
    """The colour mode (``"RGB"``, ``"L"``, ...) of each row of ``dataset.df``,
    read from its file."""
    modes = []
    for path in dataset.df["path"]:
        with Image.open(Path(root) / path) as image:
            modes.append(image.mode)
    return np.array(modes)


def fnmr_by_colour_mode(
    rr: RetrievalResults, dataset: Any, root: Any, threshold: float
) -> Dict[str, Any]:
    """The false non-match rate at ``threshold``, split by whether the two images of
    a same-thing pair have the same colour mode.

    Args:
        rr: Labelled retrieval results over the whole gallery of ``dataset``.
        dataset: The ``ImageQueryGalleryLabeledDataset`` that ``rr`` searched.
        root: The folder that the dataframe's paths are relative to.
        threshold: A distance; pairs at or above it are non-matches.

    Returns:
        ``{"same mode": ..., "mixed": ..., "all": ...}`` FNMRs, the pair counts
        ``"n same mode"`` and ``"n mixed"``, and the wrong answers the checker
        recognises: the two groups' FMRs (``"fmr same mode"``, ``"fmr mixed"``)
        and the misses of each group over all same-thing pairs
        (``"share same mode"``, ``"share mixed"``).
    """
    modes = _colour_modes(dataset, root)
    query_modes = modes[dataset.get_query_ids().numpy()]
    gallery_modes = modes[dataset.get_gallery_ids().numpy()]
    miss = {True: [], False: []}  # same mode or not -> missed, per pair
    false_match = {True: [], False: []}
    for q, (d, ids, gt) in enumerate(
        zip(rr.distances, rr.retrieved_ids, rr.gt_ids)
    ):
        positive = torch.isin(ids, gt).numpy()
        same = gallery_modes[ids.numpy()] == query_modes[q]
        far = (d >= threshold).numpy()
        for kind in (True, False):
            miss[kind] += list(far[positive & (same == kind)])
            false_match[kind] += list(~far[~positive & (same == kind)])
    n_positive = len(miss[True]) + len(miss[False])
    if not miss[True] or not miss[False]:
        raise ValueError(
            "Both kinds of same-thing pair are needed, same colour mode and mixed; "
            f"rr has {len(miss[True])} and {len(miss[False])}."
        )
    return {
        "same mode": float(np.mean(miss[True])),
        "mixed": float(np.mean(miss[False])),
        "all": float(np.sum(miss[True] + miss[False]) / n_positive),
        "n same mode": len(miss[True]),
        "n mixed": len(miss[False]),
        "fmr same mode": float(np.mean(false_match[True])),
        "fmr mixed": float(np.mean(false_match[False])),
        "share same mode": float(np.sum(miss[True]) / n_positive),
        "share mixed": float(np.sum(miss[False]) / n_positive),
    }


FIXES = {
    "a": "train longer with the same transform",
    "b": "add T.RandomGrayscale to the training transform",
    "c": "raise the threshold",
}


@checker
def check_fnmr_by_mode(
    fnmr_by_mode: Any,
    rr_test: RetrievalResults,
    test_set: Any,
    root: Any,
    threshold: float,
    guess: Any = None,
    fix: Any = None,
) -> Verdict:
    """Exercise 08.2: which same-thing pairs the threshold misses, split by colour
    mode, and the fix for the worse group.

    Args:
        fnmr_by_mode: The student's ``{"same mode": ..., "mixed": ...}``.
        rr_test: The test queries' results over the whole gallery.
        test_set: The dataset ``rr_test`` searched.
        root: The folder its paths are relative to.
        threshold: The threshold chosen on the tuning queries.
        guess: The student's prediction of the mixed FNMR; echoed.
        fix: ``"a"``, ``"b"`` or ``"c"`` (see ``FIXES``).

    Returns:
        The verdict: right when both rates and the fix are right.
    """
    if not isinstance(fnmr_by_mode, dict) or set(fnmr_by_mode) != {
        "same mode",
        "mixed",
    }:
        return _verdict(
            ['give a dict with exactly two keys, "same mode" and "mixed", '
             "each a share between 0 and 1."],
            "",
        )  # fmt: skip
    given = {}
    for key, value in fnmr_by_mode.items():
        if torch.is_tensor(value) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(
            value, (float, int, np.floating)
        ):
            return _verdict(
                [f'fnmr_by_mode["{key}"] is a {type(value).__name__}: give one '
                 "number, the share of that group's same-thing pairs missed."],
                "",
            )  # fmt: skip
        given[key] = float(value)
    right = fnmr_by_colour_mode(rr_test, test_set, root, threshold)
    tol = 0.5 / min(right["n same mode"], right["n mixed"])

    def near(a: float, b: float) -> bool:
        return bool(np.isclose(a, b, rtol=0, atol=tol))

    ok = {k: near(given[k], right[k]) for k in ("same mode", "mixed")}
    if not all(ok.values()):
        pair = (given["same mode"], given["mixed"])
        if near(pair[0], right["mixed"]) and near(pair[1], right["same mode"]):
            hint = "The two are swapped: a mixed pair is one RGB and one L image."
        elif near(pair[0], right["all"]) and near(pair[1], right["all"]):
            hint = (
                "Both are the FNMR of all same-thing pairs: split the pairs by "
                "whether the query's and the gallery image's modes agree."
            )
        elif near(pair[0], right["fmr same mode"]) and near(
            pair[1], right["fmr mixed"]
        ):
            hint = (
                "Those are the shares of different-thing pairs below the threshold "
                "(false matches): keep only the pairs whose item is in gt_ids."
            )
        elif near(pair[0], right["share same mode"]) and near(
            pair[1], right["share mixed"]
        ):
            hint = (
                "Those are each group's misses over all same-thing pairs: divide "
                "by the number of same-thing pairs in the group."
            )
        else:
            hint = (
                "For each test query, keep the retrieved pairs whose item is in "
                "its gt_ids, compare the two files' modes, and in each group take "
                "the share at or above the threshold."
            )
        wrong = [k for k, v in ok.items() if not v]
        return _verdict(
            [f'fnmr_by_mode["{wrong[0]}"] is not {given[wrong[0]]:.3f}. {hint}'], ""
        )
    measured = (
        f"of the {right['n same mode'] + right['n mixed']} same-thing test pairs, "
        f"{right['n same mode']} share a colour mode and {right['n mixed']} are "
        f"mixed (one colour, one greyscale). At the threshold {threshold:.3f} the "
        f"same-mode pairs miss {right['same mode']:.2f}, the mixed ones "
        f"{right['mixed']:.2f}, all together {right['all']:.2f}."
    )
    if guess is not None:
        measured += f" You guessed {float(guess):.2f} for the mixed ones."
    answer = fix.strip().lower().strip("()") if isinstance(fix, str) else fix
    if answer not in FIXES:
        return _verdict(
            [f"The rates are right: {measured} Now set fix to \"a\", \"b\" or "
             "\"c\"."],
            "",
        )  # fmt: skip
    if answer == "c":
        return _verdict(
            [f"The rates are right: {measured} But one threshold serves every "
             "pair: raising it until mixed pairs pass lets more different things "
             "match too, for all queries. Which fix changes where a grey view "
             "lands?"],
            "",
        )  # fmt: skip
    if answer == "a":
        return _verdict(
            [f"The rates are right: {measured} Training longer replays the same "
             "views, in which grey views of colour things are as rare as before: "
             "which fix makes the model meet more of them?"],
            "",
        )  # fmt: skip
    return _verdict(
        [],
        f"{measured} A grey view lands far from the colour views of its thing: "
        "colour is much of what the model learnt. RandomGrayscale turns some "
        "training views grey, so the loss must pull them to their colour "
        "siblings; a threshold cannot fix where a view lands.",
    )
