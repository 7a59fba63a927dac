"""Retrieval without labels (chapter 06): query/gallery splits, searching with a new image, thresholds, an explorer."""

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN, PATHS_COLUMN
from oml.interfaces.datasets import IQueryGalleryDataset
from oml.interfaces.retrieval import IRetrievalPostprocessor
from oml.retrieval import RetrievalResults
from oml.utils.misc_torch import pairwise_dist

from oml_helpers.training import digit_transforms


def query_gallery_split(df: pd.DataFrame, n_queries_per_label: int, seed: int = 0) -> pd.DataFrame:
    """Mark a few images of every label as queries and all the others as the gallery (no image is both).

    Args:
        df: Rows of one split in OML's format (e.g. the validation part of the digits).
        n_queries_per_label: Queries drawn at random from each label; each label keeps at least one gallery image.
        seed: Seed of the draw.

    Returns:
        A copy of ``df`` with a fresh index and boolean ``is_query`` / ``is_gallery`` columns.
    """
    if n_queries_per_label < 1:
        raise ValueError(f"n_queries_per_label must be at least 1, got {n_queries_per_label}.")
    smallest = int(df[LABELS_COLUMN].value_counts().min()) if len(df) else 0
    if n_queries_per_label >= smallest:
        raise ValueError(
            f"n_queries_per_label={n_queries_per_label} leaves no gallery image for a label with {smallest} images; "
            f"use at most {smallest - 1}."
        )
    df = df.reset_index(drop=True).copy()
    queries = df.groupby(LABELS_COLUMN, sort=True).sample(n=n_queries_per_label, random_state=seed).index
    df[IS_QUERY_COLUMN] = df.index.isin(queries)
    df[IS_GALLERY_COLUMN] = ~df[IS_QUERY_COLUMN]
    return df


def load_image_tensor(image_path: Union[str, Path], image_size: int = 64) -> torch.Tensor:
    """Read any image file the way the digits were made: grey, white digit on black, square, normalised.

    Dark-on-light images (ink on paper) are inverted, so a photo of a handwritten digit also works.

    Args:
        image_path: A PNG, JPEG or any other format Pillow reads; any size, colour or grey.
        image_size: Side of the output in pixels.

    Returns:
        A ``[1, 3, image_size, image_size]`` tensor, ready for the model.

    Raises:
        FileNotFoundError: No file at ``image_path``.
        ValueError: The file is not an image Pillow can read.
    """
    path = Path(image_path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {path}. Check the path (relative paths start at {Path.cwd()}).")
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path} is not an image Pillow can read ({e}). Give a PNG or JPEG file.") from e
    if np.asarray(grey).mean() > 127:  # mostly light: ink on paper, while the digits are light on dark
        grey = Image.fromarray(255 - np.asarray(grey))
    square = grey.resize((image_size, image_size), Image.BILINEAR).convert("RGB")
    return digit_transforms(train=False)(square).unsqueeze(0)


def search_image(
    model: torch.nn.Module,
    image_path: Union[str, Path],
    gallery_dataset: IQueryGalleryDataset,
    gallery_embeddings: torch.Tensor,
    k: int = 5,
) -> pd.DataFrame:
    """The ``k`` gallery items nearest to a new image.

    Args:
        model: The extractor that made ``gallery_embeddings``.
        image_path: Image file to search with (see ``load_image_tensor``).
        gallery_dataset: Query/gallery dataset whose gallery is searched.
        gallery_embeddings: ``[n_gallery, feat_dim]`` embeddings of the gallery items, in the order of
            ``gallery_dataset.get_gallery_ids()``.
        k: Number of results, between 1 and the gallery size.

    Returns:
        One row per result, nearest first: ``rank``, ``gallery_id`` (position in the gallery),
        ``dataset_id`` (index in the dataset), ``distance``, and ``path`` when the dataset has paths.

    Raises:
        FileNotFoundError, ValueError: A bad image, ``k`` or embedding shape; the message says which.
    """
    gallery_ids = gallery_dataset.get_gallery_ids()
    n_gallery = len(gallery_ids)
    if gallery_embeddings.ndim != 2 or len(gallery_embeddings) != n_gallery:
        raise ValueError(
            f"gallery_embeddings must be [n_gallery, feat_dim] = [{n_gallery}, ...], got {tuple(gallery_embeddings.shape)}. "
            "Embed only the gallery items: embeddings[gallery_dataset.get_gallery_ids()]."
        )
    if not 1 <= k <= n_gallery:
        raise ValueError(f"k must be between 1 and the gallery size {n_gallery}, got {k}.")
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        query = model(load_image_tensor(image_path).to(device)).cpu()
    if query.shape[1] != gallery_embeddings.shape[1]:
        raise ValueError(
            f"The model gives {query.shape[1]}-d embeddings but gallery_embeddings are {gallery_embeddings.shape[1]}-d: "
            "embed the gallery with the same model."
        )
    distances, positions = pairwise_dist(query, gallery_embeddings.cpu().float()).topk(k, dim=1, largest=False)
    result = pd.DataFrame(
        {
            "rank": np.arange(1, k + 1),
            "gallery_id": positions[0].numpy(),
            "dataset_id": gallery_ids[positions[0]].numpy(),
            "distance": distances[0].numpy(),
        }
    )
    paths = getattr(gallery_dataset, "_paths", None)
    if paths is None and hasattr(gallery_dataset, "_dataset"):
        paths = getattr(gallery_dataset._dataset, "_paths", None)
    if paths is not None:
        result["path"] = [str(paths[i]) for i in result["dataset_id"]]
    return result


