"""Tests of oml_helpers.metrics: OML's metrics under the book's flat names."""

import pytest
import torch

from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers import (
    embedding_metrics,
    flatten_metrics,
    make_datasets,
    metrics_dict,
    retrieval_metrics,
)
from oml_helpers.metrics import check_top_k

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


@pytest.fixture
def toy_rr():
    """Two queries: A right at rank 2 only, B right at ranks 1 and 3."""
    return RetrievalResults(
        distances=[torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.1, 0.2, 0.4])],
        retrieved_ids=[torch.tensor([3, 1, 4]), torch.tensor([2, 5, 0])],
        gt_ids=[torch.tensor([1]), torch.tensor([2, 0])],
    )


def test_flatten_metrics_names_as_the_lightning_callback_does():
    nested = {"cmc": {1: torch.tensor(0.5), 5: torch.tensor(1.0)}, "pcf": {0.5: 0.25}}
    flat = flatten_metrics(nested)
    assert flat == {"cmc/1": 0.5, "cmc/5": 1.0, "pcf/0.5": 0.25}
    assert all(type(v) is float for v in flat.values())
    assert flatten_metrics({}) == {}


def test_flatten_metrics_bad_input():
    with pytest.raises(ValueError, match=r"metrics\['cmc'\] is a float, not a dict"):
        flatten_metrics({"cmc": 0.5})
    with pytest.raises(ValueError, match="holds 2 values, one per query: .*reduce=True"):
        flatten_metrics({"cmc": {1: torch.tensor([0.0, 1.0])}})


def test_metrics_dict_by_hand(toy_rr):
    metrics = metrics_dict(toy_rr, top_k=(1, 3))
    assert list(metrics) == ["cmc/1", "cmc/3", "precision/1", "precision/3", "map/1", "map/3"]
    # A misses at rank 1, B hits: CMC@1 = 1/2; both have a hit in the top 3
    assert metrics["cmc/1"] == pytest.approx(0.5) and metrics["cmc/3"] == pytest.approx(1)
    # precision@3 divides by min(3, n): A 1/1, B 2/2
    assert metrics["precision/3"] == pytest.approx(1)
    # OML's AP@3: A (1/2) / 1, B (1/1 + 2/3) / 2
    assert metrics["map/3"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)
    oml = calc_retrieval_metrics_rr(
        toy_rr, cmc_top_k=(3,), precision_top_k=(3,), map_top_k=(3,), verbose=False
    )
    assert metrics["map/3"] == float(oml["map"][3])


@pytest.mark.parametrize("top_k, n_items", [((1, 20), 10), ((), 10)])
def test_check_top_k_refuses(top_k, n_items):
    with pytest.raises(ValueError, match="top_k"):
        check_top_k(top_k, n_items)


def test_embedding_metrics_is_retrieval_metrics_on_embeddings(
    short_training, digits_root, small_df
):
    from oml.inference import inference

    model = short_training[0]
    _, val = make_datasets(small_df, digits_root)
    expected, rr_model = retrieval_metrics(model, val, top_k=(1, 3), n_items=5)
    embeddings = inference(model, val, batch_size=64)
    metrics, rr = embedding_metrics(embeddings, val, top_k=(1, 3), n_items=5)
    assert metrics == expected
    assert all(torch.equal(a, b) for a, b in zip(rr.retrieved_ids, rr_model.retrieved_ids))
    with pytest.raises(ValueError, match=r"top_k \(6,\) asks beyond the 5 items"):
        embedding_metrics(embeddings, val, top_k=(6,), n_items=5)
