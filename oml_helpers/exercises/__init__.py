"""Checkers for the chapters' exercises: each says whether an answer is right and, if not, why.

Every checker returns a ``Verdict``: it is true when the answer is right, and a notebook shows it as
one line starting with "Correct" or "Not yet" that says why. The right answers are computed from OML
or from the data, never stored. The student edition's untouched starting code (an answer still
``...``, a function whose body is still ``...``) gets a "Not yet" too, not a crash. One module per
group of chapters; all checkers are importable from here, e.g.
``oml_helpers.exercises.check_balance_epoch``.
"""

from oml_helpers.exercises.verdict import RIGHT, WRONG, Verdict
from oml_helpers.exercises.basics import (
    EXERCISE_HITS,
    EXERCISE_N_GT,
    check_average_precision,
    check_hardest_negatives,
    check_metrics_by_hand,
    check_balance_epoch,
    check_triplet_loss,
)
from oml_helpers.exercises.dataframes import check_query_rows, check_separate_queries
from oml_helpers.exercises.storage import check_cosine_top_k, check_counts_per_label, check_precision_per_label
from oml_helpers.exercises.lightning import (
    DIAGNOSES,
    check_best_epoch,
    check_best_from_state,
    check_diagnose,
    check_loaded_share,
    check_pcf,
    check_tensorboard_per_epoch,
)
from oml_helpers.exercises.freezing import check_freeze_callback
from oml_helpers.exercises.retrieval import check_precision_threshold, check_search, check_threshold_by_hand
from oml_helpers.exercises.validation import check_confusion_table
from oml_helpers.exercises.reranking import check_cost_estimate, check_cut_after_rerank, check_hard_pairs

__all__ = [
    "DIAGNOSES",
    "EXERCISE_HITS",
    "EXERCISE_N_GT",
    "RIGHT",
    "Verdict",
    "WRONG",
    "check_average_precision",
    "check_best_epoch",
    "check_best_from_state",
    "check_cosine_top_k",
    "check_cost_estimate",
    "check_confusion_table",
    "check_cut_after_rerank",
    "check_counts_per_label",
    "check_diagnose",
    "check_freeze_callback",
    "check_hard_pairs",
    "check_hardest_negatives",
    "check_loaded_share",
    "check_metrics_by_hand",
    "check_pcf",
    "check_precision_per_label",
    "check_precision_threshold",
    "check_query_rows",
    "check_search",
    "check_separate_queries",
    "check_tensorboard_per_epoch",
    "check_threshold_by_hand",
    "check_balance_epoch",
    "check_triplet_loss",
]