def thresholding_report(
    rr: RetrievalResults, postprocessors: Dict[str, IRetrievalPostprocessor]
) -> pd.DataFrame:
    """What each thresholding postprocessor keeps, and how precise and complete the kept results are.

    Args:
        rr: Retrieval results with ``gt_ids`` (the labels you know, used only to score).
        postprocessors: Name to postprocessor, e.g. ``{"th=0.5": ConstantThresholding(0.5)}``.

    Returns:
        One row per postprocessor (plus ``"none"``): ``kept_per_query`` (mean results left),
        ``empty_queries`` (share with none left), ``precision`` (share of kept results that are correct)
        and ``recall`` (share of the correct items within the original results that are kept).
    """
    if rr.gt_ids is None:
        raise ValueError("rr has no gt_ids, so precision and recall are unknown; build it from a labelled dataset.")
    relevant_before = _n_correct(rr)
    rows = {}
    for name, postprocessor in {"none": None, **postprocessors}.items():
        kept = rr if postprocessor is None else postprocessor.process(rr)
        n_kept = np.array([len(r) for r in kept.retrieved_ids])
        correct = _n_correct(kept)
        rows[name] = {
            "kept_per_query": n_kept.mean(),
            "empty_queries": (n_kept == 0).mean(),
            "precision": correct.sum() / max(n_kept.sum(), 1),
            "recall": correct.sum() / max(relevant_before.sum(), 1),
        }
    return pd.DataFrame(rows).T


def _n_correct(rr: RetrievalResults) -> np.ndarray:
    return np.array([int(torch.isin(r, gt).sum()) for r, gt in zip(rr.retrieved_ids, rr.gt_ids)])


def plot_top_k(
    rr: RetrievalResults,
    dataset: IQueryGalleryDataset,
    query_id: int,
    k: int = 5,
    title: str = "",
    ax_size: float = 1.3,
) -> plt.Figure:
    """One query and its ``k`` nearest gallery items with their distances, in one row.

    Frames are green/red for correct/wrong results when ``rr`` knows the correct items, grey otherwise.

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
    fig, axes = plt.subplots(1, k + 1, figsize=((k + 1) * ax_size, height), squeeze=False)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    query_image = dataset.visualize(item=int(dataset.get_query_ids()[query_id]), color=(0, 0, 255))
    _show(axes[0, 0], query_image, f"query {query_id}", "blue")
    gallery_ids = dataset.get_gallery_ids()
    for j, ax in enumerate(axes[0, 1:]):
        if j >= len(ids):
            ax.axis("off")
            continue
        gallery_id = int(ids[j])
        color = "grey" if rr.gt_ids is None else ("green" if gallery_id in rr.gt_ids[query_id] else "red")
        image = dataset.visualize(item=int(gallery_ids[gallery_id]), color=(0, 0, 0))
        _show(ax, image, f"#{gallery_id}\nd={float(dists[j]):.3g}", color)
    fig.tight_layout()
    return fig


def _show(ax: Any, image: np.ndarray, title: str, color: str) -> None:
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(3)
    ax.set_title(title, fontsize=8)


def retrieval_explorer(
    rr: RetrievalResults, dataset: IQueryGalleryDataset, k: int = 5, labels: Optional[Sequence[str]] = None
) -> Any:
    """An ipywidgets explorer: pick a query, see its top-k with distances (``plot_top_k``), redrawn on change.

    Widgets need a live kernel (Jupyter, Colab); a static page shows nothing in their place.

    Args:
        rr: Retrieval results of ``dataset``.
        dataset: The query/gallery dataset.
        k: Results shown per query, changeable with a slider.
        labels: Names of the queries in the dropdown; ``"query <i>"`` by default.

    Returns:
        An ``ipywidgets.VBox``; display it as the last line of a cell.
    """
    import ipywidgets as widgets
    from IPython.display import display

    n_queries = len(rr.retrieved_ids)
    labels = [f"query {i}" for i in range(n_queries)] if labels is None else list(labels)
    if len(labels) != n_queries:
        raise ValueError(f"labels has {len(labels)} names for {n_queries} queries; give one per query.")
    pick = widgets.Dropdown(options=list(zip(labels, range(n_queries))), value=0, description="query")
    top = widgets.IntSlider(value=k, min=1, max=max(rr.n_retrieved_items, 1), description="top k")
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
