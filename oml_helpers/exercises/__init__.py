"""Checkers for the chapters' exercises: each says whether an answer is right and,
if not, why.

Every checker returns a ``Verdict``: it is true when the answer is right, and a
notebook shows it as one line starting with "Correct" or "Not yet" that says why.
The right answers are computed from OML or from the data, never stored. The student
edition's untouched starting code (an answer still ``...``, a function whose body is
still ``...``) gets a "Not yet" too, not a crash.

One module per chapter, named after its notebook (``data_and_setup`` for chapter 00,
``training`` for 01, ..., ``reranking`` for 07, ``your_own_images`` for 08), with
the constants its checkers use beside them. Some chapters have more modules, to keep
each one short: ``ground_truth`` (chapter 00's ground-truth exercise),
``balance_batches`` (chapter 01's sampler exercise), ``validation_ap`` and
``validation_shifts`` (chapter 02's average-precision and coarse-pixel exercises),
``log_reading`` (chapter 03's two log exercises), ``checkpointing_bootstrap``
(chapter 04's bootstrap exercise), ``store_relabel`` and ``store_and_model``
(chapter 05's relabelling and model exercises), ``own_images_knn``,
``own_images_modes`` (chapter 08's kNN and colour-mode exercises),
``retrieval_search`` (chapter 06's search exercise) and ``reranking_budget``
(chapter 07's time-budget exercise). ``verdict``
holds what they share. All checkers are importable from here, e.g.
``oml_helpers.exercises.check_balance_batches``.
"""

from oml_helpers.exercises.verdict import RIGHT, WRONG, Verdict
from oml_helpers.exercises.data_and_setup import (
    NO_GTS_WARNING,
    check_lost_match,
    check_separate_queries,
)
from oml_helpers.exercises.ground_truth import check_gt_ids
from oml_helpers.exercises.balance_batches import check_balance_batches
from oml_helpers.exercises.training import (
    check_collapse_diagnosis,
    check_half_margin,
)
from oml_helpers.exercises.validation import (
    check_cmc1_from_diagonal,
    check_confusion_table,
    check_mixups,
)
from oml_helpers.exercises.validation_ap import check_average_precision
from oml_helpers.exercises.validation_shifts import check_coarse_pixels
from oml_helpers.exercises.lightning_and_logging import check_freeze_callback
from oml_helpers.exercises.log_reading import (
    check_log_diagnosis,
    check_tensorboard_per_epoch,
)
from oml_helpers.exercises.checkpointing import (
    DIAGNOSES,
    check_diagnose,
    check_loaded_share,
)
from oml_helpers.exercises.checkpointing_bootstrap import check_unpaired_interval
from oml_helpers.exercises.embedding_store import check_precision_per_label
from oml_helpers.exercises.store_relabel import check_relabel
from oml_helpers.exercises.store_and_model import check_add_images
from oml_helpers.exercises.retrieval import (
    check_adaptive_by_hand,
    check_precision_threshold,
)
from oml_helpers.exercises.retrieval_search import check_search
from oml_helpers.exercises.own_images_knn import check_knn
from oml_helpers.exercises.own_images_modes import check_fnmr_by_mode
from oml_helpers.exercises.your_own_images import check_same_photo_cost
from oml_helpers.exercises.reranking import check_cut_after_rerank, check_hard_pairs
from oml_helpers.exercises.reranking_budget import check_rerank_budget

__all__ = [
    "RIGHT",
    "WRONG",
    "Verdict",
    # 00 Data and setup
    "NO_GTS_WARNING",
    "check_gt_ids",
    "check_lost_match",
    "check_separate_queries",
    # 01 Training
    "check_balance_batches",
    "check_collapse_diagnosis",
    "check_half_margin",
    # 02 Validation
    "check_average_precision",
    "check_confusion_table",
    "check_coarse_pixels",
    "check_cmc1_from_diagonal",
    "check_mixups",
    # 03 Lightning and logging
    "check_freeze_callback",
    "check_log_diagnosis",
    "check_tensorboard_per_epoch",
    # 04 Checkpointing
    "DIAGNOSES",
    "check_diagnose",
    "check_loaded_share",
    "check_unpaired_interval",
    # 05 Embedding store
    "check_precision_per_label",
    "check_relabel",
    "check_add_images",
    # 06 Retrieval
    "check_adaptive_by_hand",
    "check_precision_threshold",
    "check_search",
    # 07 Re-ranking
    "check_cut_after_rerank",
    "check_hard_pairs",
    "check_rerank_budget",
    # 08 Your own images
    "check_fnmr_by_mode",
    "check_knn",
    "check_same_photo_cost",
]
