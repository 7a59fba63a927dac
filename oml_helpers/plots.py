"""Figures the chapters share."""

from pathlib import Path
from typing import Optional, Sequence, Union

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from oml.const import LABELS_COLUMN, PATHS_COLUMN


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
        raise ValueError("Nothing to show: give at least one label and per_label >= 1.")
    absent = [label for label in labels if not (df[LABELS_COLUMN] == label).any()]
    if absent:
        raise ValueError(f"Label(s) {absent} have no rows in the dataframe.")
    fig, axes = plt.subplots(len(labels), per_label, figsize=(per_label * 0.9, len(labels) * 0.95), squeeze=False)
    for row, label in zip(axes, labels):
        paths = df.loc[df[LABELS_COLUMN] == label, PATHS_COLUMN].head(per_label).tolist()
        for ax, path in zip(row, paths + [None] * per_label):
            ax.axis("off")
            if path is not None:
                with Image.open(Path(dataset_root) / path) as image:
                    ax.imshow(image, cmap="gray")
        row[0].set_title(f"label {label}", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_training_logs(logs: pd.DataFrame, window: int = 5, title: str = "") -> plt.Figure:
    """Loss, share of active triplets and mean distances over the training steps.

    Args:
        logs: What ``train_extractor`` returns (columns ``loss``, ``active_tri``, ``pos_dist``, ``neg_dist``).
        window: Steps in the moving average drawn over the raw values (1 draws raw values only).
        title: Figure title.

    Returns:
        The figure.
    """
    missing = {"loss", "active_tri", "pos_dist", "neg_dist"} - set(logs.columns)
    if missing:
        raise ValueError(f"logs lack the columns {sorted(missing)}; pass what train_extractor returns.")
    if logs.empty:
        raise ValueError("logs are empty: train for at least one step.")
    smooth = logs.rolling(window, min_periods=1).mean()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    panels = [("loss", ["loss"]), ("active triplets (share)", ["active_tri"]), ("mean distance", ["pos_dist", "neg_dist"])]
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
