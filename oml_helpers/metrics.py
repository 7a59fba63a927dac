"""OML's retrieval metrics under the book's flat names: ``cmc/1``, ``precision/5``,
``map/5``.

OML's functions return them nested (``{"cmc": {1: tensor}}``) and its Lightning
callback logs them as ``OVERALL/cmc/1`` (chapter 03); every helper that gives flat
names writes them as that callback does, without the ``OVERALL/``.
"""

from typing import Any, Dict, Mapping, Sequence, Tuple

from torch import Tensor

from oml.interfaces.datasets import IQueryGalleryLabeledDataset
from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults


def flatten_metrics(metrics: Mapping[str, Mapping[Any, Any]]) -> Dict[str, float]:
    """OML's nested metrics as one flat dict: ``{"cmc": {1: x}}`` gives
    ``{"cmc/1": x}``.

    Args:
        metrics: What ``calc_retrieval_metrics_rr`` returns (averaged over the
            queries), or the ``"OVERALL"`` part of ``EmbeddingMetrics``'s metrics.

    Returns:
        ``"<name>/<k>"`` to a float, in OML's order.
    """
    flat = {}
    for name, per_k in metrics.items():
        if not isinstance(per_k, Mapping):
            raise ValueError(
                f"metrics[{name!r}] is a {type(per_k).__name__}, not a dict of k "
                "to value: pass what calc_retrieval_metrics_rr returns (of "
                "EmbeddingMetrics' metrics, the 'OVERALL' part)."
            )
        for k, value in per_k.items():
            if isinstance(value, Tensor) and value.numel() != 1:
                raise ValueError(
                    f"metrics[{name!r}][{k!r}] holds {value.numel()} values, one "
                    "per query: compute the metrics with reduce=True to flatten "
                    "them."
                )
            flat[f"{name}/{k}"] = float(value)
    return flat


def metrics_dict(
    rr: RetrievalResults, top_k: Sequence[int] = (1, 5)
) -> Dict[str, float]:
    """CMC, precision and mAP at ``top_k`` as a flat dict, e.g. ``{"cmc/1": ...}``.

    Args:
        rr: Retrieval results with ``gt_ids``.
        top_k: Values of k.

    Returns:
        The metrics averaged over the queries.
    """
    k = tuple(top_k)
    metrics = calc_retrieval_metrics_rr(
        rr, cmc_top_k=k, precision_top_k=k, map_top_k=k, verbose=False
    )
    return flatten_metrics(metrics)


def check_top_k(top_k: Sequence[int], n_items: int) -> None:
    """Refuse a ``top_k`` that asks beyond the items retrieved per query.

    Args:
        top_k: Values of k.
        n_items: Gallery items retrieved per query.

    Raises:
        ValueError: Some k is above ``n_items``, or none is given.
    """
    if not len(top_k):
        raise ValueError("top_k is empty: give at least one k, e.g. (1, 5).")
    if max(top_k) > n_items:
        raise ValueError(
            f"top_k {tuple(top_k)} asks beyond the {n_items} items retrieved; "
            "raise n_items."
        )


def embedding_metrics(
    embeddings: Tensor,
    dataset: IQueryGalleryLabeledDataset,
    top_k: Sequence[int] = (1, 5),
    n_items: int = 10,
) -> Tuple[Dict[str, float], RetrievalResults]:
    """Retrieve by the embeddings of a query/gallery dataset, and score it.

    Args:
        embeddings: ``[n, dim]``, one per item of ``dataset``, in its order.
        dataset: A labelled query/gallery dataset.
        top_k: Values of k for every metric (at most ``n_items``).
        n_items: Gallery items retrieved per query.

    Returns:
        ``(metrics_dict(rr, top_k), rr)``.
    """
    check_top_k(top_k, n_items)
    rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=n_items)
    return metrics_dict(rr, top_k), rr
