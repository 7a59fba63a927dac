"""Helpers shared by the chapters of the OML 4.0 tutorial book.

Each module holds one concern; the names below are the public ones.
"""

import os as _os

# albumentations (imported by OML) asks the package index for its newest version at
# import: not offline.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from oml_helpers import exercises  # noqa: E402
from oml_helpers.book_models import (  # noqa: E402
    StaleModelWarning,
    book_model_info,
    load_book_model,
    recipe_fingerprint,
)
from oml_helpers.checks import OutsideStatedRangeError, expect_between  # noqa: E402
from oml_helpers.checkpoints import (  # noqa: E402
    CheckpointError,
    best_checkpoint,
    extractor_state_dict,
    load_extractor,
    read_checkpoint,
    save_extractor,
)
from oml_helpers.colab import in_colab  # noqa: E402
from oml_helpers.data import (  # noqa: E402
    DatasetFormatError,
    check_dataframe,
    default_data_root,
    digit_transforms,
    make_digits_dataset,
    split_dataframe,
)
from oml_helpers.folders import folder_to_dataframe, split_queries  # noqa: E402
from oml_helpers.device import (  # noqa: E402
    get_device,
    seed_everything,
    silence_known_warnings,
)
from oml_helpers.lightning import (  # noqa: E402
    MetricValCallbackFewFigures,
    make_loaders,
    make_metric,
    make_module,
    make_trainer,
    quiet_lightning,
)
from oml_helpers.logs import (  # noqa: E402
    LogError,
    plot_metric_curves,
    read_csv_metrics,
    read_tensorboard_scalars,
    tensorboard_image,
    tensorboard_image_tags,
)
from oml_helpers.metrics import (  # noqa: E402
    embedding_metrics,
    flatten_metrics,
    metrics_dict,
)
from oml_helpers.mining import (  # noqa: E402
    embedding_report,
    int8_round_trip,
    pair_distances,
)
from oml_helpers.models import (
    PretrainedUnavailableError,
    SmallCNN,
    count_parameters,
    pretrained_extractor,
)
from oml_helpers.pair_accuracy import (  # noqa: E402
    best_threshold,
    neighbour_pair_scores,
    order_accuracy,
    pair_accuracy,
)
from oml_helpers.number_line import plot_number_line  # noqa: E402
from oml_helpers.photos import (  # noqa: E402
    PhotoCollection,
    load_photo,
    make_photo_collection,
    photo_transforms,
)
from oml_helpers.plots import (  # noqa: E402
    plot_distance_histograms,
    plot_pca,
    plot_pairs,
    plot_search,
    plot_training_logs,
    show_images,
)
from oml_helpers.reranking import (  # noqa: E402
    PairFusionExtractor,
    changed_top1,
    dataset_with_embeddings,
    make_siamese,
    rerank,
    train_siamese,
)
from oml_helpers.image_search import (  # noqa: E402
    embed_image,
    load_image_tensor,
    prepare_digit_photo,
    read_image,
    search_image,
)
from oml_helpers.retrieval import (  # noqa: E402
    correct_mask,
    plot_top_k,
    query_gallery_split,
    results_from_search,
    retrieval_explorer,
    select_queries,
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
from oml_helpers.verification import (  # noqa: E402
    knn_classify,
    match_rates,
    match_threshold,
    near_duplicates,
    pair_distances_rr,
)
from oml_helpers.training import (  # noqa: E402
    balanced_loader,
    make_criterion,
    make_datasets,
    retrieval_metrics,
    train_digits_model,
    train_extractor,
)

__all__ = [
    "CheckpointError",
    "DatasetFormatError",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingStore",
    "LogError",
    "MetadataError",
    "PairFusionExtractor",
    "PhotoCollection",
    "PretrainedUnavailableError",
    "OutsideStatedRangeError",
    "SmallCNN",
    "StaleModelWarning",
    "StoreError",
    "StoreFileError",
    "UnknownIdError",
    "best_checkpoint",
    "balanced_loader",
    "best_threshold",
    "book_model_info",
    "changed_top1",
    "check_dataframe",
    "correct_mask",
    "count_parameters",
    "dataset_with_embeddings",
    "embedding_report",
    "default_data_root",
    "digit_transforms",
    "embed_image",
    "embedding_metrics",
    "exercises",
    "expect_between",
    "extractor_state_dict",
    "flatten_metrics",
    "folder_to_dataframe",
    "get_device",
    "in_colab",
    "int8_round_trip",
    "knn_classify",
    "load_book_model",
    "load_extractor",
    "load_image_tensor",
    "load_photo",
    "make_datasets",
    "make_criterion",
    "make_digits_dataset",
    "make_photo_collection",
    "match_rates",
    "match_threshold",
    "near_duplicates",
    "make_siamese",
    "metrics_dict",
    "neighbour_pair_scores",
    "order_accuracy",
    "pair_accuracy",
    "pair_distances",
    "pair_distances_rr",
    "photo_transforms",
    "plot_metric_curves",
    "plot_number_line",
    "plot_distance_histograms",
    "plot_pca",
    "plot_pairs",
    "plot_search",
    "plot_top_k",
    "plot_training_logs",
    "prepare_digit_photo",
    "pretrained_extractor",
    "query_gallery_split",
    "read_checkpoint",
    "read_image",
    "recipe_fingerprint",
    "read_csv_metrics",
    "read_tensorboard_scalars",
    "rerank",
    "results_from_search",
    "retrieval_explorer",
    "retrieval_metrics",
    "save_extractor",
    "search_image",
    "seed_everything",
    "select_queries",
    "show_images",
    "silence_known_warnings",
    "split_dataframe",
    "split_queries",
    "tensorboard_image",
    "tensorboard_image_tags",
    "thresholding_report",
    "train_digits_model",
    "train_extractor",
    "train_siamese",
    "MetricValCallbackFewFigures",
    "make_loaders",
    "make_metric",
    "make_module",
    "make_trainer",
    "quiet_lightning",
]
