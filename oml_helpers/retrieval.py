"""Retrieval (chapter 06): query/gallery splits, a store's answers as OML results,
thresholds, an explorer.

Searching with a new image is in ``image_search``.
"""

from typing import Any, Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN
from oml.interfaces.datasets import IQueryGalleryDataset
from oml.interfaces.retrieval import IRetrievalPostprocessor
from oml.retrieval import RetrievalResults

from oml_helpers.plots import framed


def query_gallery_split(
    df: pd.DataFrame, n_queries_per_label: int, seed: int = 0
) -> pd.DataFrame:
    """Mark a few images of every label as queries and all the others as the gallery
    (no image is both).

    Args:
        df: Rows of one split in OML's format (e.g. the validation part of the
            digits).
        n_queries_per_label: Queries drawn at random from each label; each label
            keeps at least one gallery image.
        seed: Seed of the draw.

    Returns:
        A copy of ``df`` with a fresh index and boolean ``is_query`` /
        ``is_gallery`` columns.
    """
    if n_queries_per_label < 1:
        raise ValueError(
            f"n_queries_per_label must be at least 1, got {n_queries_per_label}."
        )
    smallest = int(df[LABELS_COLUMN].value_counts().min()) if len(df) else 0
    if n_queries_per_label >= smallest:
        raise ValueError(
            f"n_queries_per_label={n_queries_per_label} leaves no gallery image "
            f"for a label with {smallest} images; use at most {smallest - 1}."
        )
    df = df.reset_index(drop=True).copy()
    queries = (
        df.groupby(LABELS_COLUMN, sort=True)
        .sample(n=n_queries_per_label, random_state=seed)
        .index
    )
    df[IS_QUERY_COLUMN] = df.index.isin(queries)
    df[IS_GALLERY_COLUMN] = ~df[IS_QUERY_COLUMN]
    return df


def results_from_search(
    found_ids: Sequence[np.ndarray],
    found_distances: Sequence[np.ndarray],
    gallery_ids: Sequence[int],
    query_labels: Optional[Sequence[int]] = None,
    gallery_labels: Optional[Sequence[int]] = None,
) -> RetrievalResults:
    """OML's ``RetrievalResults`` from a store's answers, so that OML's metrics and
    figures work on them.

    A store answers with *store ids*; ``RetrievalResults`` holds *gallery positions*
    (0 to n_gallery - 1, the order of ``gallery_ids``). This translates one into the
    other.

    Args:
        found_ids: Per query, the store ids found, nearest first
            (``SearchResult.ids``).
        found_distances: Per query, their distances, ascending
            (``SearchResult.distances``).
        gallery_ids: The store ids of the gallery; position ``p`` of the results
        means ``gallery_ids[p]``. query_labels, gallery_labels: Labels, only to
        score: with both, ``gt_ids`` are the gallery positions that share the
        query's label.

    Returns:
        ``RetrievalResults`` with float32 distances, and ``gt_ids`` when labels were
        given.

    Raises:
        ValueError: An id not in ``gallery_ids``, lengths that do not match, or only
            one kind of labels.
    """
    gallery_ids = np.asarray(gallery_ids, dtype=np.int64)
    position_of = {int(i): p for p, i in enumerate(gallery_ids.tolist())}
    if len(position_of) != len(gallery_ids):
        raise ValueError(
            "gallery_ids holds an id twice; give each gallery item's store id once."
        )
    if len(found_ids) != len(found_distances):
        raise ValueError(
            f"{len(found_ids)} rows of ids but {len(found_distances)} of "
            "distances; pass both arrays of one search."
        )
    retrieved, distances = [], []
    for ids, dists in zip(found_ids, found_distances):
        unknown = [
            int(i) for i in np.asarray(ids).ravel() if int(i) not in position_of
        ]
        if unknown:
            raise ValueError(
                f"store id {unknown[0]} is not in gallery_ids: search only the "
                "gallery (store.search(..., is_gallery=True)) or pass every "
                "gallery item's id."
            )
        retrieved.append(
            torch.tensor(
                [position_of[int(i)] for i in np.asarray(ids).ravel()],
                dtype=torch.long,
            )
        )
        distances.append(
            torch.as_tensor(np.asarray(dists, dtype=np.float32).ravel())
        )
    if (query_labels is None) != (gallery_labels is None):
        raise ValueError(
            "give both query_labels and gallery_labels (to score), or neither."
        )
    gt_ids = None
    if query_labels is not None:
        gallery_labels = np.asarray(gallery_labels)
        if len(query_labels) != len(retrieved) or len(gallery_labels) != len(
            gallery_ids
        ):
            raise ValueError(
                f"need one label per query ({len(retrieved)}) and per gallery item "
                f"({len(gallery_ids)}), got {len(query_labels)} and "
                f"{len(gallery_labels)}."
            )
        gt_ids = [
            torch.from_numpy(np.flatnonzero(gallery_labels == label)).long()
            for label in query_labels
        ]
    return RetrievalResults(
        distances=distances, retrieved_ids=retrieved, gt_ids=gt_ids
    )


