"""Chapter 08's exercise 2 measured: which change lowers the misses of mixed-mode pairs?

A same-thing pair is "mixed" when one image is colour (RGB) and the other greyscale (L). For each
seed, the chapter's model is trained three ways on the eight training photos' tiles (48 px,
chapter 01's recipe: 8 things x 4 views, all triplets, Adam from 3e-3 on a cosine schedule):
as in the chapter (20 epochs), longer (40 epochs, the cosine schedule stretched), and with
torchvision's RandomGrayscale(p=0.3) put first in the training transform (20 epochs). Each is
scored as the chapter scores it: the validation queries are halved with h.split_queries, the
threshold is chosen on the tuning half at 5% FMR, and the test half is scored with it.

Usage: cd notebooks && python ../benchmarks/photos_grayscale.py [--seeds 0 1 2]
Each seed trains for about 80 s on 2 idle cores.
"""

import argparse
import platform
import time
from datetime import datetime, timezone

import pandas as pd
import torch
from torchvision import transforms as T

from oml.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.retrieval import RetrievalResults

import oml_helpers as h
from chapter_times import cpu_name
from oml_helpers.exercises.own_images_modes import fnmr_by_colour_mode

VALIDATION_PHOTOS = ["astronaut", "coffee", "coins", "rocket"]
VARIANTS = {  # name: (epochs, grey first in the training transform)
    "as in the chapter": (20, False),
    "train longer (40 epochs)": (40, False),
    "RandomGrayscale(p=0.3)": (20, True),
}


def all_pairs(model, rows, root):
    ds = ImageQueryGalleryLabeledDataset(
        rows, dataset_root=root, transform=h.photo_transforms(train=False)
    )
    emb = inference(model, ds, batch_size=256)
    return RetrievalResults.from_embeddings(emb, ds, n_items=len(ds)), ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    h.silence_known_warnings()
    torch.use_deterministic_algorithms(True)  # as the chapter, on the CPU
    collection = h.make_photo_collection(h.default_data_root() / "photos")
    validation = [c for c in collection.classes if c.rsplit("_", 1)[0] in VALIDATION_PHOTOS]
    df = h.folder_to_dataframe(collection.root, validation, n_queries=2)
    df_val = df[df["split"] == "validation"].reset_index(drop=True)
    tune_df, test_df = h.split_queries(df_val, share=0.5)
    rows = []
    for seed in args.seeds:
        for name, (epochs, grey) in VARIANTS.items():
            transform = h.photo_transforms(train=True)
            if grey:
                transform = T.Compose([T.RandomGrayscale(p=0.3), *transform.transforms])
            train = ImageLabeledDataset(
                df[df["split"] == "train"].reset_index(drop=True),
                dataset_root=collection.root,
                transform=transform,
                cache_size=len(df),
            )
            h.seed_everything(seed)
            model = h.SmallCNN()
            start = time.perf_counter()
            h.train_extractor(
                model.train(), train, epochs=epochs, lr=3e-3, n_labels=8, n_instances=4
            )
            seconds = time.perf_counter() - start
            model.eval()
            rr_tune, _ = all_pairs(model, tune_df, collection.root)
            rr_test, test_set = all_pairs(model, test_df, collection.root)
            threshold = h.match_threshold(rr_tune, 0.05)
            by_mode = fnmr_by_colour_mode(rr_test, test_set, collection.root, threshold)
            val = ImageQueryGalleryLabeledDataset(
                df_val, dataset_root=collection.root,
                transform=h.photo_transforms(train=False),
            )  # fmt: skip
            rows.append(
                {"seed": seed, "training": name,
                 "FNMR same mode": by_mode["same mode"], "FNMR mixed": by_mode["mixed"],
                 "FNMR all": by_mode["all"],
                 "FMR": h.match_rates(rr_test, threshold)["fmr"],
                 "CMC@1": h.retrieval_metrics(model, val)[0]["cmc/1"],
                 "train s": seconds}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
          f"{torch.get_num_threads()} threads, Python {platform.python_version()}")  # fmt: skip
    print(f"test pairs: {by_mode['n same mode']} same mode, {by_mode['n mixed']} mixed")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    means = table.groupby("training", sort=False).mean(numeric_only=True)
    print("\nmeans over the seeds")
    print(means.drop(columns="seed").to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
