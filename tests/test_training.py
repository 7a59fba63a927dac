"""Tests of oml_helpers.training: transforms, datasets, the training loop and the metrics."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.retrieval import RetrievalResults
from oml_helpers import (
    DatasetFormatError,
    SmallCNN,
    balanced_loader,
    digit_transforms,
    make_criterion,
    make_datasets,
    retrieval_metrics,
    seed_everything,
    train_extractor,
)

LOG_COLUMNS = ["step", "epoch", "loss", "active_tri", "pos_dist", "neg_dist"]


# oml.inference enters torch.autocast("cuda"), which warns on a CPU (see device.KNOWN_WARNINGS)
pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


@pytest.fixture
def digit_image(digits_root, digits_df):
    """One digit as OML reads it: RGB."""
    with Image.open(digits_root / digits_df["path"][0]) as image:
        return image.convert("RGB")


# ---------------------------------------------------------------------------------------
# digit_transforms


def test_eval_transform_is_deterministic_and_normalised(digit_image):
    transform = digit_transforms(train=False)
    a, b = transform(digit_image), transform(digit_image)
    assert a.shape == (3, 64, 64)
    assert a.dtype == torch.float32
    assert torch.equal(a, b)
    # ToTensor then Normalize(0.5, 0.5): pixel p in 0..255 becomes p / 255 * 2 - 1, in [-1, 1]
    expected = torch.from_numpy(np.asarray(digit_image, dtype=np.float32) / 255 * 2 - 1).permute(
        2, 0, 1
    )
    torch.testing.assert_close(a, expected)
    assert a.min() == -1  # the black background
    assert a.max() <= 1


def test_train_transform_augments(digit_image):
    transform = digit_transforms(train=True)
    torch.manual_seed(0)
    outputs = [transform(digit_image) for _ in range(3)]
    assert all(o.shape == (3, 64, 64) for o in outputs)
    assert not torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[1], outputs[2])
    assert not torch.equal(outputs[0], digit_transforms(train=False)(digit_image))
    assert all(o.min() >= -1 and o.max() <= 1 for o in outputs)


# ---------------------------------------------------------------------------------------
# make_datasets


def test_make_datasets_lengths_and_types(digits_root, digits_df):
    train, val = make_datasets(digits_df, digits_root)
    n_train = int((digits_df["split"] == "train").sum())
    assert isinstance(train, ImageLabeledDataset)
    assert isinstance(val, ImageQueryGalleryLabeledDataset)
    assert len(train) == n_train
    assert len(val) == len(digits_df) - n_train
    assert set(train.get_labels()) == {0, 1, 2, 3, 4}
    assert set(val.get_labels()) == {5, 6, 7, 8, 9}
    assert len(val.get_query_ids()) == len(val.get_gallery_ids()) == len(val)
    item = val[0]
    assert item["input_tensors"].shape == (3, 64, 64)


def test_make_datasets_augment_flag(digits_root, small_df):
    plain, val = make_datasets(small_df, digits_root, augment=False)
    assert torch.equal(plain[0]["input_tensors"], plain[0]["input_tensors"])
    assert torch.equal(
        val[0]["input_tensors"], val[0]["input_tensors"]
    )  # validation never augments
    augmented, _ = make_datasets(small_df, digits_root, augment=True)
    torch.manual_seed(1)
    assert not torch.equal(augmented[0]["input_tensors"], augmented[0]["input_tensors"])


def test_make_datasets_checks_the_dataframe(digits_root, digits_df):
    digits_df["label"] = digits_df["label"].astype(float)
    with pytest.raises(DatasetFormatError, match="must hold integers"):
        make_datasets(digits_df, digits_root)
    with pytest.raises(DatasetFormatError, match="is not a folder"):
        make_datasets(
            digits_df.assign(label=digits_df["label"].astype(int)), digits_root / "nowhere"
        )


# ---------------------------------------------------------------------------------------
# train_extractor


def test_train_extractor_logs_one_row_per_step(digits_root, small_df):
    train, _ = make_datasets(small_df, digits_root)
    seed_everything(0)
    model = SmallCNN(feat_dim=16, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epochs, n_labels = 2, 2
    logs = train_extractor(model, train, epochs=epochs, n_labels=n_labels, n_instances=4)

    steps_per_epoch = (
        len(set(train.get_labels())) // n_labels
    )  # BalanceSampler: whole batches of labels
    assert isinstance(logs, pd.DataFrame)
    assert list(logs.columns) == LOG_COLUMNS
    assert len(logs) == epochs * steps_per_epoch
    assert logs["step"].tolist() == list(range(len(logs)))
    assert logs["epoch"].tolist() == [e for e in range(epochs) for _ in range(steps_per_epoch)]
    values = logs[["loss", "active_tri", "pos_dist", "neg_dist"]].to_numpy(dtype=float)
    assert np.isfinite(values).all()
    assert ((logs["active_tri"] >= 0) & (logs["active_tri"] <= 1)).all()
    assert (
        ((logs[["pos_dist", "neg_dist"]] >= 0) & (logs[["pos_dist", "neg_dist"]] <= 2)).all().all()
    )  # unit vectors
    assert (logs["loss"] >= 0).all()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("head.") for k in changed) and any(
        k.startswith("backbone.") for k in changed
    )
    assert not model.training


@pytest.mark.parametrize("epochs", [0, -1])
def test_train_extractor_rejects_no_epochs(digits_root, small_df, epochs):
    train, _ = make_datasets(small_df, digits_root)
    model = SmallCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=rf"epochs must be at least 1, got {epochs}"):
        train_extractor(model, train, epochs=epochs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_short_training_lowers_the_loss(short_training):
    _, logs, epochs = short_training
    assert len(logs) == epochs  # 5 training digits, 5 labels per batch: one step per epoch
    first, last = logs["loss"].head(5).mean(), logs["loss"].tail(5).mean()
    assert last < first, logs["loss"].tolist()
    assert logs["active_tri"].tail(5).mean() < logs["active_tri"].head(5).mean()


# ---------------------------------------------------------------------------------------
# balanced_loader and make_criterion


def test_balanced_loader_batches(digits_root, small_df):
    train, _ = make_datasets(small_df, digits_root)
    loader = balanced_loader(train, n_labels=2, n_instances=4)
    assert len(loader) == 2  # 5 training digits // 2 labels per batch
    batch = next(iter(loader))
    assert len(batch["labels"].unique()) == 2 and len(batch["labels"]) == 8
    for bad in (1, 6):
        with pytest.raises(ValueError, match="n_labels must be between 2 and the 5 labels"):
            balanced_loader(train, n_labels=bad, n_instances=4)


def test_make_criterion_defaults_and_logs():
    from oml.miners import AllTripletsMiner, HardTripletsMiner

    criterion = make_criterion()
    assert type(criterion.miner) is AllTripletsMiner and criterion.tri_loss.margin == 0.2
    hard = make_criterion(HardTripletsMiner(), margin=0.5)
    assert type(hard.miner) is HardTripletsMiner and hard.tri_loss.margin == 0.5
    seed_everything(0)
    criterion(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert {"active_tri", "pos_dist", "neg_dist"} <= set(criterion.last_logs)


# ---------------------------------------------------------------------------------------
# retrieval_metrics


@pytest.fixture
def val_subset(digits_root, small_df):
    _, val = make_datasets(small_df, digits_root)
    return val


def _brute_force_cmc(model, dataset, k):
    embeddings = inference(model, dataset, batch_size=32)
    distances = torch.cdist(embeddings, embeddings)
    distances.fill_diagonal_(
        math.inf
    )  # every item is a query and a gallery item: skip the query itself
    labels = torch.as_tensor(np.asarray(dataset.get_labels()))
    nearest = distances.topk(k, dim=1, largest=False).indices
    return (labels[nearest] == labels[:, None]).any(dim=1).float().mean().item()


def test_retrieval_metrics_keys_ranges_and_brute_force(short_training, val_subset):
    model, _, _ = short_training
    metrics, rr = retrieval_metrics(model, val_subset)
    assert set(metrics) == {"cmc/1", "cmc/5", "precision/1", "precision/5", "map/1", "map/5"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    assert isinstance(rr, RetrievalResults)
    assert metrics["cmc/1"] == pytest.approx(_brute_force_cmc(model, val_subset, 1), abs=1e-6)
    assert metrics["cmc/5"] == pytest.approx(_brute_force_cmc(model, val_subset, 5), abs=1e-6)
    # at k = 1 the three metrics say the same thing: is the nearest item right?
    assert metrics["precision/1"] == pytest.approx(metrics["cmc/1"])
    assert metrics["map/1"] == pytest.approx(metrics["cmc/1"])
    assert metrics["cmc/5"] >= metrics["cmc/1"]
    # 10 images per validation digit: better than the chance level of 9 / 49 at k = 1 after training
    assert metrics["cmc/1"] > 9 / 49


def test_retrieval_metrics_custom_top_k(short_training, val_subset):
    model, _, _ = short_training
    metrics, _ = retrieval_metrics(model, val_subset, top_k=(3,), n_items=3)
    assert set(metrics) == {"cmc/3", "precision/3", "map/3"}
    assert metrics["cmc/3"] == pytest.approx(_brute_force_cmc(model, val_subset, 3), abs=1e-6)


def test_retrieval_metrics_top_k_beyond_n_items(short_training, val_subset):
    model, _, _ = short_training
    with pytest.raises(ValueError, match=r"top_k \(1, 20\) asks beyond the 10 items retrieved"):
        retrieval_metrics(model, val_subset, top_k=(1, 20), n_items=10)
