"""Tests of oml_helpers.mining: the int8 round trip and the report that looks past the ranking."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from oml_helpers import (
    pair_distances,
    embedding_report,
    int8_round_trip,
    load_book_model,
    make_datasets,
    retrieval_metrics,
)


class Collapsed(nn.Module):
    """A model's embeddings shrunk next to one point: every distance scaled by ``spread``.

    Their order is kept in exact arithmetic; in float32, distances computed from dot products lose
    digits when the vectors lie this close together.
    """

    def __init__(self, model: nn.Module, spread: float):
        super().__init__()
        self.model, self.spread = model, spread
        self.register_buffer("centre", F.normalize(torch.ones(model.feat_dim), dim=0))

    def forward(self, x):
        return self.centre + self.spread * self.model(x)


@pytest.fixture(scope="module")
def val_dataset(digits_root, _digits_df_session):
    return make_datasets(_digits_df_session, digits_root)[1]


def test_int8_round_trip_within_half_a_step():
    vectors = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    vectors[3] = 0
    decoded = int8_round_trip(vectors)
    assert decoded.shape == vectors.shape and decoded.dtype == torch.float32
    half_step = vectors.abs().max(dim=1, keepdim=True).values / 127 / 2
    assert ((decoded - vectors).abs() <= half_step * (1 + 1e-5)).all()
    assert (decoded[3] == 0).all()
    assert not torch.equal(decoded, vectors)  # it does round


def test_int8_round_trip_bad_shape():
    with pytest.raises(ValueError, match=r"embeddings must be \[n, dim\], got shape \(4,\)"):
        int8_round_trip(torch.zeros(4))


def test_embedding_report_sees_a_collapse_the_ranking_hides(val_dataset):
    model = load_book_model("digits")
    models = {
        "book": model,
        "x0.02": Collapsed(model, 0.02).eval(),
        "x0.005": Collapsed(model, 0.005).eval(),
    }
    report = embedding_report(models, val_dataset)
    assert list(report.index) == list(models)
    assert list(report.columns) == ["cmc/1", "same label", "other label", "cmc/1 int8"]
    book = report.loc["book"]
    assert book["cmc/1"] == pytest.approx(retrieval_metrics(model, val_dataset)[0]["cmc/1"])
    assert book["same label"] < book["other label"]
    assert abs(book["cmc/1 int8"] - book["cmc/1"]) < 0.005  # int8 is harmless at the normal scale
    # shrunk 50 times: the same ranking and distances 50 times smaller
    small = report.loc["x0.02"]
    assert small["cmc/1"] == pytest.approx(book["cmc/1"], abs=0.005)
    for column in ("same label", "other label"):
        assert small[column] == pytest.approx(book[column] * 0.02, rel=0.01)
    # shrunk 200 times: the ranking still nearly holds in float32, but int8 rounding breaks it
    tiny = report.loc["x0.005"]
    assert tiny["cmc/1"] == pytest.approx(book["cmc/1"], abs=0.02)
    assert tiny["cmc/1 int8"] < tiny["cmc/1"] - 0.03


def test_embedding_report_needs_models(val_dataset):
    with pytest.raises(ValueError, match="No models given"):
        embedding_report({}, val_dataset)


def test_pair_distances_each_pair_once():
    embeddings = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    distances, same = pair_distances(embeddings, [5, 5, 6])
    # pairs (0, 1), (0, 2), (1, 2)
    assert distances.tolist() == pytest.approx([5.0, 1.0, 18**0.5])
    assert same.tolist() == [True, False, False]
    assert pair_distances(embeddings.double(), [5, 5, 6])[0].dtype == torch.float64


def test_pair_distances_bad_shape():
    with pytest.raises(ValueError, match=r"n = len\(labels\) = 2, got \(3, 2\)"):
        pair_distances(torch.zeros(3, 2), [1, 2])
