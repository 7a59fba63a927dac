"""Read the metrics Lightning's loggers wrote (CSV and TensorBoard) back into
tables, and plot them (chapter 03)."""

import io
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Union

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image


class LogError(ValueError):
    """A log folder or a metric in it is not there; the message says what is."""


def _folder(log_dir: Union[str, Path]) -> Path:
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise LogError(
            f"No log folder {log_dir}. Pass the logger's log_dir (e.g. "
            "trainer.logger.log_dir)."
        )
    return log_dir


def _select(
    table: pd.DataFrame, metrics: Optional[Sequence[str]], where: Path
) -> pd.DataFrame:
    if metrics is None:
        return table
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in table.columns]
    if unknown:
        available = sorted(c for c in table.columns if c not in ("epoch", "step"))
        raise LogError(
            f"Metric(s) {unknown} are not logged in {where}; available: "
            f"{available}."
        )
    return table[metrics]


def read_csv_metrics(
    log_dir: Union[str, Path], metrics: Optional[Sequence[str]] = None
) -> pd.DataFrame:
    """Metrics per epoch from the ``metrics.csv`` of Lightning's ``CSVLogger``.

    The CSV has one row per logging call, with empty cells for what was not logged
    then; this keeps the last value of each metric in each epoch.

    Args:
        log_dir: The logger's ``log_dir`` (the folder holding ``metrics.csv``).
        metrics: Columns to keep; all by default.

    Returns:
        One row per epoch (the index), one column per metric.

    Raises:
        LogError: No folder, no ``metrics.csv``, nothing logged per epoch, or
            unknown metric names.
    """
    csv = _folder(log_dir) / "metrics.csv"
    if not csv.is_file():
        raise LogError(
            f"No metrics.csv in {log_dir}; is it a CSVLogger's log_dir? It holds "
            f"{_listing(csv.parent)}."
        )
    raw = pd.read_csv(csv)
    if "epoch" not in raw.columns or raw["epoch"].isna().all():
        raise LogError(
            f"{csv} has no epoch column: nothing was logged during training yet."
        )
    table = raw.drop(columns=["step"], errors="ignore").groupby("epoch").last()
    table.index = table.index.astype(int)
    return _select(table.dropna(axis=1, how="all"), metrics, csv)


def _listing(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())[:10]


def read_tensorboard_scalars(
    log_dir: Union[str, Path], metrics: Optional[Sequence[str]] = None
) -> pd.DataFrame:
    """Scalars from the TensorBoard event files in a folder, one row per logged
    step.

    Args:
        log_dir: The logger's ``log_dir`` (holding ``events.out.tfevents.*``).
        metrics: Tags to keep; all scalar tags by default.

    Returns:
        A table indexed by ``step``, one column per tag (empty where the tag was not
        logged at that step).

    Raises:
        LogError: No folder, no event files, or unknown tags.
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    log_dir = _folder(log_dir)
    if not any(log_dir.glob("events.out.tfevents.*")):
        raise LogError(
            f"No TensorBoard event files in {log_dir}; it holds "
            f"{_listing(log_dir)}."
        )
    events = EventAccumulator(
        str(log_dir), size_guidance={"scalars": 0, "images": 1}
    ).Reload()
    series = {
        tag: pd.Series({e.step: e.value for e in events.Scalars(tag)}, name=tag)
        for tag in events.Tags()["scalars"]
    }
    table = pd.DataFrame(series).sort_index()
    table.index.name = "step"
    return _select(table, metrics, log_dir)


def tensorboard_image_tags(log_dir: Union[str, Path]) -> List[str]:
    """Names of the images (figures) logged in a TensorBoard folder.

    Args:
        log_dir: The logger's ``log_dir``.

    Returns:
        The sorted image tags.
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    return sorted(
        EventAccumulator(str(_folder(log_dir)), size_guidance={"images": 1})
        .Reload()
        .Tags()["images"]
    )


def tensorboard_image(log_dir: Union[str, Path], tag: str) -> Image.Image:
    """The last image logged under ``tag`` in a TensorBoard folder (e.g. a figure of
    worst queries).

    Args:
        log_dir: The logger's ``log_dir``.
        tag: One of ``tensorboard_image_tags(log_dir)``.

    Returns:
        The image, decoded from the PNG that the logger stored.

    Raises:
        LogError: No such folder, or no image under ``tag`` (the message lists the
            tags).
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(
        str(_folder(log_dir)), size_guidance={"images": 0}
    ).Reload()
    if tag not in events.Tags()["images"]:
        raise LogError(
            f"No image {tag!r} in {log_dir}; its image tags: "
            f"{sorted(events.Tags()['images'])}."
        )
    return Image.open(io.BytesIO(events.Images(tag)[-1].encoded_image_string))


def plot_metric_curves(
    table: pd.DataFrame,
    metrics: Sequence[str],
    title: str = "",
    xlabel: str = "epoch",
    labels: Optional[Mapping[str, str]] = None,
) -> plt.Figure:
    """One panel per metric, its value against the table's index (epochs or steps).

    Args:
        table: What ``read_csv_metrics`` or ``read_tensorboard_scalars`` returns.
        metrics: Columns to draw.
        title: Figure title.
        xlabel: Label of the x axis.
        labels: Readable names for some metrics (panel title and y axis); the column
            name otherwise.

    Returns:
        The figure.

    Raises:
        LogError: A metric is not a column of the table (the message lists the
            columns).
    """
    if not metrics:
        raise LogError("Name at least one metric to plot.")
    table = _select(table, metrics, Path("the table"))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 2.8), squeeze=False
    )
    for ax, name in zip(axes[0], metrics):
        values = table[name].dropna()
        ax.plot(values.index, values.values, marker="o", markersize=3)
        readable = (labels or {}).get(name, name)
        ax.set_title(readable, fontsize=10)
        ax.set_ylabel(readable)
        ax.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
