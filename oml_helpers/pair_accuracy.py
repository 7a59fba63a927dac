"""How well a pairwise model judges held-out pairs, next to the extractor's own
distance (chapter 07)."""

from pathlib import Path
from typing import Dict, Union

import pandas as pd
import torch

from oml.datasets import ImageLabeledDataset
from oml.inference import inference, pairwise_inference
from oml.interfaces.models import IExtractor, IPairwiseModel

from oml_helpers.data import digit_transforms


def neighbour_pair_scores(
    extractor: IExtractor,
    pairwise_model: IPairwiseModel,
    df: pd.DataFrame,
    dataset_root: Union[str, Path],
    n_anchors_per_label: int = 20,
    k: int = 5,
    seed: int = 0,
    batch_size: int = 128,
) -> pd.DataFrame:
    """The close calls a re-ranker has to judge, scored by both the extractor and
    the pairwise model.

    A few anchor images of every label are each paired with their ``k`` nearest
    same-label images (positive pairs) and their ``k`` nearest other-label images
    (negative pairs) by the extractor's
    embeddings: the right and the wrong candidates that compete at the top of a
    result list.

    Args:
        extractor: The first stage.
        pairwise_model: The second stage; scored with its ``predict`` (a distance
            from 0 to 1), the anchor as the first image.
        df: Labelled rows in OML's format, e.g. the validation part (unseen digits).
        dataset_root: Folder the paths start from.
        n_anchors_per_label: Anchors drawn at random from each label.
        k: Pairs of each kind per anchor.
        seed: Seed of the draw of the anchors.
        batch_size: Images or pairs per forward pass.

    Returns:
        One row per pair, ``k`` positive then ``k`` negative pairs per anchor: ``i``
        (the anchor) and ``j`` (rows of ``df``), ``is_negative``,
        ``embedding_distance``, ``pairwise_distance``.
    """
    df = df.reset_index(drop=True)
    counts = df["label"].value_counts()
    smallest = int(counts.min()) if len(df) else 0
    if (
        n_anchors_per_label < 1
        or k < 1
        or n_anchors_per_label > smallest
        or k >= smallest
        or k > len(df) - int(counts.max())
    ):
        raise ValueError(
            f"n_anchors_per_label={n_anchors_per_label} and k={k} do not fit df: "
            f"its smallest label has {smallest} images; use 1 <= "
            f"n_anchors_per_label <= {smallest} and 1 <= k < {smallest}, with at "
            "least k images outside every label."
        )
    dataset = ImageLabeledDataset(
        df, dataset_root=dataset_root, transform=digit_transforms(False)
    )
    embeddings = inference(extractor, dataset, batch_size=batch_size)
    anchors = torch.as_tensor(
        df.groupby("label", sort=True)
        .sample(n=n_anchors_per_label, random_state=seed)
        .index.to_numpy()
    )
    labels = torch.as_tensor(df["label"].to_numpy())
    distances = torch.cdist(embeddings[anchors], embeddings)
    same = labels[anchors][:, None] == labels[None, :]
    itself = torch.zeros_like(same)
    itself[torch.arange(len(anchors)), anchors] = True
    positives = distances.masked_fill(~same | itself, float("inf")).topk(
        k, largest=False
    )
    negatives = distances.masked_fill(same, float("inf")).topk(k, largest=False)
    ids1 = anchors.repeat_interleave(2 * k)
    ids2 = torch.cat([positives.indices, negatives.indices], dim=1).flatten()
    pairs = list(zip(ids1.tolist(), ids2.tolist()))
    scores = pairwise_inference(
        pairwise_model.eval(),
        dataset,
        pairs,
        num_workers=0,
        batch_size=batch_size,
        verbose=False,
    )
    return pd.DataFrame(
        {
            "i": ids1.numpy(),
            "j": ids2.numpy(),
            "is_negative": (labels[ids1] != labels[ids2]).numpy(),
            "embedding_distance": torch.cat(
                [positives.values, negatives.values], dim=1
            )
            .flatten()
            .numpy(),
            "pairwise_distance": scores.numpy(),
        }
    )


def best_threshold(distances: pd.Series, is_negative: pd.Series) -> float:
    """The threshold ("different" at or above it) with the best balanced accuracy on
    these pairs.

    Args:
        distances: One distance per pair.
        is_negative: Whether each pair shows two different labels.

    Returns:
        A threshold halfway between two neighbouring distances.
    """
    values = torch.tensor(sorted(set(distances.tolist())))
    if len(values) < 2 or is_negative.all() or not is_negative.any():
        raise ValueError(
            "Need positive and negative pairs with at least two distinct "
            "distances to choose a threshold."
        )
    candidates = ((values[1:] + values[:-1]) / 2).tolist()
    return max(
        candidates,
        key=lambda th: pair_accuracy(distances, is_negative, th)["balanced"],
    )


def pair_accuracy(
    distances: pd.Series, is_negative: pd.Series, threshold: float
) -> Dict[str, float]:
    """How many pairs a threshold judges right: a pair is called "different" when
    its distance >= threshold.

    Args:
        distances: One distance per pair.
        is_negative: Whether each pair shows two different labels.
        threshold: The threshold, chosen on other pairs (``best_threshold``).

    Returns:
        ``{"positives": ..., "negatives": ..., "balanced": ...}``: the share right
        among same-label pairs, among different-label pairs, and their mean.
    """
    if len(distances) != len(is_negative):
        raise ValueError(
            f"{len(distances)} distances for {len(is_negative)} pairs: give one "
            "distance per pair."
        )
    called_different = pd.Series(distances).to_numpy() >= threshold
    negative = pd.Series(is_negative).to_numpy().astype(bool)
    positives = float((~called_different[~negative]).mean())
    negatives = float(called_different[negative].mean())
    return {
        "positives": positives,
        "negatives": negatives,
        "balanced": (positives + negatives) / 2,
    }


def order_accuracy(pairs: pd.DataFrame, column: str) -> pd.Series:
    """Per anchor, the share of (positive, negative) pairs whose positive has the
    smaller distance.

    A threshold-free measure of what a re-ranker needs: that within one query's
    candidates the right ones come before the wrong ones, whatever the scale of that
    query's distances. A tie counts half.

    Args:
        pairs: One row per pair with ``i`` (the anchor), ``is_negative`` and the
            distance column, as ``neighbour_pair_scores`` returns them.
        column: The distance to judge by, e.g. ``"embedding_distance"``.

    Returns:
        One value from 0 to 1 per anchor, indexed by ``i``.
    """
    missing = {"i", "is_negative", column} - set(pairs.columns)
    if missing:
        raise ValueError(
            f"pairs has no column {sorted(missing)}: pass neighbour_pair_scores' "
            "table."
        )
    shares = {}
    for anchor, group in pairs.groupby("i"):
        negative = group["is_negative"].to_numpy().astype(bool)
        values = group[column].to_numpy()
        if negative.all() or not negative.any():
            raise ValueError(
                f"anchor {anchor} needs positive and negative pairs to be ordered."
            )
        gaps = values[~negative][:, None] - values[negative][None, :]
        shares[anchor] = float((gaps < 0).mean() + 0.5 * (gaps == 0).mean())
    return pd.Series(shares, name=column)
