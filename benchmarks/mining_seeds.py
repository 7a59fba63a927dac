"""All triplets against hard mining over a few seeds: chapter 01's comparison without the luck of
one run.

Each variant trains chapter 01's recipe (SmallCNN, 180 steps of 5 digits x 8 images, margin 0.2,
Adam from 3e-3 on a cosine schedule) from the same seeds, then scores the unseen digits 5-9:

- ranking: CMC@1, precision@5, mAP@5 (``h.retrieval_metrics``);
- distances: ``pos_dist`` / ``neg_dist`` of the last 10 training steps (the miner's own triplets);
- a distance threshold: the one with the best F1 for "same digit" over all pairs of the *training*
  digits (unaugmented), applied to all pairs of the unseen digits: precision and recall there;
- int8: CMC@1 after the embeddings are stored as int8 codes with one scale per row
  (``h.int8_round_trip``), as a test of how much the ranking rests on tiny distances.

Variants: ``all`` (AllTripletsMiner, the book's recipe), ``hard`` (HardTripletsMiner), ``nhard``
(NHardTripletsMiner with the 3 hardest positives and 8 hardest negatives per anchor) and
``all>hard`` (90 steps with all triplets, then 90 with HardTripletsMiner from lr 3e-4).

Usage: cd notebooks && python ../benchmarks/mining_seeds.py [--seeds 0 1 2 3 4] [--variants all hard
nhard all>hard] Run it from notebooks/ (the data folder is ./data). Each run trains the recipe once
(about 17 s on 2 idle cores) and scores it.
"""

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from typing import Dict

import numpy as np
import pandas as pd
import torch

from oml.inference import inference
from oml.miners import HardTripletsMiner, NHardTripletsMiner
from oml.retrieval import RetrievalResults
from oml.metrics import calc_retrieval_metrics_rr

import oml_helpers as h
from chapter_times import cpu_name

VARIANTS = ("all", "hard", "nhard", "all>hard")


def train_variant(variant: str, seed: int, train) -> tuple:
    """Train one variant from ``seed``; return the model and the logs of its last 10 steps."""
    h.seed_everything(seed)
    model = h.SmallCNN()
    if variant == "all":
        logs = h.train_extractor(model, train)
    elif variant == "hard":
        logs = h.train_extractor(model, train, miner=HardTripletsMiner())
    elif variant == "nhard":
        logs = h.train_extractor(model, train, miner=NHardTripletsMiner(n_positive=3, n_negative=8))
    elif variant == "all>hard":
        h.train_extractor(model, train, epochs=90)
        logs = h.train_extractor(model, train, epochs=90, lr=3e-4, miner=HardTripletsMiner())
    else:
        raise ValueError(f"Unknown variant {variant!r}; choose from {VARIANTS}.")
    return model, logs.iloc[-10:].mean()


def pair_distances(embeddings: torch.Tensor, labels: np.ndarray) -> tuple:
    """Distances and same-label flags of all unordered pairs."""
    rows, cols = np.triu_indices(len(labels), k=1)
    distances = torch.cdist(embeddings, embeddings).numpy()[rows, cols]
    return distances, labels[rows] == labels[cols]


def best_f1_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The distance below which pairs are called "same digit" that gives the best F1."""
    order = np.argsort(distances)
    true_pos = np.cumsum(same[order])
    precision = true_pos / np.arange(1, len(order) + 1)
    recall = true_pos / same.sum()
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(distances[order][np.argmax(f1)])


def score(model, plain_train, val) -> Dict[str, float]:
    """Ranking, threshold and int8 scores on the unseen digits."""
    metrics, _ = h.retrieval_metrics(model, val)
    train_emb = inference(model, plain_train, batch_size=256)
    val_emb = inference(model, val, batch_size=256)
    threshold = best_f1_threshold(*pair_distances(train_emb, np.asarray(plain_train.get_labels())))
    distances, same = pair_distances(val_emb, np.asarray(val.get_labels()))
    accepted = distances <= threshold
    rr = RetrievalResults.from_embeddings(h.int8_round_trip(val_emb), val, n_items=10)
    int8 = calc_retrieval_metrics_rr(rr, cmc_top_k=(1,), verbose=False)
    return {
        "cmc1": metrics["cmc/1"],
        "prec5": metrics["precision/5"],
        "map5": metrics["map/5"],
        "threshold": threshold,
        "th_precision": float(same[accepted].mean()) if accepted.any() else float("nan"),
        "th_recall": float(accepted[same].mean()),
        "int8_cmc1": float(int8["cmc"][1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()

    h.silence_known_warnings()
    root = h.default_data_root() / "digits"
    df = h.make_digits_dataset(root)
    train, val = h.make_datasets(df, root)
    plain_train, _ = h.make_datasets(df, root, augment=False)

    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            start = time.perf_counter()
            model, last = train_variant(variant, seed, train)
            row = {
                "variant": variant,
                "seed": seed,
                **score(model, plain_train, val),
                "pos_dist": last["pos_dist"],
                "neg_dist": last["neg_dist"],
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(
                " ".join(
                    f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                ),
                flush=True,
            )

    table = pd.DataFrame(rows)
    columns = [
        "cmc1",
        "prec5",
        "map5",
        "th_precision",
        "th_recall",
        "int8_cmc1",
        "pos_dist",
        "neg_dist",
    ]
    summary = table.groupby("variant", sort=False)[columns].agg(["mean", "min", "max"])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    print(
        f"\n{stamp}, {cpu_name()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, seeds {args.seeds}, load average {load:.1f} at the end"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