def correct_mask(rr: RetrievalResults, name: str = "rr") -> List[torch.Tensor]:
    """Which retrieved items are correct: per query, ``True`` where the item is one
    of the query's ``gt_ids`` (what OML's metrics count as a hit).

    Args:
        rr: Retrieval results with ``gt_ids``.
        name: What to call ``rr`` in the error message.

    Returns:
        One boolean tensor per query, as long as its retrieved items.

    Raises:
        ValueError: ``rr`` has no ``gt_ids``.
    """
    if rr.gt_ids is None:
        raise ValueError(
            f"{name} has no gt_ids: build it from a labelled dataset to know which "
            "results are right."
        )
    return [torch.isin(ids, gt) for ids, gt in zip(rr.retrieved_ids, rr.gt_ids)]


def select_queries(
    rr: RetrievalResults, queries: Sequence[int]
) -> RetrievalResults:
    """The results of some queries only (e.g. a tuning half and a held-out half).

    Args:
        rr: Retrieval results.
        queries: Query positions (0 to n_queries - 1) to keep, in the order wanted.

    Returns:
        ``RetrievalResults`` of those queries; gallery positions are unchanged.
    """
    queries = [int(q) for q in queries]
    n_queries = len(rr.retrieved_ids)
    bad = [q for q in queries if not 0 <= q < n_queries]
    if bad:
        raise ValueError(f"query position {bad[0]} is outside 0..{n_queries - 1}.")
    pick = lambda values: None if values is None else [values[q] for q in queries]  # noqa: E731
    return RetrievalResults(
        distances=pick(rr.distances),
        retrieved_ids=pick(rr.retrieved_ids),
        gt_ids=pick(rr.gt_ids),
    )


def thresholding_report(
    rr: RetrievalResults, postprocessors: Dict[str, IRetrievalPostprocessor]
) -> pd.DataFrame:
    """What each thresholding postprocessor keeps, and how precise and complete the
    kept results are.

    Args:
        rr: Retrieval results with ``gt_ids`` (the labels you know, used only to
            score).
        postprocessors: Name to postprocessor, e.g. ``{"th=0.5":
            ConstantThresholding(0.5)}``.

    Returns:
        One row per postprocessor (plus ``"none"``): ``kept_per_query`` (mean
        results left), ``empty_queries`` (share of queries with none left),
        ``pooled_precision`` (of all results kept, over all queries together, the
        share that is correct; not OML's precision@k, a mean over queries) and
        ``pooled_recall`` (of the correct items among the results before cutting,
        the share that is kept).
    """
    if rr.gt_ids is None:
        raise ValueError(
            "rr has no gt_ids, so precision and recall are unknown; build it from "
            "a labelled dataset."
        )
    relevant_before = _n_correct(rr)
    rows = {}
    for name, postprocessor in {"none": None, **postprocessors}.items():
        kept = rr if postprocessor is None else postprocessor.process(rr)
        n_kept = np.array([len(r) for r in kept.retrieved_ids])
        correct = _n_correct(kept)
        rows[name] = {
            "kept_per_query": n_kept.mean(),
            "empty_queries": (n_kept == 0).mean(),
            "pooled_precision": correct.sum() / max(n_kept.sum(), 1),
            "pooled_recall": correct.sum() / max(relevant_before.sum(), 1),
        }
    return pd.DataFrame(rows).T


