"""Tests for oml_helpers.reranking: the pairwise model, its training on mined pairs, re-ranking
and comparisons."""

import pandas as pd
import pytest
import torch

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.retrieval import RetrievalResults

from oml_helpers import (
    PairFusionExtractor,
    SmallCNN,
    best_threshold,
    changed_top1,
    dataset_with_embeddings,
    digit_transforms,
    make_siamese,
    metrics_dict,
    neighbour_pair_scores,
    order_accuracy,
    pair_accuracy,
    query_gallery_split,
    rerank,
    seed_everything,
    split_dataframe,
    train_siamese,
)


@pytest.fixture(scope="module")
def small(_digits_df_session):
    """8 images of every digit: a small training part (0-4) and a small validation part (5-9)."""
    return _digits_df_session.groupby("label", sort=True).head(8).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained_pair(digits_root, small, short_training):
    """A pairwise model trained for 3 short steps on the small training set, and its extractor."""
    extractor = short_training[0]
    df_train, _ = split_dataframe(small)
    dataset = dataset_with_embeddings(extractor, df_train, digits_root)
    seed_everything(0)
    siamese = make_siamese(extractor, hidden=(8,))
    logs = train_siamese(siamese, dataset, epochs=3, n_instances=4)
    return extractor, siamese, logs


@pytest.fixture(scope="module")
def val_rr(digits_root, small, short_training):
    _, df_val = split_dataframe(small)
    df_qg = query_gallery_split(df_val, n_queries_per_label=2)
    val = ImageQueryGalleryLabeledDataset(
        df_qg, dataset_root=digits_root, transform=digit_transforms(False)
    )
    rr = RetrievalResults.from_embeddings(
        inference(short_training[0], val, batch_size=64), val, n_items=6
    )
    return val, rr


def test_dataset_with_embeddings_adds_the_key(digits_root, small_df, short_training):
    df_train, _ = split_dataframe(small_df)
    dataset = dataset_with_embeddings(short_training[0], df_train, digits_root, augment=False)
    item = dataset[3]
    assert {"input_tensors", "labels", "embeddings"} <= set(item)
    assert item["embeddings"].shape == (short_training[0].feat_dim,)


def test_pair_fusion_extractor_shapes_and_bad_input():
    seed_everything(0)
    fusion = PairFusionExtractor(SmallCNN(feat_dim=16), width=12).eval()
    assert fusion.feat_dim == 12
    assert fusion(torch.randn(2, 3, 128, 64)).shape == (2, 12)
    with pytest.raises(ValueError, match="stacked"):
        fusion(torch.randn(2, 3, 72, 64))
    with pytest.raises(ValueError, match="SmallCNN"):
        PairFusionExtractor(torch.nn.Linear(3, 3))


def test_pair_fusion_compares_the_two_halves_place_by_place():
    # The joint convolution sees both halves at the same place: the same pair of images gives other
    # features when one image is moved, even though each image alone is unchanged but for its place.
    seed_everything(0)
    fusion = PairFusionExtractor(SmallCNN()).eval()
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        together = fusion(torch.cat([a, b], dim=2))
        other_bottom = fusion(torch.cat([a, torch.randn(1, 3, 64, 64)], dim=2))
        shifted = fusion(torch.cat([a, b.roll(16, dims=3)], dim=2))
    assert not torch.allclose(together, other_bottom)
    assert not torch.allclose(together, shifted)


def test_make_siamese_leaves_the_extractor_alone(short_training):
    extractor = short_training[0]
    siamese = make_siamese(extractor, hidden=(8,), width=16)
    first_conv = siamese.extractor.trunk[0].weight
    assert first_conv is not extractor.backbone[0].weight and torch.equal(
        first_conv, extractor.backbone[0].weight
    )
    assert siamese.extractor.feat_dim == 16 and siamese.head[0].in_features == 16


def test_make_siamese_puts_every_layer_on_the_extractors_device():
    # The fusion and the MLP head are new layers, made on the CPU; on a GPU they must follow the
    # extractor (a Colab run failed here). The "meta" device stands in for cuda on a CPU-only
    # machine.
    extractor = SmallCNN().to("meta")
    siamese = make_siamese(extractor)
    assert {p.device.type for p in siamese.parameters()} == {"meta"}
    assert {b.device.type for b in siamese.buffers()} <= {"meta"}


def test_train_siamese_logs_and_changes_weights(trained_pair, short_training):
    extractor, siamese, logs = trained_pair
    assert list(logs.columns) == ["step", "loss", "n_pairs", "accuracy"]
    assert len(logs) == 3 and logs["loss"].notna().all() and (logs["n_pairs"] > 0).all()
    before = extractor.backbone[0].weight
    after = siamese.extractor.trunk[0].weight
    assert not torch.equal(before, after)
    assert not siamese.training  # left in eval mode


