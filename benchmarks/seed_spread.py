"""How much chapter 02's numbers move with the random seed: untrained inits and retrained models.

Chapter 02 reports the shipped model, which was trained once. This script scores, on the validation
digits 5-9, the shipped model, the untrained ``SmallCNN`` for three seeds and chapter 01's recipe
retrained with three seeds, and prints CMC@1, precision@5, mAP@1, mAP@5, the number of queries with
mAP@5 = 0 and the mean mAP@5 per digit, one row per model.

Usage: ``.venv/bin/python benchmarks/seed_spread.py [--seeds N] [--root DIR]``. Each retraining is
one run of chapter 01's recipe (about 17 s on 2 idle CPU cores, by chapter 01's figure; from 36 s to
several minutes under heavy load); ``--seeds 0`` scores only the shipped and untrained models.
"""

import argparse
import time

import pandas as pd
import torch

from oml.inference import inference
from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

import oml_helpers as h


def score(model: torch.nn.Module, dataset) -> dict:
    """Chapter 02's metrics of ``model`` on ``dataset``, overall and mAP@5 per digit."""
    rr = RetrievalResults.from_embeddings(
        inference(model, dataset, batch_size=256), dataset, n_items=10
    )
    m = calc_retrieval_metrics_rr(
        rr, cmc_top_k=(1,), precision_top_k=(5,), map_top_k=(1, 5), reduce=False, verbose=False
    )
    row = {
        "cmc/1": float(m["cmc"][1].mean()),
        "precision/5": float(m["precision"][5].mean()),
        "map/1": float(m["map"][1].mean()),
        "map/5": float(m["map"][5].mean()),
        "map/5 = 0": int((m["map"][5] == 0).sum()),
    }
    labels = dataset.get_labels()[dataset.get_query_ids()]
    per_digit = pd.Series(m["map"][5].numpy()).groupby(labels).mean()
    row.update({f"map/5 of {d}": float(v) for d, v in per_digit.items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    parser.add_argument("--root", default=str(h.default_data_root() / "digits"))
    args = parser.parse_args()
    h.silence_known_warnings()
    df = h.make_digits_dataset(args.root)
    _, val = h.make_datasets(df, args.root)
    rows = {"shipped": score(h.load_book_model("digits"), val)}
    for seed in range(3):
        h.seed_everything(seed)
        rows[f"untrained, seed {seed}"] = score(h.SmallCNN().to(h.get_device()).eval(), val)
    for seed in range(args.seeds):
        start = time.time()
        rows[f"retrained, seed {seed}"] = score(h.train_digits_model(args.root, seed=seed), val)
        print(f"seed {seed} trained in {time.time() - start:.0f} s", flush=True)
    print(pd.DataFrame(rows).T.round(3).to_markdown())


if __name__ == "__main__":
    main()
