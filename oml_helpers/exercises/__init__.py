"""Checkers for the chapters' exercises: each says whether an answer is right and,
if not, why.

Every checker returns a ``Verdict``: it is true when the answer is right, and a
notebook shows it as one line starting with "Correct" or "Not yet" that says why.
The right answers are computed from OML or from the data, never stored. The student
edition's untouched starting code (an answer still ``...``, a function whose body is
still ``...``) gets a "Not yet" too, not a crash. One module per group of chapters;
all checkers are importable from here, e.g.
``oml_helpers.exercises.check_balance_epoch``.
"""

from oml_helpers.exercises.verdict import RIGHT, WRONG, Verdict
from oml_helpers.exercises.basics import (
    EXERCISE_HITS,
    EXERCISE_N_GT,
    check_average_precision,
    check_balance_epoch,
    check_collapse_diagnosis,
    check_metrics_by_hand,
    check_triplet_loss,
)
from oml_helpers.exercises.dataframes import (
    NO_GTS_WARNING,
    check_lost_match,
    check_query_rows,
    check_separate_queries,
)
from oml_helpers.exercises.storage import (
    check_cosine_top_k,
    check_open_for,
    check_precision_per_label,
)
from oml_helpers.exercises.storage_transactions import check_relabel
from oml_helpers.exercises.lightning import (
    check_best_epoch,
    check_pcf,
    check_tensorboard_per_epoch,
)
from oml_helpers.exercises.checkpoints import (
    DIAGNOSES,
    check_best_k_from_state,
    check_diagnose,
    check_loaded_share,
)
from oml_helpers.exercises.retrieval import (
    check_adaptive_by_hand,
    check_precision_threshold,
    check_search,
)
from oml_helpers.exercises.validation import (
    TEXTBOOK_HITS,
    TEXTBOOK_N_GT,
    check_confusion_table,
    check_oml_against_textbook,
)
from oml_helpers.exercises.reranking import (
    check_cut_after_rerank,
    check_hard_pairs,
    check_rerank_budget,
)
from oml_helpers.exercises.freezing import check_freeze_callback

__all__ = [
    "NO_GTS_WARNING",
    "check_adaptive_by_hand",
    "DIAGNOSES",
    "EXERCISE_HITS",
    "EXERCISE_N_GT",
    "RIGHT",
    "TEXTBOOK_HITS",
    "TEXTBOOK_N_GT",
    "Verdict",
    "WRONG",
    "check_average_precision",
    "check_best_epoch",
    "check_best_k_from_state",
    "check_cosine_top_k",
    "check_collapse_diagnosis",
    "check_confusion_table",
    "check_oml_against_textbook",
    "check_cut_after_rerank",
    "check_diagnose",
    "check_freeze_callback",
    "check_hard_pairs",
    "check_loaded_share",
    "check_lost_match",
    "check_metrics_by_hand",
    "check_open_for",
    "check_pcf",
    "check_precision_per_label",
    "check_precision_threshold",
    "check_rerank_budget",
    "check_query_rows",
    "check_relabel",
    "check_search",
    "check_separate_queries",
    "check_tensorboard_per_epoch",
    "check_balance_epoch",
    "check_triplet_loss",
]
