"""Reading Lightning's CSV and TensorBoard logs back, and plotting them."""

import numpy as np
import pandas as pd
import pytest

from oml_helpers import (
    LogError,
    plot_metric_curves,
    read_csv_metrics,
    read_tensorboard_scalars,
    tensorboard_image,
    tensorboard_image_tags,
)


@pytest.fixture
def csv_dir(tmp_path):
    """A metrics.csv shaped like CSVLogger's: step rows with the loss, epoch-end rows with
    validation metrics."""
    rows = [
        {"epoch": 0, "step": 0, "loss_step": 0.5},
        {"epoch": 0, "step": 1, "loss_step": 0.4},
        {"epoch": 0, "step": 1, "OVERALL/map/5": 0.6},
        {"epoch": 0, "step": 1, "loss_epoch": 0.45},
        {"epoch": 1, "step": 2, "loss_step": 0.3},
        {"epoch": 1, "step": 3, "loss_step": 0.2},
        {"epoch": 1, "step": 3, "OVERALL/map/5": 0.7},
        {"epoch": 1, "step": 3, "loss_epoch": 0.25},
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.csv", index=False)
    return tmp_path


def test_csv_gives_one_row_per_epoch_with_the_last_values(csv_dir):
    table = read_csv_metrics(csv_dir)
    assert table.index.tolist() == [0, 1]
    assert table["OVERALL/map/5"].tolist() == [0.6, 0.7]
    assert table["loss_step"].tolist() == [0.4, 0.2]
    assert "step" not in table.columns
    assert read_csv_metrics(csv_dir, ["loss_epoch"]).columns.tolist() == ["loss_epoch"]


def test_csv_bad_input(csv_dir, tmp_path):
    with pytest.raises(
        LogError, match=r"not logged.*available: \['OVERALL/map/5', 'loss_epoch', 'loss_step'\]"
    ):
        read_csv_metrics(csv_dir, ["OVERALL/cmc/1"])
    with pytest.raises(LogError, match="No log folder"):
        read_csv_metrics(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "hparams.yaml").write_text("{}")
    with pytest.raises(LogError, match=r"No metrics.csv.*hparams.yaml"):
        read_csv_metrics(tmp_path / "other")


@pytest.fixture
def tb_dir(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    for step, value in enumerate([0.5, 0.6, 0.7]):
        writer.add_scalar("OVERALL/map/5", value, step * 2 + 1)
        writer.add_scalar("loss", 1.0 - value, step * 2)
    writer.add_image("image_logs/worst", np.zeros((3, 4, 4), dtype=np.uint8), 1)
    writer.add_image("image_logs/worst", np.full((3, 4, 6), 255, dtype=np.uint8), 5)
    writer.close()
    return tmp_path


def test_tensorboard_scalars_and_images(tb_dir):
    table = read_tensorboard_scalars(tb_dir)
    assert sorted(table.columns) == ["OVERALL/map/5", "loss"]
    assert table["OVERALL/map/5"].dropna().index.tolist() == [1, 3, 5]
    assert table["OVERALL/map/5"].dropna().round(6).tolist() == [0.5, 0.6, 0.7]
    assert tensorboard_image_tags(tb_dir) == ["image_logs/worst"]
    with pytest.raises(LogError, match=r"available: \['OVERALL/map/5', 'loss'\]"):
        read_tensorboard_scalars(tb_dir, ["map"])


def test_tensorboard_image_is_the_last_one_logged(tb_dir):
    image = tensorboard_image(tb_dir, "image_logs/worst")
    assert image.size == (6, 4)  # the later of the two, width 6
    assert np.asarray(image.convert("L")).min() == 255
    with pytest.raises(LogError, match=r"image tags: \['image_logs/worst'\]"):
        tensorboard_image(tb_dir, "worst")


def test_tensorboard_without_event_files(tmp_path):
    with pytest.raises(LogError, match="No TensorBoard event files"):
        read_tensorboard_scalars(tmp_path)
    with pytest.raises(LogError, match="No log folder"):
        tensorboard_image_tags(tmp_path / "missing")


def test_plot_one_panel_per_metric(csv_dir):
    import matplotlib.pyplot as plt

    table = read_csv_metrics(csv_dir)
    fig = plot_metric_curves(table, ["OVERALL/map/5", "loss_epoch"], title="t")
    assert [ax.get_title() for ax in fig.axes] == ["OVERALL/map/5", "loss_epoch"]
    assert fig.axes[0].lines[0].get_ydata().tolist() == [0.6, 0.7]
    plt.close(fig)
    fig = plot_metric_curves(
        table, ["OVERALL/map/5", "loss_epoch"], labels={"OVERALL/map/5": "mAP@5"}
    )
    assert [ax.get_title() for ax in fig.axes] == ["mAP@5", "loss_epoch"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["mAP@5", "loss_epoch"]
    plt.close(fig)
    with pytest.raises(LogError, match="not logged"):
        plot_metric_curves(table, ["nope"])
    with pytest.raises(LogError, match="at least one"):
        plot_metric_curves(table, [])
