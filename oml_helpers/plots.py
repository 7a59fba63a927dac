"""Figures the chapters share."""

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor

from oml.const import LABELS_COLUMN, PATHS_COLUMN

from oml_helpers.image_search import read_image
from oml_helpers.mining import pair_distances


def show_images(
    df: pd.DataFrame,
    dataset_root: Union[str, Path],
    per_label: int = 8,
    labels: Optional[Sequence[int]] = None,
) -> plt.Figure:
    """A grid of images from an OML dataframe: one row per label.

    Args:
        df: Dataframe in OML's format.
        dataset_root: Folder the paths start from.
        per_label: Images shown per label (the first ones in the dataframe).
        labels: Labels to show, in order; all of them by default.

    Returns:
        The figure.
    """
    labels = sorted(df[LABELS_COLUMN].unique()) if labels is None else list(labels)
    if not labels or per_label < 1:
        raise ValueError(
            "Nothing to show: give at least one label and per_label >= 1."
        )
    absent = [label for label in labels if not (df[LABELS_COLUMN] == label).any()]
    if absent:
        raise ValueError(f"Label(s) {absent} have no rows in the dataframe.")
    fig, axes = plt.subplots(
        len(labels),
        per_label,
        figsize=(per_label * 0.9, len(labels) * 0.95),
        squeeze=False,
    )
    for row, label in zip(axes, labels):
        paths = (
            df.loc[df[LABELS_COLUMN] == label, PATHS_COLUMN]
            .head(per_label)
            .tolist()
        )
        for ax, path in zip(row, paths + [None] * per_label):
            ax.axis("off")
            if path is not None:
                with Image.open(Path(dataset_root) / path) as image:
                    ax.imshow(image, cmap="gray")
        row[0].set_title(f"label {label}", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_training_logs(
    logs: pd.DataFrame, window: int = 5, title: str = ""
) -> plt.Figure:
    """Loss, share of active triplets and mean distances over the training steps.

    Args:
        logs: What ``train_extractor`` returns (columns ``loss``, ``active_tri``,
            ``pos_dist``, ``neg_dist``).
        window: Steps in the moving average drawn over the raw values (1 draws raw
            values only).
        title: Figure title.

    Returns:
        The figure.
    """
    missing = {"loss", "active_tri", "pos_dist", "neg_dist"} - set(logs.columns)
    if missing:
        raise ValueError(
            f"logs lack the columns {sorted(missing)}; pass what train_extractor "
            "returns."
        )
    if logs.empty:
        raise ValueError("logs are empty: train for at least one step.")
    smooth = logs.rolling(window, min_periods=1).mean()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    panels = [
        ("loss", ["loss"]),
        ("active triplets (share)", ["active_tri"]),
        ("mean distance", ["pos_dist", "neg_dist"]),
    ]
    for ax, (name, columns) in zip(axes, panels):
        for column in columns:
            line = ax.plot(logs[column], alpha=0.3)[0]
            ax.plot(smooth[column], color=line.get_color(), label=column)
        ax.set_title(name)
        ax.set_xlabel("step")
        if len(columns) > 1:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pca(
    embeddings: Dict[str, Tensor], labels: Sequence[int], title: str = ""
) -> plt.Figure:
    """Each set of embeddings projected on its own first two principal components,
    coloured by label.

    Args:
        embeddings: Panel title to embeddings ``[n, dim]`` (e.g. before and after
            training), all of the same ``n`` items, in the order of ``labels``.
        labels: The label of each item.
        title: Figure title.

    Returns:
        The figure; each panel's axis labels give the share of the variance its
        component keeps.
    """
    labels = np.asarray(labels)
    fig, axes = _panels(embeddings, len(labels), (4.2, 4), min_dim=2)
    for ax, (name, emb) in zip(axes, embeddings.items()):
        centred = emb.detach().cpu().double() - emb.detach().cpu().double().mean(
            dim=0
        )
        _, singular, vt = torch.linalg.svd(centred, full_matrices=False)
        points = (centred @ vt[:2].T).numpy()
        share = (singular**2 / (singular**2).sum()).numpy()
        for label in np.unique(labels):
            at = labels == label
            ax.scatter(
                points[at, 0], points[at, 1], s=6, alpha=0.6, label=str(label)
            )
        ax.set_title(name)
        ax.set_xlabel(f"PC 1 ({share[0]:.0%} of the variance)")
        ax.set_ylabel(f"PC 2 ({share[1]:.0%})")
    axes[-1].legend(
        title="label", markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5)
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_distance_histograms(
    embeddings: Dict[str, Tensor], labels: Sequence[int], bins: int = 60
) -> plt.Figure:
    """Histograms of the Euclidean distances between all pairs of items: same label
    against different.

    Args:
        embeddings: Panel title to embeddings ``[n, dim]`` of the same ``n`` items,
            in the order of ``labels``.
        labels: The label of each item.
        bins: Bins per histogram.

    Returns:
        The figure, one panel per set of embeddings; each panel has its own distance
        axis and both histograms are densities, so that the many different-label
        pairs do not hide the others.
    """
    labels = torch.as_tensor(np.asarray(labels))
    if len(labels) < 2 or len(labels.unique()) < 2:
        raise ValueError(
            "Give at least two items and two labels: there are no pairs to "
            "compare otherwise."
        )
    fig, axes = _panels(embeddings, len(labels), (4.6, 3.2))
    for ax, (name, emb) in zip(axes, embeddings.items()):
        distances, same = pair_distances(emb.detach().cpu().double(), labels)
        edges = np.linspace(0.0, float(distances.max()), bins + 1)
        for pairs, label in ((same, "same label"), (~same, "different labels")):
            ax.hist(
                distances[pairs].numpy(),
                bins=edges,
                density=True,
                alpha=0.6,
                label=label,
            )
        ax.set_title(name)
        ax.set_xlabel("distance")
        ax.set_yticks([])
    axes[0].set_ylabel("density (each panel its own scale)")
    axes[-1].legend()
    fig.tight_layout()
    return fig


def _panels(
    embeddings: Dict[str, Tensor],
    n: int,
    size: Tuple[float, float],
    min_dim: int = 1,
) -> Tuple[plt.Figure, Sequence[Any]]:
    """A row of panels, one per set of embeddings, after checking each is
    ``[n, dim]`` with ``dim >= min_dim``; returns the figure and its axes."""
    if not embeddings:
        raise ValueError("Nothing to plot: give at least one set of embeddings.")
    for name, emb in embeddings.items():
        if emb.ndim != 2 or len(emb) != n or emb.shape[1] < min_dim:
            wanted = f" and dim >= {min_dim}" if min_dim > 1 else ""
            raise ValueError(
                f"embeddings {name!r} must be [n, dim] with n = len(labels) = "
                f"{n}{wanted}, got {tuple(emb.shape)}."
            )
    width, height = size
    fig, axes = plt.subplots(
        1, len(embeddings), figsize=(width * len(embeddings), height), squeeze=False
    )
    return fig, list(axes[0])


def plot_search(
    query: Union[str, Path],
    found: Sequence[Union[str, Path]],
    distances: Sequence[float],
    correct: Optional[Sequence[bool]] = None,
    title: str = "",
    query_title: str = "query",
) -> plt.Figure:
    """A query image and the images a search found, with their distances, in one
    row.

    Args:
        query: Path of the query image.
        found: Paths of the results, nearest first.
        distances: Their distances.
        correct: Whether each result is right (green or red frame); grey if None.
        title: Figure title.
        query_title: Title above the first image.

    Returns:
        The figure.
    """
    if len(found) != len(distances) or (
        correct is not None and len(correct) != len(found)
    ):
        raise ValueError(
            "found, distances (and correct) must have one entry per result."
        )
    fig, axes = plt.subplots(
        1, len(found) + 1, figsize=(1.3 * (len(found) + 1), 1.8)
    )
    axes = np.atleast_1d(axes)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    frames = (
        ["grey"] * len(found)
        if correct is None
        else ["green" if c else "red" for c in correct]
    )
    cells = [(query, query_title, "blue")] + [
        (path, f"d={d:.3g}", color)
        for path, d, color in zip(found, distances, frames)
    ]
    for ax, (path, label, color) in zip(axes, cells):
        framed(ax, np.asarray(read_image(path)), label, color)
    fig.tight_layout()
    return fig


def plot_pairs(
    root: Union[str, Path],
    pairs: Sequence[Tuple[str, str]],
    notes: Optional[Sequence[str]] = None,
    per_row: int = 2,
    title: str = "",
) -> plt.Figure:
    """Pairs of images side by side, ``per_row`` pairs to a row, each image titled
    with its path and each pair's second image also with its note (a distance, say).

    Args:
        root: Folder the paths start from.
        pairs: ``(path_a, path_b)`` per pair, relative to ``root``.
        notes: One line per pair, shown under the second image's path.
        per_row: Pairs in each row of the figure.
        title: Figure title.

    Returns:
        The figure.
    """
    if not pairs or per_row < 1:
        raise ValueError(
            "Nothing to show: give at least one pair and per_row >= 1."
        )
    if notes is not None and len(notes) != len(pairs):
        raise ValueError(
            f"notes must have one entry per pair: {len(notes)} notes for "
            f"{len(pairs)} pairs."
        )
    n_rows = -(-len(pairs) // per_row)  # rounded up
    fig, axes = plt.subplots(
        n_rows,
        2 * per_row,
        figsize=(1.8 * 2 * per_row, 1.9 * n_rows),
        squeeze=False,
    )
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    colors = ["tab:blue", "tab:orange"]  # one per pair in a row, so pairs stand out
    flat = axes.reshape(-1, 2)
    for n, (ax_pair, pair) in enumerate(zip(flat, pairs)):
        note = "" if notes is None else f"\n{notes[n]}"
        for ax, path, label in zip(
            ax_pair, pair, (str(pair[0]), f"{pair[1]}{note}")
        ):
            picture = np.asarray(read_image(Path(root) / path))
            framed(ax, picture, label, colors[n % 2])
            ax.title.set_fontsize(7)
    for ax_pair in flat[len(pairs) :]:
        for ax in ax_pair:
            ax.axis("off")
    fig.tight_layout()
    return fig


def framed(ax: Any, image: np.ndarray, title: str, color: str) -> None:
    """Draw ``image`` on ``ax`` without ticks, in a frame of ``color``."""
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(3)
    ax.set_title(title, fontsize=8)
