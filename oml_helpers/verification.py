"""Decisions on top of retrieval (chapter 08): "is it the same thing?" at a chosen
false match rate, kNN classification, and near-duplicates."""

from typing import Dict, Sequence

import numpy as np
import pandas as pd
import torch

from oml.retrieval import RetrievalResults
from oml.utils.misc_torch import pairwise_dist

from oml_helpers.retrieval import correct_mask


def pair_distances_rr(rr: RetrievalResults) -> Dict[str, np.ndarray]:
    """The distances of the retrieved pairs, split by whether the labels match, as
    OML's ``calc_fnmr_at_fmr_rr`` splits them.

    Args:
        rr: Retrieval results with ``gt_ids``; retrieve the whole gallery to see
            every pair.

    Returns:
        ``{"positive": ..., "negative": ...}``, float arrays.
    """
    correct = correct_mask(rr)
    distances = [d.float() for d in rr.distances]
    return {
        "positive": torch.cat([d[c] for d, c in zip(distances, correct)]).numpy(),
        "negative": torch.cat([d[~c] for d, c in zip(distances, correct)]).numpy(),
    }


def match_threshold(rr: RetrievalResults, fmr: float) -> float:
    """The distance below which a pair is called "the same thing", chosen so that
    a share ``fmr`` of the different-thing pairs falls below it.

    This is the threshold behind OML's ``calc_fnmr_at_fmr_rr``: the ``fmr``
    quantile of the negative distances, which OML computes but does not return.

    Args:
        rr: Labelled retrieval results to choose on (the whole gallery retrieved).
        fmr: The false match rate to allow, between 0 and 1.

    Returns:
        The threshold.
    """
    if not 0 <= fmr <= 1:
        raise ValueError(f"fmr is a rate between 0 and 1, got {fmr}.")
    negative = pair_distances_rr(rr)["negative"]
    if len(negative) == 0:
        raise ValueError(
            "rr holds no pair of different things, so no threshold separates them: "
            "retrieve more of the gallery (n_items)."
        )
    return float(np.quantile(negative, fmr))


def match_rates(rr: RetrievalResults, threshold: float) -> Dict[str, float]:
    """How a fixed threshold does: the false match rate (different things below
    it) and the false non-match rate (same things at or above it).

    Args:
        rr: Labelled retrieval results to score on.
        threshold: A distance, e.g. from ``match_threshold`` on other queries.

    Returns:
        ``{"fmr": ..., "fnmr": ...}``.
    """
    pairs = pair_distances_rr(rr)
    if len(pairs["positive"]) == 0 or len(pairs["negative"]) == 0:
        raise ValueError(
            "rr needs pairs of the same and of different things to score a "
            "threshold: retrieve more of the gallery (n_items)."
        )
    return {
        "fmr": float(np.mean(pairs["negative"] < threshold)),
        "fnmr": float(np.mean(pairs["positive"] >= threshold)),
    }


def knn_classify(
    rr: RetrievalResults, gallery_labels: Sequence[int], k: int = 5
) -> np.ndarray:
    """Each query's label by a vote of its ``k`` nearest gallery items.

    A tie goes to the tied label whose nearest item ranks first.

    Args:
        rr: Retrieval results (``retrieved_ids`` are gallery positions).
        gallery_labels: The label of each gallery position.
        k: Neighbours that vote, at least 1.

    Returns:
        The predicted labels, one per query.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    gallery_labels = np.asarray(gallery_labels)
    predicted = []
    for ids in rr.retrieved_ids:
        if len(ids) == 0:
            raise ValueError("A query retrieved nothing, so it has no neighbours.")
        votes = gallery_labels[ids[:k].long().numpy()]
        labels, first, counts = np.unique(
            votes, return_index=True, return_counts=True
        )
        best = counts == counts.max()
        predicted.append(labels[best][np.argmin(first[best])])
    return np.array(predicted)


def near_duplicates(
    embeddings: torch.Tensor, threshold: float, max_pairs: int = 100
) -> pd.DataFrame:
    """Pairs of items whose embeddings are closer than ``threshold``, nearest first.

    Args:
        embeddings: ``[n, dim]`` embeddings of a collection.
        threshold: Largest distance that counts as a near-duplicate.
        max_pairs: Pairs returned at the most.

    Returns:
        Columns ``i``, ``j`` (positions, ``i < j``) and ``distance``.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be [n, dim], got shape {tuple(embeddings.shape)}."
        )
    distances = pairwise_dist(embeddings.float(), embeddings.float())
    i, j = torch.triu_indices(len(embeddings), len(embeddings), offset=1)
    d = distances[i, j]
    close = torch.nonzero(d < threshold).flatten()
    close = close[torch.argsort(d[close])][:max_pairs]
    return pd.DataFrame(
        {"i": i[close].numpy(), "j": j[close].numpy(), "distance": d[close].numpy()}
    )
