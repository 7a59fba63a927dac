"""A figure for one-number embeddings: where each row lies, its role, and its
gallery position."""

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN


def plot_number_line(
    embeddings: torch.Tensor,
    df: pd.DataFrame,
    greyed: Sequence[int] = (),
    title: str = "",
) -> plt.Figure:
    """Rows of a query/gallery dataframe at their one-number embeddings, on a line.

    Queries are drawn as stars above the line, gallery items as circles below it,
    each marked with its dataset row and label; gallery items also show their
    gallery position.

    Args:
        embeddings: ``[n, 1]`` (or ``[n]``), one number per row of ``df``.
        df: The dataframe with ``label``, ``is_query`` and ``is_gallery``, with a
            fresh index.
        greyed: Dataset rows to draw in grey and mark "(skipped)" (e.g. those a
            query's sequence hides).
        title: Figure title.

    Returns:
        The figure.
    """
    values = (
        torch.as_tensor(embeddings)
        .detach()
        .cpu()
        .double()
        .reshape(len(embeddings), -1)
    )
    if values.shape[1] != 1 or len(values) != len(df):
        raise ValueError(
            f"embeddings must hold one number per row of df ({len(df)} rows), "
            f"got shape {tuple(torch.as_tensor(embeddings).shape)}."
        )
    bad = [row for row in greyed if not 0 <= row < len(df)]
    if bad:
        raise ValueError(
            f"greyed rows {bad} are not rows of df (0..{len(df) - 1})."
        )
    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.axhline(0, color="black", lw=0.8)
    position = 0
    for row, (x, label, query, gallery) in enumerate(
        zip(
            values[:, 0].tolist(),
            df[LABELS_COLUMN],
            df[IS_QUERY_COLUMN].astype(bool),
            df[IS_GALLERY_COLUMN].astype(bool),
        )
    ):
        colour = "lightgrey" if row in greyed else f"C{int(label) % 10}"
        if query:
            ax.plot(x, 0.5, marker="*", ms=14, color=colour)
            ax.annotate(
                f"row {row}\nlabel {label}",
                (x, 0.5),
                xytext=(0, 9),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        if gallery:
            ax.plot(x, -0.5, marker="o", ms=9, color=colour)
            skipped = " (skipped)" if row in greyed else ""
            ax.annotate(
                f"row {row}, label {label}\nposition {position}{skipped}",
                (x, -0.5),
                xytext=(0, -9),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
            )
            position += 1
    ax.set_ylim(-2.2, 2.2)
    ax.set_yticks([0.5, -0.5], ["queries", "gallery"])
    ax.set_xlabel("embedding")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    return fig
