"""How well a pairwise model judges held-out pairs, next to the extractor's own distance (chapter 07)."""

from pathlib import Path
from typing import Dict, Union

import pandas as pd
import torch

from oml.datasets import ImageLabeledDataset
from oml.inference import inference, pairwise_inference
from oml.interfaces.models import IExtractor, IPairwiseModel
from oml.miners.pairs import PairsMiner

from oml_helpers.training import digit_transforms


def hard_pair_scores(
    extractor: IExtractor,
    pairwise_model: IPairwiseModel,
    df: pd.DataFrame,
    dataset_root: Union[str, Path],
    batch_size: int = 128,
) -> pd.DataFrame:
    """The pairs the extractor finds hardest in ``df``, scored by both the extractor and the pairwise model.

    ``PairsMiner(hard_mining=True)`` runs once over all of ``df``: each image with its farthest
    same-label image (a positive pair) and its nearest other-label image (a negative pair), by the
    extractor's embeddings; a pair picked twice is kept once.

    Args:
        extractor: The first stage.
        pairwise_model: The second stage; scored with its ``predict`` (a distance from 0 to 1).
        df: Labelled rows in OML's format, e.g. the validation part (unseen digits).
        dataset_root: Folder the paths start from.
        batch_size: Images or pairs per forward pass.

    Returns:
        One row per pair: ``i``, ``j`` (rows of ``df``), ``is_negative``, ``embedding_distance``,
        ``pairwise_distance``.
    """
    if df["label"].value_counts().min() < 2:
        raise ValueError("Every label in df needs at least 2 images to form a positive pair; drop the rarer labels.")
    dataset = ImageLabeledDataset(df, dataset_root=dataset_root, transform=digit_transforms(False))
    embeddings = inference(extractor, dataset, batch_size=batch_size)
    ids1, ids2, is_negative = PairsMiner(hard_mining=True).sample(features=embeddings, labels=df["label"].tolist())
    distances = torch.linalg.vector_norm(embeddings[ids1] - embeddings[ids2], dim=1)
    pairs = list(zip(ids1.tolist(), ids2.tolist()))
    scores = pairwise_inference(pairwise_model.eval(), dataset, pairs, num_workers=0, batch_size=batch_size, verbose=False)
    return pd.DataFrame(
        {
            "i": ids1.numpy(),
            "j": ids2.numpy(),
            "is_negative": is_negative.numpy(),
            "embedding_distance": distances.numpy(),
            "pairwise_distance": scores.numpy(),
        }
    )


def best_threshold(distances: pd.Series, is_negative: pd.Series) -> float:
    """The threshold ("different" at or above it) with the best balanced accuracy on these pairs.

    Args:
        distances: One distance per pair.
        is_negative: Whether each pair shows two different labels.

    Returns:
        A threshold halfway between two neighbouring distances.
    """
    values = torch.tensor(sorted(set(distances.tolist())))
    if len(values) < 2 or is_negative.all() or not is_negative.any():
        raise ValueError("Need positive and negative pairs with at least two distinct distances to choose a threshold.")
    candidates = ((values[1:] + values[:-1]) / 2).tolist()
    return max(candidates, key=lambda th: pair_accuracy(distances, is_negative, th)["balanced"])


def pair_accuracy(distances: pd.Series, is_negative: pd.Series, threshold: float) -> Dict[str, float]:
    """How many pairs a threshold judges right: a pair is called "different" when its distance >= threshold.

    Args:
        distances: One distance per pair.
        is_negative: Whether each pair shows two different labels.
        threshold: The threshold, chosen on other pairs (``best_threshold``).

    Returns:
        ``{"positives": ..., "negatives": ..., "balanced": ...}``: the share right among same-label
        pairs, among different-label pairs, and their mean.
    """
    if len(distances) != len(is_negative):
        raise ValueError(f"{len(distances)} distances for {len(is_negative)} pairs: give one distance per pair.")
    called_different = pd.Series(distances).to_numpy() >= threshold
    negative = pd.Series(is_negative).to_numpy().astype(bool)
    positives = float((~called_different[~negative]).mean())
    negatives = float(called_different[negative].mean())
    return {"positives": positives, "negatives": negatives, "balanced": (positives + negatives) / 2}
