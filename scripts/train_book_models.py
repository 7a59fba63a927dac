"""Retrain the book's shipped models by their recipes and write them to oml_helpers/weights/.

The digits extractor (chapter 01's recipe) and the pairwise model of chapter 07 (which starts from
the shipped digits model, so retrain "digits" first). Each file records its recipe's fingerprint and
metrics; the tests fail while a file is stale and retrain to check that the recipe still gives
metrics within a stated tolerance of the shipped ones.

Usage: python scripts/train_book_models.py [digits] [siamese]   (default: both, in that order)
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import oml_helpers as h  # noqa: E402
from oml_helpers import book_models  # noqa: E402


def main(names: list) -> None:
    h.silence_known_warnings()
    unknown = sorted(set(names) - set(book_models.RECIPES))
    if unknown:
        sys.exit(f"Unknown model(s) {unknown}; choose from {sorted(book_models.RECIPES)}.")
    root = os.path.join(tempfile.gettempdir(), "oml-book-digits")
    for name in [n for n in book_models.RECIPES if n in names] or list(book_models.RECIPES):
        start = time.perf_counter()
        model = book_models.train_book_model(name, root)
        metrics = book_models.evaluate_book_model(name, model, root)
        path = book_models.save_book_model(name, model, metrics)
        print(f"{name}: {metrics} in {time.perf_counter() - start:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
