"""Chapter 03's comparison: chapter 01's recipe in Lightning, then one change at a time, over seeds.

Each run trains ``SmallCNN`` with OML's ``ExtractorModule`` and validates once, after the last
epoch, on the unseen digits 5-9 (CMC@1, mAP@5, PCF@0.5, and the share of variance of the first
principal component of the validation embeddings). The configurations:

- ``recipe``: chapter 01's recipe: 64 px, 5 digits x 8 images (one step per epoch), 180 steps,
  Adam from 3e-3 on a cosine schedule passed as ``ExtractorModule(scheduler=...)``;
- ``32px``: the recipe at 32 px;
- ``32px+constant``: also a constant learning rate of 1e-3;
- ``32px+constant+2x32``: also batches of 2 digits x 32 images (two steps per epoch, 15 epochs):
  chapter 03's former set-up.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/lightning_recipe.py [--seeds 0 1 2] [--configs
...]``
"""

import argparse
import statistics
import time
from typing import Dict

import torch

import oml_helpers as h
from oml_helpers.training import RECIPE_BATCH, RECIPE_EPOCHS, RECIPE_LR
from oml.lightning.callbacks.metric import MetricValCallback

CONFIGS = {
    "recipe": dict(size=64, cosine=True, lr=RECIPE_LR, batch=RECIPE_BATCH, epochs=RECIPE_EPOCHS),
    "32px": dict(size=32, cosine=True, lr=RECIPE_LR, batch=RECIPE_BATCH, epochs=RECIPE_EPOCHS),
    "32px+constant": dict(size=32, cosine=False, lr=1e-3, batch=RECIPE_BATCH, epochs=RECIPE_EPOCHS),
    "32px+constant+2x32": dict(size=32, cosine=False, lr=1e-3, batch=(2, 32), epochs=15),
}


def run(config: Dict, seed: int) -> Dict[str, float]:
    """Train one configuration with one seed; return the metrics before and after, and the time."""
    root = h.default_data_root() / ("digits" if config["size"] == 64 else f"digits{config['size']}")
    df = h.make_digits_dataset(root, image_size=config["size"])
    train, val = h.make_datasets(df, root)
    train_loader, val_loader = h.make_loaders(train, val, *config["batch"])
    h.seed_everything(seed)
    model = h.SmallCNN()
    steps = config["epochs"] * len(train_loader) if config["cosine"] else None
    module = h.make_module(model, lr=config["lr"], cosine_steps=steps)
    before, _ = h.retrieval_metrics(model, val, top_k=(1, 5))
    metric = h.make_metric(val)
    trainer = h.make_trainer(
        config["epochs"],
        check_val_every_n_epoch=config["epochs"],
        logger=False,
        enable_checkpointing=False,
        callbacks=[MetricValCallback(metric)],
    )
    start = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {
        "untrained cmc/1": before["cmc/1"],
        "cmc/1": logged["OVERALL/cmc/1"],
        "map/5": logged["OVERALL/map/5"],
        "pcf/0.5": logged["OVERALL/pcf/0.5"],
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    h.silence_known_warnings()
    torch.set_num_threads(2)
    print("| configuration | seed | untrained CMC@1 | CMC@1 | mAP@5 | PCF@0.5 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in args.configs:
        rows = []
        for seed in args.seeds:
            row = run(CONFIGS[name], seed)
            rows.append(row)
            print(
                f"| {name} | {seed} | {row['untrained cmc/1']:.3f} | {row['cmc/1']:.3f} "
                f"| {row['map/5']:.3f} | {row['pcf/0.5']:.3f} | {row['seconds']:.0f} |",
                flush=True,
            )
        for key in ("cmc/1", "map/5"):
            values = [r[key] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(
                f"| {name} | mean +- sd of {key} | "
                f"| {statistics.mean(values):.3f} +- {spread:.3f} | "
                f"min {min(values):.3f} | max {max(values):.3f} | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
