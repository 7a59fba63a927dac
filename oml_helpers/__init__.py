"""Helpers shared by the chapters of the OML 4.0 tutorial book.

Each module holds one concern; the names below are the public ones.
"""

import os as _os

# albumentations (imported by OML) asks the package index for its newest version at import: not offline.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from oml_helpers.data import (  # noqa: E402
    DatasetFormatError,
    check_dataframe,
    default_data_root,
    make_digits_dataset,
    split_dataframe,
)
from oml_helpers.device import get_device, seed_everything, silence_known_warnings  # noqa: E402
from oml_helpers.models import PretrainedUnavailableError, SmallCNN, count_parameters, pretrained_extractor  # noqa: E402
from oml_helpers.plots import plot_training_logs, show_images  # noqa: E402
from oml_helpers.reranking import (  # noqa: E402
    HalvesExtractor,
    changed_top1,
    dataset_with_embeddings,
    make_siamese,
    metrics_dict,
    rerank,
    train_siamese,
)
from oml_helpers.retrieval import (  # noqa: E402
    load_image_tensor,
    plot_top_k,
    query_gallery_split,
    retrieval_explorer,
    search_image,
    thresholding_report,
)
from oml_helpers.storage import (  # noqa: E402
    DuplicateIdError,
    EmbeddingError,
    EmbeddingStore,
    MetadataError,
    StoreError,
    StoreFileError,
    UnknownIdError,
)
from oml_helpers.training import (  # noqa: E402
    digit_transforms,
    make_datasets,
    retrieval_metrics,
    train_digits_model,
    train_extractor,
)

__all__ = [
    "DatasetFormatError",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingStore",
    "HalvesExtractor",
    "MetadataError",
    "PretrainedUnavailableError",
    "SmallCNN",
    "StoreError",
    "StoreFileError",
    "UnknownIdError",
    "changed_top1",
    "check_dataframe",
    "count_parameters",
    "dataset_with_embeddings",
    "default_data_root",
    "digit_transforms",
    "get_device",
    "load_image_tensor",
    "make_datasets",
    "make_digits_dataset",
    "make_siamese",
    "metrics_dict",
    "plot_top_k",
    "plot_training_logs",
    "pretrained_extractor",
    "query_gallery_split",
    "rerank",
    "retrieval_explorer",
    "retrieval_metrics",
    "search_image",
    "seed_everything",
    "show_images",
    "silence_known_warnings",
    "split_dataframe",
    "thresholding_report",
    "train_digits_model",
    "train_extractor",
    "train_siamese",
]
