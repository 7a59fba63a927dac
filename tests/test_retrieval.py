"""Tests for oml_helpers.retrieval and image_search: splits, a store's answers as OML results,
search with a
new image, thresholds, figures and the explorer."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN
from oml.datasets import ImageQueryGalleryDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.metrics.embeddings import calc_retrieval_metrics_rr
from oml.retrieval import AdaptiveThresholding, ConstantThresholding, RetrievalResults

from oml_helpers import (
    correct_mask,
    EmbeddingStore,
    SmallCNN,
    digit_transforms,
    embed_image,
    load_image_tensor,
    plot_top_k,
    prepare_digit_photo,
    query_gallery_split,
    read_image,
    results_from_search,
    retrieval_explorer,
    search_image,
    select_queries,
    split_dataframe,
    thresholding_report,
)


@pytest.fixture(scope="module")
def search_setup(digits_root, _digits_df_session, short_training):
    """A small query/gallery split (2 queries and 9 gallery images per digit), its datasets and
    embeddings."""
    model = short_training[0]
    _, df_val = split_dataframe(_digits_df_session)
    df_val = df_val.groupby(LABELS_COLUMN).head(11)
    df_qg = query_gallery_split(df_val, n_queries_per_label=2)
    unlabeled = ImageQueryGalleryDataset(
        df_qg.drop(columns=[LABELS_COLUMN]),
        dataset_root=digits_root,
        transform=digit_transforms(False),
    )
    labeled = ImageQueryGalleryLabeledDataset(
        df_qg, dataset_root=digits_root, transform=digit_transforms(False)
    )
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


@pytest.fixture(scope="module")
def gallery_store(search_setup, tmp_path_factory):
    """The gallery of ``search_setup`` in an EmbeddingStore, under store ids 1000 + dataset
    index."""
    _, df_qg, dataset, _, embeddings = search_setup
    gallery = dataset.get_gallery_ids().numpy()
    path = tmp_path_factory.mktemp("store") / "gallery.db"
    store = EmbeddingStore.create(path, model_name="short training", dim=embeddings.shape[1])
    store.add(
        (1000 + gallery).tolist(),
        embeddings[gallery].numpy(),
        paths=df_qg["path"].iloc[gallery].tolist(),
    )
    yield store, 1000 + gallery
    store.close()


def _bright_photo(path):
    """A light grey image with a darker square: ink on paper, mean far above 127."""
    image = Image.new("RGB", (123, 77), (250, 240, 230))
    image.paste((40, 40, 60), (40, 20, 80, 60))
    image.save(path)
    return path


def test_load_image_tensor_applies_only_the_transform(tmp_path):
    path = _bright_photo(tmp_path / "photo.jpg")
    x = load_image_tensor(path, digit_transforms(False))
    assert x.shape == (1, 3, 77, 123)  # no resizing of its own
    assert x.mean() > 0.5  # normalised to [-1, 1] and still bright: not inverted
    same = digit_transforms(False)(Image.open(path).convert("RGB")).unsqueeze(0)
    assert torch.equal(x, same)
    assert torch.equal(
        load_image_tensor(Image.open(path), digit_transforms(False)), same
    )  # a PIL image too


def test_prepare_digit_photo_inverts_and_resizes(tmp_path):
    path = _bright_photo(tmp_path / "photo.png")
    prepared = prepare_digit_photo(path)
    assert prepared.size == (64, 64) and prepared.mode == "RGB"
    assert np.asarray(prepared).mean() < 60  # light paper became dark
    assert prepare_digit_photo(Image.open(path), size=32).size == (32, 32)
    with pytest.raises(ValueError, match="size"):
        prepare_digit_photo(path, size=0)


def test_read_image_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="No image file"):
        read_image(tmp_path / "missing.png")
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        read_image(not_image)
    with pytest.raises(ValueError, match="path or a PIL image"):
        read_image(np.zeros((8, 8)))


def test_load_image_tensor_rejects_a_transform_without_tensor(tmp_path):
    path = _bright_photo(tmp_path / "photo.png")
    with pytest.raises(ValueError, match="ToTensor"):
        load_image_tensor(path, lambda image: image.resize((8, 8)))


def test_embed_image_is_the_model_on_the_transformed_image(search_setup, tmp_path):
    model = search_setup[0]
    path = _bright_photo(tmp_path / "photo.png")
    image = Image.open(path).convert("RGB")
    negative = Image.fromarray(255 - np.asarray(image))
    with torch.no_grad():
        expected = model.eval()(digit_transforms(False)(image).unsqueeze(0))[0]
        inverted = model(digit_transforms(False)(negative).unsqueeze(0))[0]
    embedding = embed_image(model, path, digit_transforms(False))
    assert embedding.dtype == np.float32 and embedding.shape == (model.feat_dim,)
    assert np.allclose(embedding, expected.numpy(), atol=1e-6)
    assert not np.allclose(
        embedding, inverted.numpy(), atol=1e-3
    )  # nothing inverted behind your back


def test_search_image_finds_a_gallery_image_itself(search_setup, gallery_store, digits_root):
    model, df_qg, dataset, _, _ = search_setup
    store, store_ids = gallery_store
    target = int(dataset.get_gallery_ids()[5])
    found = search_image(
        model, digits_root / df_qg.loc[target, "path"], digit_transforms(False), store, k=3
    )
    assert found.ids.shape == (3,) and int(found.ids[0]) == 1000 + target  # a store id
    assert found.paths[0] == df_qg.loc[target, "path"]
    # torch.cdist and the store's sums lose digits near 0: allow sqrt(float32 eps)-sized leftovers
    assert found.distances[0] < 1e-3 < found.distances[1]
    assert np.all(np.diff(found.distances) >= 0)


def test_search_image_searches_a_bright_image_as_it_is(search_setup, gallery_store, tmp_path):
    model = search_setup[0]
    store = gallery_store[0]
    path = _bright_photo(tmp_path / "bright.png")
    image = Image.open(path).convert("RGB")
    negative = Image.fromarray(255 - np.asarray(image))
    with torch.no_grad():
        as_is = model.eval()(digit_transforms(False)(image).unsqueeze(0))[0].numpy()
        flipped = model(digit_transforms(False)(negative).unsqueeze(0))[0].numpy()
    found = search_image(model, path, digit_transforms(False), store, k=4)
    expected = store.search(as_is, k=4)
    assert found.ids.tolist() == expected.ids.tolist()
    assert np.allclose(found.distances, expected.distances, atol=1e-5)
    assert not np.allclose(found.distances, store.search(flipped, k=4).distances, atol=1e-3)


def test_search_image_rejects_what_is_not_an_image(search_setup, gallery_store):
    with pytest.raises(ValueError, match="path or a PIL image"):
        search_image(
            search_setup[0], np.zeros((64, 64, 3)), digit_transforms(False), gallery_store[0]
        )


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_search_image_rejects_bad_k(search_setup, gallery_store, digits_root, k):
    model, df_qg = search_setup[:2]
    with pytest.raises(ValueError, match="k must be"):
        search_image(
            model,
            digits_root / df_qg.loc[0, "path"],
            digit_transforms(False),
            gallery_store[0],
            k=k,
        )


def test_search_image_rejects_another_model_and_bad_files(
    search_setup, gallery_store, digits_root, tmp_path
):
    _, df_qg = search_setup[:2]
    store = gallery_store[0]
    with pytest.raises(ValueError, match="32-d embeddings"):
        search_image(
            SmallCNN(feat_dim=32),
            digits_root / df_qg.loc[0, "path"],
            digit_transforms(False),
            store,
        )
    with pytest.raises(FileNotFoundError):
        search_image(search_setup[0], tmp_path / "nope.png", digit_transforms(False), store)


def test_results_from_search_equal_oml_in_memory(search_setup, gallery_store):
    model, df_qg, _, labeled, embeddings = search_setup
    store, store_ids = gallery_store
    queries = labeled.get_query_ids().numpy()
    found = store.search(embeddings[queries].numpy(), k=5)
    labels = df_qg[LABELS_COLUMN].to_numpy()
    gallery = labeled.get_gallery_ids().numpy()
    rr = results_from_search(
        found.ids, found.distances, store_ids, labels[queries], labels[gallery]
    )
    reference = RetrievalResults.from_embeddings(embeddings, labeled, n_items=5)
    for mine, theirs in zip(rr.retrieved_ids, reference.retrieved_ids):
        assert set(mine.tolist()) == set(theirs.tolist())  # near-ties may swap places
    for mine, theirs in zip(rr.distances, reference.distances):
        assert mine.dtype == torch.float32 and torch.allclose(mine, theirs, atol=1e-5)
    for mine, theirs in zip(rr.gt_ids, reference.gt_ids):
        assert torch.equal(mine, theirs)
    assert results_from_search(found.ids, found.distances, store_ids).gt_ids is None


def test_results_from_search_bad_input():
    ids, distances = [np.array([11, 12])], [np.array([0.1, 0.2])]
    with pytest.raises(ValueError, match="store id 12 is not in gallery_ids"):
        results_from_search(ids, distances, [10, 11])
    with pytest.raises(ValueError, match="twice"):
        results_from_search(ids, distances, [11, 12, 11])
    with pytest.raises(ValueError, match="rows of ids"):
        results_from_search(ids, distances * 2, [11, 12])
    with pytest.raises(ValueError, match="both"):
        results_from_search(ids, distances, [11, 12], query_labels=[1])
    with pytest.raises(ValueError, match="one label per query"):
        results_from_search(ids, distances, [11, 12], query_labels=[1, 2], gallery_labels=[1, 2])
    rr = results_from_search(ids, distances, [12, 11], query_labels=[7], gallery_labels=[7, 8])
    assert rr.retrieved_ids[0].tolist() == [1, 0] and rr.gt_ids[0].tolist() == [0]


def test_select_queries():
    rr = RetrievalResults(
        distances=[torch.tensor([0.1, 0.2]), torch.tensor([0.3]), torch.tensor([0.4, 0.5])],
        retrieved_ids=[torch.tensor([0, 1]), torch.tensor([2]), torch.tensor([1, 2])],
        gt_ids=[torch.tensor([0]), torch.tensor([2]), torch.tensor([1])],
    )
    part = select_queries(rr, [2, 0])
    assert [r.tolist() for r in part.retrieved_ids] == [[1, 2], [0, 1]]
    assert [g.tolist() for g in part.gt_ids] == [[1], [0]]
    unlabeled = RetrievalResults(distances=rr.distances, retrieved_ids=rr.retrieved_ids)
    assert select_queries(unlabeled, [1]).gt_ids is None
    with pytest.raises(ValueError, match="outside 0..2"):
        select_queries(rr, [3])


def test_correct_mask(search_setup):
    rr = RetrievalResults(
        distances=[torch.tensor([0.1, 0.2, 0.3]), torch.tensor([])],
        retrieved_ids=[torch.tensor([4, 2, 7]), torch.tensor([], dtype=torch.long)],
        gt_ids=[torch.tensor([7, 4]), torch.tensor([1])],
    )
    right = correct_mask(rr)
    assert [r.tolist() for r in right] == [[True, False, True], []]
    _, _, unlabeled, _, embeddings = search_setup
    no_labels = RetrievalResults.from_embeddings(embeddings, unlabeled, n_items=5)
    with pytest.raises(ValueError, match="results has no gt_ids: build it from a labelled"):
        correct_mask(no_labels, "results")


def test_thresholding_report(search_setup):
    _, _, _, labeled, embeddings = search_setup
    rr = RetrievalResults.from_embeddings(embeddings, labeled, n_items=5)
    report = thresholding_report(
        rr, {"zero": ConstantThresholding(0.0), "adaptive": AdaptiveThresholding(2.0)}
    )
    assert list(report.index) == ["none", "zero", "adaptive"]
    assert list(report.columns) == [
        "kept_per_query",
        "empty_queries",
        "pooled_precision",
        "pooled_recall",
    ]
    assert report.loc["none", "kept_per_query"] == 5 and report.loc["none", "pooled_recall"] == 1
    assert report.loc["zero", "kept_per_query"] == 0 and report.loc["zero", "empty_queries"] == 1
    assert 0 <= report.loc["adaptive", "pooled_precision"] <= 1
    # before any cut, with at least 5 right items per query, pooled precision is OML's precision@5
    metrics = calc_retrieval_metrics_rr(
        rr, precision_top_k=(5,), cmc_top_k=(1,), map_top_k=(1,), verbose=False
    )
    assert np.isclose(report.loc["none", "pooled_precision"], float(metrics["precision"][5]))


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


def test_retrieval_explorer_starts_at_the_query_asked(search_setup):
    pytest.importorskip("ipywidgets")
    _, _, _, labeled, embeddings = search_setup
    rr = RetrievalResults.from_embeddings(embeddings, labeled, n_items=5)
    pick, _ = retrieval_explorer(rr, labeled, k=3, query=2).children[0].children
    assert pick.value == 2
    with pytest.raises(ValueError, match="query must be in"):
        retrieval_explorer(rr, labeled, query=len(rr.retrieved_ids))
    plt.close("all")