def _n_correct(rr: RetrievalResults) -> np.ndarray:
    return np.array([int(right.sum()) for right in correct_mask(rr)])


def plot_top_k(
    rr: RetrievalResults,
    dataset: IQueryGalleryDataset,
    query_id: int,
    k: int = 5,
    title: str = "",
    ax_size: float = 1.3,
) -> plt.Figure:
    """One query and its ``k`` nearest gallery items with their distances, in one
    row.

    Frames are green/red for correct/wrong results when ``rr`` knows the correct
    items, grey otherwise.

    Args:
        rr: Retrieval results of ``dataset``.
        dataset: The query/gallery dataset, with images (``visualize``).
        query_id: Query index, from 0 to the number of queries - 1.
        k: Results shown (fewer if the query has fewer, e.g. after thresholding).
        title: Figure title.
        ax_size: Inches per image.

    Returns:
        The figure.
    """
    n_queries = len(rr.retrieved_ids)
    if not 0 <= query_id < n_queries:
        raise ValueError(f"query_id must be in 0..{n_queries - 1}, got {query_id}.")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    ids, dists = rr.retrieved_ids[query_id][:k], rr.distances[query_id][:k]
    height = ax_size * (1.45 if title else 1.25)
    fig, axes = plt.subplots(
        1, k + 1, figsize=((k + 1) * ax_size, height), squeeze=False
    )
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    query_image = dataset.visualize(
        item=int(dataset.get_query_ids()[query_id]), color=(0, 0, 255)
    )
    framed(axes[0, 0], query_image, f"query {query_id}", "blue")
    gallery_ids = dataset.get_gallery_ids()
    right = None if rr.gt_ids is None else correct_mask(rr)[query_id][:k]
    for j, ax in enumerate(axes[0, 1:]):
        if j >= len(ids):
            ax.axis("off")
            continue
        gallery_id = int(ids[j])
        color = "grey" if right is None else ("green" if right[j] else "red")
        image = dataset.visualize(
            item=int(gallery_ids[gallery_id]), color=(0, 0, 0)
        )
        framed(ax, image, f"#{gallery_id}\nd={float(dists[j]):.3g}", color)
    fig.tight_layout()
    return fig


def retrieval_explorer(
    rr: RetrievalResults,
    dataset: IQueryGalleryDataset,
    k: int = 5,
    labels: Optional[Sequence[str]] = None,
    query: int = 0,
) -> Any:
    """An ipywidgets explorer: pick a query, see its top-k with distances
    (``plot_top_k``), redrawn on change.

    Widgets need a live kernel (Jupyter, Colab); a static page shows nothing in
    their place.

    Args:
        rr: Retrieval results of ``dataset``.
        dataset: The query/gallery dataset.
        k: Results shown per query, changeable with a slider.
        labels: Names of the queries in the dropdown; ``"query <i>"`` by default.
        query: The query shown first.

    Returns:
        An ``ipywidgets.VBox``; display it as the last line of a cell.
    """
    import ipywidgets as widgets
    from IPython.display import display

    n_queries = len(rr.retrieved_ids)
    labels = (
        [f"query {i}" for i in range(n_queries)] if labels is None else list(labels)
    )
    if len(labels) != n_queries:
        raise ValueError(
            f"labels has {len(labels)} names for {n_queries} queries; give one per "
            "query."
        )
    if not 0 <= query < n_queries:
        raise ValueError(f"query must be in 0..{n_queries - 1}, got {query}.")
    pick = widgets.Dropdown(
        options=list(zip(labels, range(n_queries))),
        value=query,
        description="query",
    )
    top = widgets.IntSlider(
        value=k, min=1, max=max(rr.n_retrieved_items, 1), description="top k"
    )
    out = widgets.Output()

    def redraw(_: Any = None) -> None:
        out.clear_output(wait=True)
        with out:
            fig = plot_top_k(rr, dataset, pick.value, top.value)
            display(fig)
            plt.close(fig)

    pick.observe(redraw, names="value")
    top.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([pick, top]), out])
