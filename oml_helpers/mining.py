"""Looking past the ranking (chapter 01): how far apart a model puts the digits,
and what int8 storage does to it."""

from typing import Dict, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.inference import inference

from oml_helpers.metrics import embedding_metrics


def int8_round_trip(embeddings: Tensor) -> Tensor:
    """The embeddings as they come back from int8 codes with one scale per row.

    Each row is stored as ``scale * codes`` with ``scale = max |row| / 127`` and
    ``codes`` the rounded ``row / scale`` (integers from -127 to 127): a quarter of
    float32's bytes. Vector stores usually fit their ranges on the data instead (one
    scale per dimension, or quantiles), which a collapse to a point hurts far less.

    Args:
        embeddings: ``[n, dim]`` float embeddings.

    Returns:
        ``[n, dim]`` float32 ``scale * codes``, each coordinate within half a step
        (``scale / 2``) of the original; an all-zero row stays zero.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be [n, dim], got shape {tuple(embeddings.shape)}."
        )
    vectors = embeddings.detach().cpu().float().numpy()
    scale = np.abs(vectors).max(axis=1, initial=0) / np.float32(127)
    codes = np.clip(
        np.rint(vectors / np.where(scale > 0, scale, 1)[:, None]), -127, 127
    )
    return torch.from_numpy(
        (codes.astype(np.int8).astype(np.float32) * scale[:, None]).astype(
            np.float32
        )
    )


def embedding_report(
    models: Dict[str, nn.Module], dataset: ImageQueryGalleryLabeledDataset
) -> pd.DataFrame:
    """Ranking and distances of each model on a labelled query/gallery dataset.

    Args:
        models: Name to extractor (e.g. ``{"all triplets": model, "hard":
            hard_model}``).
        dataset: A labelled query/gallery dataset (the unseen digits).

    Returns:
        One row per model: ``cmc/1``; ``same label`` and ``other label``, the median
        distance of all pairs of images with the same and with different labels; and
        ``cmc/1 int8``, CMC@1 once the embeddings are stored as int8
        (``int8_round_trip``).
    """
    if not models:
        raise ValueError("No models given: pass a dict of name to extractor.")
    labels = dataset.get_labels()
    report = {}
    for name, model in models.items():
        embeddings = inference(model, dataset, batch_size=256).float()
        distances, same = pair_distances(embeddings, labels)
        report[name] = {
            "cmc/1": _cmc1(embeddings, dataset),
            "same label": float(distances[same].median()),
            "other label": float(distances[~same].median()),
            "cmc/1 int8": _cmc1(int8_round_trip(embeddings), dataset),
        }
    return pd.DataFrame(report).T


def pair_distances(
    embeddings: Tensor, labels: Sequence[int]
) -> Tuple[Tensor, Tensor]:
    """The Euclidean distance of every pair of items, each pair once, and whether
    the two share a label.

    Args:
        embeddings: ``[n, dim]``; the distances keep their dtype (pass ``.double()``
            for float64).
        labels: The label of each item.

    Returns:
        ``(distances, same)``: two tensors of ``n (n - 1) / 2`` values, the pairs
        ``i < j`` in row order (``torch.triu_indices``); ``same`` is boolean.
    """
    labels = torch.as_tensor(np.asarray(labels))
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(
            f"embeddings must be [n, dim] with n = len(labels) = {len(labels)}, "
            f"got {tuple(embeddings.shape)}."
        )
    rows, cols = torch.triu_indices(len(labels), len(labels), offset=1)
    vectors = embeddings.detach().cpu()
    distances = torch.cdist(vectors, vectors)[rows, cols]
    return distances, labels[rows] == labels[cols]


def _cmc1(embeddings: Tensor, dataset: ImageQueryGalleryLabeledDataset) -> float:
    # n_items=10 as in retrieval_metrics, so that near-ties at rank 1 break the same
    # way there
    return embedding_metrics(embeddings, dataset, top_k=(1,), n_items=10)[0][
        "cmc/1"
    ]
