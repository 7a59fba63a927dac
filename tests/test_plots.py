"""Tests of oml_helpers.plots: the image grid and the training-log figure (Agg backend, see
conftest)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import torch

from oml_helpers import (
    plot_distance_histograms,
    plot_pairs,
    plot_pca,
    plot_training_logs,
    show_images,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _grid(fig):
    """(rows, columns) of the subplot grid."""
    return fig.axes[0].get_subplotspec().get_gridspec().get_geometry()


# ---------------------------------------------------------------------------------------
# show_images


def test_show_images_one_row_per_label(digits_root, digits_df):
    fig = show_images(digits_df, digits_root, per_label=3)
    assert isinstance(fig, plt.Figure)
    assert _grid(fig) == (10, 3)
    assert len(fig.axes) == 30
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[::3] == [f"label {d}" for d in range(10)]
    assert all(t == "" for i, t in enumerate(titles) if i % 3)
    assert all(len(ax.images) == 1 for ax in fig.axes)


def test_show_images_chosen_labels_in_order(digits_root, digits_df):
    fig = show_images(digits_df, digits_root, per_label=2, labels=[7, 2])
    assert _grid(fig) == (2, 2)
    assert [fig.axes[0].get_title(loc="left"), fig.axes[2].get_title(loc="left")] == [
        "label 7",
        "label 2",
    ]
    # the first image of label 7 in the dataframe, as it is on disk
    from PIL import Image

    first = digits_df.loc[digits_df["label"] == 7, "path"].iloc[0]
    with Image.open(digits_root / first) as image:
        np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), np.asarray(image))


def test_show_images_label_with_fewer_images_leaves_blanks(digits_root, digits_df):
    df = pd.concat(
        [digits_df[digits_df["label"] == 3].head(2), digits_df[digits_df["label"] == 4].head(5)]
    )
    fig = show_images(df, digits_root, per_label=4)
    assert _grid(fig) == (2, 4)
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 0, 0, 1, 1, 1, 1]


def test_show_images_unknown_label(digits_root, digits_df):
    with pytest.raises(ValueError, match=r"Label\(s\) \[42\] have no rows in the dataframe"):
        show_images(digits_df, digits_root, per_label=2, labels=[1, 42])


def test_show_images_error_leaves_no_open_figure(digits_root, digits_df):
    """A failed call must not leave a half-drawn figure behind (Jupyter would still display it)."""
    plt.close("all")
    with pytest.raises(ValueError):
        show_images(digits_df, digits_root, per_label=2, labels=[1, 42])
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kwargs", [{"per_label": 0}, {"per_label": -2}, {"labels": []}])
def test_show_images_nothing_to_show(digits_root, digits_df, kwargs):
    plt.close("all")
    with pytest.raises(ValueError, match="Nothing to show"):
        show_images(digits_df, digits_root, **kwargs)
    assert plt.get_fignums() == []


# ---------------------------------------------------------------------------------------
# plot_training_logs


def test_plot_training_logs_on_train_extractor_output(short_training):
    _, logs, _ = short_training
    fig = plot_training_logs(logs, window=3, title="digits")
    assert isinstance(fig, plt.Figure)
    assert len(fig.axes) == 3
    assert fig._suptitle.get_text() == "digits"
    loss_ax, tri_ax, dist_ax = fig.axes
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 4]  # raw + moving average per column
    raw, smooth = loss_ax.lines
    np.testing.assert_allclose(raw.get_ydata(), logs["loss"])
    expected_smooth = [logs["loss"].iloc[max(0, i - 2) : i + 1].mean() for i in range(len(logs))]
    np.testing.assert_allclose(smooth.get_ydata(), expected_smooth)
    assert [t.get_text() for t in dist_ax.get_legend().get_texts()] == ["pos_dist", "neg_dist"]
    assert loss_ax.get_legend() is None


def test_plot_training_logs_window_one_draws_raw_values(short_training):
    _, logs, _ = short_training
    fig = plot_training_logs(logs, window=1)
    raw, smooth = fig.axes[1].lines
    np.testing.assert_allclose(smooth.get_ydata(), raw.get_ydata())


@pytest.mark.parametrize("column", ["loss", "active_tri", "pos_dist", "neg_dist"])
def test_plot_training_logs_missing_column(short_training, column):
    _, logs, _ = short_training
    with pytest.raises(ValueError, match=rf"logs lack the columns \['{column}'\]"):
        plot_training_logs(logs.drop(columns=[column]))


def test_plot_training_logs_empty(short_training):
    _, logs, _ = short_training
    plt.close("all")
    with pytest.raises(ValueError, match="logs are empty"):
        plot_training_logs(logs.iloc[0:0])
    with pytest.raises(
        ValueError, match=r"logs lack the columns \['active_tri', 'loss', 'neg_dist', 'pos_dist'\]"
    ):
        plot_training_logs(pd.DataFrame())
    assert plt.get_fignums() == []


# --------------------------------------------------------------------------------------- plot_pca


def test_plot_pca_projects_on_the_first_two_components():
    # points spread mostly along (1, 1, 0), less along (0, 0, 1), hardly at all along (1, -1, 0)
    gen = torch.Generator().manual_seed(0)
    coords = torch.randn(60, 3, generator=gen) * torch.tensor([5.0, 2.0, 0.01])
    basis = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, -1.0, 0.0]])
    basis = basis / basis.norm(dim=1, keepdim=True)
    emb = coords @ basis + 3.0  # an offset: PCA must centre first
    labels = [0] * 30 + [1] * 30
    fig = plot_pca({"before": emb, "after": emb[:, [2, 0, 1]]}, labels, title="pca")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "pca"
    assert [ax.get_title() for ax in fig.axes] == ["before", "after"]
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections] == [30, 30]  # one colour per label
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    expected = coords[:, :2].numpy()
    # each component is the hidden coordinate (up to sign and the sample's own small tilt)
    for k in range(2):
        assert (
            abs(np.corrcoef(points[:, k], expected[:, k])[0, 1]) > 0.99
        )  # a wrong component would give about 0
    assert points[:, 0].var() > points[:, 1].var()
    share = ax.get_xlabel()
    assert share.startswith("PC 1 (") and share.endswith("of the variance)")
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["0", "1"]


@pytest.mark.parametrize(
    "embeddings, labels, match",
    [
        ({}, [0, 1], "Nothing to plot"),
        (
            {"a": torch.zeros(3, 4)},
            [0, 1],
            r"embeddings 'a' must be \[n, dim\] with n = len\(labels\) = 2",
        ),
        ({"a": torch.zeros(2, 1)}, [0, 1], r"dim >= 2, got \(2, 1\)"),
        ({"a": torch.zeros(4)}, [0, 1, 2, 3], r"got \(4,\)"),
    ],
)
def test_plot_pca_bad_input(embeddings, labels, match):
    plt.close("all")
    with pytest.raises(ValueError, match=match):
        plot_pca(embeddings, labels)
    assert plt.get_fignums() == []


# ----------------------------------------------------------------------------------
# plot_number_line

TOY = pd.DataFrame({"label": [5, 6, 5, 5, 6, 6], "is_query": [True, True] + [False] * 4})
TOY["is_gallery"] = ~TOY["is_query"]
TOY_EMBEDDINGS = torch.tensor([[0.0], [1.0], [0.1], [0.3], [0.9], [0.6]])


def test_number_line_marks_rows_roles_and_positions():
    from oml_helpers import plot_number_line

    fig = plot_number_line(TOY_EMBEDDINGS, TOY, greyed=[2], title="six images")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:2] == ["row 0\nlabel 5", "row 1\nlabel 6"]
    assert texts[2:] == [
        f"row {r}, label {lab}\nposition {p}" + (" (skipped)" if r == 2 else "")
        for p, (r, lab) in enumerate([(2, 5), (3, 5), (4, 6), (5, 6)])
    ]
    colours = [line.get_color() for line in fig.axes[0].lines[1:]]
    assert colours[2] == "lightgrey" and colours.count("lightgrey") == 1
    assert fig.axes[0].get_title(loc="left") == "six images"


def test_number_line_bad_input():
    from oml_helpers import plot_number_line

    with pytest.raises(ValueError, match="one number per row"):
        plot_number_line(torch.zeros(6, 2), TOY)
    with pytest.raises(ValueError, match="one number per row"):
        plot_number_line(TOY_EMBEDDINGS[:5], TOY)
    with pytest.raises(ValueError, match="greyed rows \\[6\\]"):
        plot_number_line(TOY_EMBEDDINGS, TOY, greyed=[6])


# ---------------------------------------------------------------------------------------
# plot_distance_histograms


def test_plot_distance_histograms_splits_pairs_by_label():
    # two tight clusters far apart: same-label pairs near 0, different-label pairs near 10
    emb = (
        torch.cat([torch.zeros(3, 2), torch.full((3, 2), 10.0 / 2**0.5)])
        + 0.01 * torch.arange(6)[:, None]
    )
    labels = [0, 0, 0, 1, 1, 1]
    fig = plot_distance_histograms({"a": emb, "b": emb * 2}, labels, bins=10)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    same, different = fig.axes[0].containers  # the bars of the two histograms
    # the same-label pairs (3 per label) fill only the first bin, the others only the last
    assert [b.get_height() > 0 for b in same].index(True) == 0 and same[-1].get_height() == 0
    assert different[-1].get_height() > 0 and different[0].get_height() == 0
    assert (
        fig.axes[1].get_xlim()[1] > 2 * fig.axes[0].get_xlim()[1] * 0.9
    )  # each panel its own axis


@pytest.mark.parametrize(
    "embeddings, labels, match",
    [
        ({}, [0, 1], "Nothing to plot"),
        ({"a": torch.zeros(2, 2)}, [0, 0], "two labels"),
        (
            {"a": torch.zeros(3, 2)},
            [0, 1],
            r"embeddings 'a' must be \[n, dim\] with n = len\(labels\) = 2",
        ),
    ],
)
def test_plot_distance_histograms_bad_input(embeddings, labels, match):
    with pytest.raises(ValueError, match=match):
        plot_distance_histograms(embeddings, labels)


# ---------------------------------------------------------------------------------------
# plot_pairs


@pytest.fixture
def pair_root(tmp_path):
    from PIL import Image

    for name, size, mode in [("a.png", (30, 20), "RGB"), ("b.jpg", (12, 40), "L")]:
        Image.new(mode, size, 128).save(tmp_path / name)
    return tmp_path


def test_plot_pairs_two_images_per_pair_titled_with_paths_and_notes(pair_root):
    pairs = [("a.png", "b.jpg"), ("b.jpg", "a.png"), ("a.png", "a.png")]
    fig = plot_pairs(pair_root, pairs, notes=["d=0.01", "d=0.02", "d=0.03"], per_row=2)
    assert _grid(fig) == (2, 4)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:6] == [
        "a.png",
        "b.jpg\nd=0.01",
        "b.jpg",
        "a.png\nd=0.02",
        "a.png",
        "a.png\nd=0.03",
    ]
    assert [len(ax.images) for ax in fig.axes] == [1] * 6 + [0, 0]  # the last slot empty
    assert all(ax.images[0].get_array().shape[2] == 3 for ax in fig.axes[:6])  # RGB


def test_plot_pairs_bad_input(pair_root):
    with pytest.raises(ValueError, match="at least one pair"):
        plot_pairs(pair_root, [])
    with pytest.raises(ValueError, match="one entry per pair"):
        plot_pairs(pair_root, [("a.png", "b.jpg")], notes=["x", "y"])
