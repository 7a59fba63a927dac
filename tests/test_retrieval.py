"""Tests for oml_helpers.retrieval: splits, search with a new image, thresholds, figures and the explorer."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN
from oml.datasets import ImageQueryGalleryDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.retrieval import AdaptiveThresholding, ConstantThresholding, RetrievalResults

from oml_helpers import (
    digit_transforms,
    load_image_tensor,
    plot_top_k,
    query_gallery_split,
    retrieval_explorer,
    search_image,
    split_dataframe,
    thresholding_report,
)


@pytest.fixture(scope="module")
def search_setup(digits_root, _digits_df_session, short_training):
    """A small query/gallery split (2 queries and 9 gallery images per digit), its datasets and embeddings."""
    model = short_training[0]
    _, df_val = split_dataframe(_digits_df_session)
    df_val = df_val.groupby(LABELS_COLUMN).head(11)
    df_qg = query_gallery_split(df_val, n_queries_per_label=2)
    unlabeled = ImageQueryGalleryDataset(
        df_qg.drop(columns=[LABELS_COLUMN]), dataset_root=digits_root, transform=digit_transforms(False)
    )
    labeled = ImageQueryGalleryLabeledDataset(df_qg, dataset_root=digits_root, transform=digit_transforms(False))
    embeddings = inference(model, unlabeled, batch_size=64)
    return model, df_qg, unlabeled, labeled, embeddings


def test_query_gallery_split_is_disjoint_and_per_label(digits_df):
    _, df_val = split_dataframe(digits_df)
    df_qg = query_gallery_split(df_val, n_queries_per_label=3)
    assert (df_qg[IS_QUERY_COLUMN] ^ df_qg[IS_GALLERY_COLUMN]).all()
    assert df_qg[df_qg[IS_QUERY_COLUMN]].groupby(LABELS_COLUMN).size().eq(3).all()
    assert query_gallery_split(df_val, 3).equals(df_qg)  # same seed, same split


@pytest.mark.parametrize("n", [0, 1000])
def test_query_gallery_split_rejects_bad_counts(digits_df, n):
    _, df_val = split_dataframe(digits_df)
    with pytest.raises(ValueError, match="n_queries_per_label"):
        query_gallery_split(df_val, n)


def test_load_image_tensor_any_size_and_colour(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (123, 77), (250, 240, 230)).save(path)  # light paper: gets inverted to dark
    x = load_image_tensor(path)
    assert x.shape == (1, 3, 64, 64)
    assert x.mean() < 0  # normalised to [-1, 1] and mostly dark, like the digits


def test_load_image_tensor_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No image file"):
        load_image_tensor(tmp_path / "missing.png")
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image_tensor(not_image)


def test_search_image_finds_a_gallery_image_itself(search_setup, digits_root):
    model, df_qg, dataset, _, embeddings = search_setup
    gallery_ids = dataset.get_gallery_ids()
    target = int(gallery_ids[5])
    found = search_image(model, digits_root / df_qg.loc[target, "path"], dataset, embeddings[gallery_ids], k=3)
    assert list(found.columns) == ["rank", "gallery_id", "dataset_id", "distance", "path"]
    assert found["rank"].tolist() == [1, 2, 3]
    assert found.loc[0, "dataset_id"] == target  # an image in the gallery finds itself first
    # torch.cdist works from |a|^2 + |b|^2 - 2 a.b for large galleries, so a distance near 0 comes out as
    # large as sqrt(float32 eps), about 3e-4, depending on the kernels (2.4e-4 seen with other ones).
    assert found.loc[0, "distance"] < 1e-3 < found.loc[1, "distance"]
    assert found["distance"].is_monotonic_increasing


@pytest.mark.parametrize("k", [0, -1, 10_000])
def test_search_image_rejects_bad_k(search_setup, digits_root, k):
    model, df_qg, dataset, _, embeddings = search_setup
    with pytest.raises(ValueError, match="k must be between 1"):
        search_image(model, digits_root / df_qg.loc[0, "path"], dataset, embeddings[dataset.get_gallery_ids()], k=k)


def test_search_image_rejects_wrong_embeddings(search_setup, digits_root):
    model, df_qg, dataset, _, embeddings = search_setup
    path = digits_root / df_qg.loc[0, "path"]
    gallery = embeddings[dataset.get_gallery_ids()]
    with pytest.raises(ValueError, match="n_gallery, feat_dim"):
        search_image(model, path, dataset, embeddings, k=3)  # all items, not only the gallery
    with pytest.raises(ValueError, match="n_gallery, feat_dim"):
        search_image(model, path, dataset, gallery[:, 0], k=3)  # 1-d
    with pytest.raises(ValueError, match="same model"):
        search_image(model, path, dataset, gallery[:, :10], k=3)  # another embedding size


def test_search_image_rejects_missing_file(search_setup, tmp_path):
    model, _, dataset, _, embeddings = search_setup
    with pytest.raises(FileNotFoundError):
        search_image(model, tmp_path / "nope.png", dataset, embeddings[dataset.get_gallery_ids()], k=3)


def test_thresholding_report(search_setup):
    _, _, _, labeled, embeddings = search_setup
    rr = RetrievalResults.from_embeddings(embeddings, labeled, n_items=5)
    report = thresholding_report(rr, {"zero": ConstantThresholding(0.0), "adaptive": AdaptiveThresholding(2.0)})
    assert list(report.index) == ["none", "zero", "adaptive"]
    assert report.loc["none", "kept_per_query"] == 5 and report.loc["none", "recall"] == 1
    assert report.loc["zero", "kept_per_query"] == 0 and report.loc["zero", "empty_queries"] == 1
    assert 0 <= report.loc["adaptive", "precision"] <= 1


def test_thresholding_report_needs_labels(search_setup):
    _, _, unlabeled, _, embeddings = search_setup
    rr = RetrievalResults.from_embeddings(embeddings, unlabeled, n_items=5)
    with pytest.raises(ValueError, match="gt_ids"):
        thresholding_report(rr, {})


def test_plot_top_k_and_bad_query(search_setup):
    _, _, unlabeled, labeled, embeddings = search_setup
    for dataset in (unlabeled, labeled):
        rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=5)
        fig = plot_top_k(rr, dataset, query_id=1, k=4, title="t")
        assert len(fig.axes) == 5
        plt.close(fig)
    with pytest.raises(ValueError, match="query_id"):
        plot_top_k(rr, labeled, query_id=len(rr.retrieved_ids), k=3)
    with pytest.raises(ValueError, match="k must be"):
        plot_top_k(rr, labeled, query_id=0, k=0)


def test_retrieval_explorer_redraws(search_setup):
    pytest.importorskip("ipywidgets")
    _, _, _, labeled, embeddings = search_setup
    rr = RetrievalResults.from_embeddings(embeddings, labeled, n_items=5)
    app = retrieval_explorer(rr, labeled, k=3)
    pick, top = app.children[0].children
    pick.value, top.value = 2, 5  # each change redraws without error
    assert top.max == 5
    with pytest.raises(ValueError, match="one per query"):
        retrieval_explorer(rr, labeled, labels=["only one"])
    plt.close("all")