def test_train_siamese_needs_embeddings(digits_root, small_df, short_training):
    df_train, _ = split_dataframe(small_df)
    plain = ImageLabeledDataset(
        df_train, dataset_root=digits_root, transform=digit_transforms(False)
    )
    with pytest.raises(ValueError, match="dataset_with_embeddings"):
        train_siamese(make_siamese(short_training[0]), plain, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_siamese(make_siamese(short_training[0]), plain, epochs=0)


def test_rerank_reorders_only_the_top_n(trained_pair, val_rr):
    _, siamese, _ = trained_pair
    val, rr = val_rr
    rr_new, seconds = rerank(siamese, rr, val, top_n=3, batch_size=16)
    assert seconds > 0
    for old, new in zip(rr.retrieved_ids, rr_new.retrieved_ids):
        assert sorted(old[:3].tolist()) == sorted(new[:3].tolist())
        assert torch.equal(old[3:], new[3:])


@pytest.mark.parametrize("top_n", [1, 7])
def test_rerank_rejects_bad_top_n(trained_pair, val_rr, top_n):
    val, rr = val_rr
    with pytest.raises(ValueError, match="top_n"):
        rerank(trained_pair[1], rr, val, top_n=top_n)


def test_metrics_dict_and_changed_top1(val_rr):
    _, rr = val_rr
    metrics = metrics_dict(rr, top_k=(1, 3))
    assert set(metrics) == {"cmc/1", "cmc/3", "precision/1", "precision/3", "map/1", "map/3"}
    assert changed_top1(rr, rr).empty
    swapped = RetrievalResults(
        distances=rr.distances,
        retrieved_ids=[torch.cat([r[1:2], r[:1], r[2:]]) for r in rr.retrieved_ids],
        gt_ids=rr.gt_ids,
    )
    changed = changed_top1(rr, swapped)
    assert len(changed) == len(rr.retrieved_ids)
    assert (changed["top1_after"] == [int(r[1]) for r in rr.retrieved_ids]).all()
    for row in changed.itertuples():
        gt = rr.gt_ids[row.query_id].tolist()
        assert row.correct_before == (row.top1_before in gt)
        assert row.correct_after == (row.top1_after in gt)


def test_changed_top1_bad_input(val_rr):
    _, rr = val_rr
    fewer = RetrievalResults(
        distances=rr.distances[:2], retrieved_ids=rr.retrieved_ids[:2], gt_ids=rr.gt_ids[:2]
    )
    with pytest.raises(ValueError, match="same queries"):
        changed_top1(rr, fewer)
    unlabeled = RetrievalResults(distances=rr.distances, retrieved_ids=rr.retrieved_ids)
    with pytest.raises(ValueError, match="before has no gt_ids"):
        changed_top1(unlabeled, rr)
    with pytest.raises(ValueError, match="after has no gt_ids"):
        changed_top1(rr, unlabeled)


def test_neighbour_pair_scores(trained_pair, digits_root, small):
    extractor, siamese, _ = trained_pair
    _, df_val = split_dataframe(small)
    scores = neighbour_pair_scores(
        extractor, siamese, df_val, digits_root, n_anchors_per_label=2, k=3, batch_size=16
    )
    assert list(scores.columns) == [
        "i",
        "j",
        "is_negative",
        "embedding_distance",
        "pairwise_distance",
    ]
    assert len(scores) == 5 * 2 * 2 * 3 and (scores["i"] != scores["j"]).all()
    assert scores["is_negative"].sum() == 5 * 2 * 3  # balanced: k of each kind per anchor
    labels = df_val["label"].to_numpy()
    assert ((labels[scores["i"]] != labels[scores["j"]]) == scores["is_negative"]).all()
    assert scores["pairwise_distance"].between(0, 1).all()
    dataset = ImageLabeledDataset(
        df_val, dataset_root=digits_root, transform=digit_transforms(False)
    )
    embeddings = inference(extractor, dataset, batch_size=64)
    for (anchor, negative), group in scores.groupby(
        ["i", "is_negative"]
    ):  # the k nearest of each kind
        d = torch.cdist(embeddings[anchor : anchor + 1], embeddings)[0]
        same = torch.as_tensor(labels == labels[anchor])
        d[same if negative else ~same] = float("inf")
        d[anchor] = float("inf")
        assert group["j"].tolist() == d.topk(3, largest=False).indices.tolist()
        assert group["embedding_distance"].is_monotonic_increasing
    with pytest.raises(ValueError, match="n_anchors_per_label"):
        neighbour_pair_scores(extractor, siamese, df_val, digits_root, n_anchors_per_label=9)
    with pytest.raises(ValueError, match="k=8"):
        neighbour_pair_scores(extractor, siamese, df_val, digits_root, k=8)


def test_best_threshold_and_pair_accuracy():
    distances = pd.Series([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8])
    is_negative = pd.Series([False, False, False, False, True, True, True])
    threshold = best_threshold(distances, is_negative)
    assert threshold == pytest.approx(0.35)  # 3 of 4 positives and all 3 negatives
    assert pair_accuracy(distances, is_negative, threshold) == pytest.approx(
        {"positives": 0.75, "negatives": 1.0, "balanced": 0.875}
    )
    assert pair_accuracy(distances, is_negative, 0.0) == {
        "positives": 0.0,
        "negatives": 1.0,
        "balanced": 0.5,
    }
    with pytest.raises(ValueError, match="one distance per pair"):
        pair_accuracy(distances[:3], is_negative, 0.5)
    with pytest.raises(ValueError, match="positive and negative"):
        best_threshold(distances, pd.Series([False] * 7))


def test_order_accuracy():
    pairs = pd.DataFrame(
        {
            "i": [0, 0, 0, 0, 1, 1, 1],
            "is_negative": [False, False, True, True, False, True, True],
            "d": [0.1, 0.5, 0.3, 0.9, 0.4, 0.4, 0.2],
        }
    )
    shares = order_accuracy(pairs, "d")
    # anchor 0: 0.1 beats 0.3 and 0.9, 0.5 beats only 0.9 -> 3 of 4; anchor 1: a tie and a loss
    assert shares.to_dict() == pytest.approx({0: 0.75, 1: 0.25})
    with pytest.raises(ValueError, match="no column"):
        order_accuracy(pairs, "pairwise_distance")
    with pytest.raises(ValueError, match="anchor 2"):
        order_accuracy(
            pd.concat([pairs, pd.DataFrame({"i": [2], "is_negative": [True], "d": [0.3]})]), "d"
        )
