"""Chapter 08's model over a few seeds: how much of "trained beats untrained" is luck.

For each seed, as the chapter does for seed 0: a fresh SmallCNN is scored untrained on the unseen
photos' tiles (astronaut, coffee, coins, rocket), then trained with chapter 01's recipe (20 epochs
of 8 things x 4 views, all triplets, Adam from 3e-3 on a cosine schedule, 48 px) on the other eight
photos' tiles, and scored again. Raw pixels are scored once (they have no seed).

Usage: cd notebooks && python ../benchmarks/photos_seeds.py [--seeds 0 1 2 3 4]
Each seed trains for about 20 s on 2 idle cores.
"""

import argparse
import platform
import time
from datetime import datetime, timezone

import pandas as pd
import torch

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset

import oml_helpers as h
from chapter_times import cpu_name

VALIDATION_PHOTOS = ["astronaut", "coffee", "coins", "rocket"]
KEYS = ("cmc/1", "precision/5", "map/5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    h.silence_known_warnings()
    collection = h.make_photo_collection(h.default_data_root() / "photos")
    validation = [c for c in collection.classes if c.rsplit("_", 1)[0] in VALIDATION_PHOTOS]
    df = h.folder_to_dataframe(collection.root, validation, n_queries=2)
    train = ImageLabeledDataset(
        df[df["split"] == "train"].reset_index(drop=True),
        dataset_root=collection.root,
        transform=h.photo_transforms(train=True),
        cache_size=len(df),
    )
    val = ImageQueryGalleryLabeledDataset(
        df[df["split"] == "validation"].reset_index(drop=True),
        dataset_root=collection.root,
        transform=h.photo_transforms(train=False),
        cache_size=len(df),
    )
    pixels = torch.stack([val[i]["input_tensors"].flatten() for i in range(len(val))])
    rows = [{"seed": "-", "model": "raw pixels",
             **h.embedding_metrics(pixels, val, (1, 5), 10)[0]}]  # fmt: skip
    for seed in args.seeds:
        h.seed_everything(seed)
        model = h.SmallCNN().eval()
        rows.append({"seed": seed, "model": "untrained", **h.retrieval_metrics(model, val)[0]})
        h.seed_everything(seed)
        start = time.perf_counter()
        h.train_extractor(model.train(), train, epochs=20, n_labels=8, n_instances=4)
        seconds = time.perf_counter() - start
        metrics = h.retrieval_metrics(model.eval(), val)[0]
        rows.append({"seed": seed, "model": "trained", **metrics, "train s": seconds})
    table = pd.DataFrame(rows)[["seed", "model", *KEYS, "train s"]]
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
          f"{torch.get_num_threads()} threads, Python {platform.python_version()}")  # fmt: skip
    print(table.to_markdown(index=False, floatfmt=".3f"))
    for model in ("untrained", "trained"):
        part = table[table["model"] == model]
        print(f"{model}: CMC@1 mean {part['cmc/1'].mean():.3f}, "
              f"min {part['cmc/1'].min():.3f}, max {part['cmc/1'].max():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
