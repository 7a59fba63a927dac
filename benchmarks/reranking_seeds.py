"""Does re-ranking help on held-out queries? Chapter 07's recipe over several training seeds and
query splits.

For each training seed, the pairwise model is trained exactly as the shipped one (the "siamese"
recipe of ``oml_helpers/book_models.py``, only the seed changes), on pairs mined from the shipped
digits model's embeddings of the training digits 0-4. It is then measured on the unseen digits 5-9:

- re-ranking: for several query/gallery splits (20 queries per digit, as in chapter 07), CMC@1 and
  mAP@5 of the extractor alone and after re-ranking its top ``n``;
- held-out pairs: 20 anchors per digit of 5-9, each with its 5 nearest images by the extractor
  (``h.neighbour_pair_scores``), judged by the extractor's distance and by the pairwise model, each
  with the threshold that is best on such pairs of the training digits (balanced accuracy).

Two optional comparisons, measured the same way:

- ``--untrained SEEDS``: the control. The same architecture (``h.make_siamese``) with the seed's
  random joint convolution and head, not trained: does re-ranking gain without training?
- ``--plain SEEDS``: OML's plain ``ConcatSiamese`` on a copy of the same extractor (a ``SmallCNN``,
  whose global average pooling blends the two stacked digits into one vector), trained by the same
  recipe.

Usage: python benchmarks/reranking_seeds.py [--seeds 0 1 2] [--untrained 0 1 2 3 4] [--plain 0 1 2]
[--splits 0 1 2 3 4] [--top-n 3 5 10] [--epochs 80] [--no-shipped]
"""

import argparse
import copy
import os
import platform
import time
from datetime import date
from typing import Dict, List

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from oml.datasets import ImageQueryGalleryLabeledDataset  # noqa: E402
from oml.inference import inference  # noqa: E402
from oml.models import ConcatSiamese  # noqa: E402
from oml.retrieval import RetrievalResults  # noqa: E402

import oml_helpers as h  # noqa: E402
from oml_helpers.book_models import SIAMESE  # noqa: E402


def held_out_pair_accuracy(extractor, siamese, df_train, df_val, root) -> Dict[str, float]:
    """Balanced accuracy on near-neighbour pairs of 5-9, each threshold chosen on such pairs of
    0-4."""
    fit = h.neighbour_pair_scores(extractor, siamese, df_train, root)
    held_out = h.neighbour_pair_scores(extractor, siamese, df_val, root)
    result = {}
    for column, name in (
        ("embedding_distance", "pairs: extractor"),
        ("pairwise_distance", "pairs: pairwise"),
    ):
        threshold = h.best_threshold(fit[column], fit["is_negative"])
        result[name] = h.pair_accuracy(held_out[column], held_out["is_negative"], threshold)[
            "balanced"
        ]
    return result


def rerank_rows(
    siamese, extractor, df_val, root, splits: List[int], top_ns: List[int]
) -> List[Dict[str, float]]:
    """CMC@1 and mAP@5 before and after re-ranking, one row per query split."""
    rows = []
    for split in splits:
        df_qg = h.query_gallery_split(df_val, n_queries_per_label=20, seed=split)
        val = ImageQueryGalleryLabeledDataset(
            df_qg, dataset_root=root, transform=h.digit_transforms(False)
        )
        rr = RetrievalResults.from_embeddings(
            inference(extractor, val, batch_size=256), val, n_items=20
        )
        before = h.metrics_dict(rr)
        row = {"split": split, "cmc/1 before": before["cmc/1"], "map/5 before": before["map/5"]}
        for top_n in top_ns:
            after = h.metrics_dict(h.rerank(siamese, rr, val, top_n=top_n)[0])
            row[f"cmc/1 top_n={top_n}"] = after["cmc/1"]
            row[f"map/5 top_n={top_n}"] = after["map/5"]
        rows.append(row)
    return rows


def kind_of(name: str) -> str:
    """The kind of a model's row: "trained", "untrained", "plain" or "shipped"."""
    return name.split(" seed ")[0] if " seed " in name else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--untrained", type=int, nargs="*", default=[])
    parser.add_argument("--plain", type=int, nargs="*", default=[])
    parser.add_argument("--no-shipped", action="store_true")
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--top-n", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument(
        "--epochs",
        type=int,
        default=SIAMESE.arguments["epochs"],
        help="steps (default: the recipe's)",
    )
    args = parser.parse_args()
    h.silence_known_warnings()
    root = h.default_data_root() / "digits"
    df_train, df_val = h.split_dataframe(h.make_digits_dataset(root))
    extractor = h.load_book_model("digits")
    train_pairs = h.dataset_with_embeddings(extractor, df_train, root)
    recipe = {k: v for k, v in SIAMESE.arguments.items() if k not in ("seed", "hidden")}
    recipe["epochs"] = args.epochs
    hidden = tuple(SIAMESE.arguments["hidden"])

    models = {} if args.no_shipped else {"shipped": h.load_book_model("siamese")}
    train_seconds = []
    for seed in args.seeds:
        h.seed_everything(seed)
        start = time.perf_counter()
        siamese = h.make_siamese(extractor, hidden=hidden)
        h.train_siamese(siamese, train_pairs, **recipe)
        train_seconds.append(time.perf_counter() - start)
        models[f"trained seed {seed}"] = siamese
    for seed in args.untrained:
        h.seed_everything(seed)
        models[f"untrained seed {seed}"] = h.make_siamese(extractor, hidden=hidden).eval()
    for seed in args.plain:
        h.seed_everything(seed)
        start = time.perf_counter()
        plain = ConcatSiamese(extractor=copy.deepcopy(extractor), mlp_hidden_dims=list(hidden))
        h.train_siamese(plain, train_pairs, **recipe)
        train_seconds.append(time.perf_counter() - start)
        models[f"plain seed {seed}"] = plain

    table, per_split = [], []
    for name, siamese in models.items():
        rows = rerank_rows(siamese, extractor, df_val, root, args.splits, args.top_n)
        per_split += [{"model": name, **row} for row in rows]
        summary = {"model": name, **pd.DataFrame(rows).drop(columns="split").mean().to_dict()}
        summary.update(held_out_pair_accuracy(extractor, siamese, df_train, df_val, root))
        table.append(summary)
        print(f"{name} done", flush=True)

    table = pd.DataFrame(table).set_index("model")
    table["kind"] = [kind_of(name) for name in table.index]
    gains = pd.DataFrame(per_split)
    gains["kind"] = [kind_of(name) for name in gains["model"]]
    trained_s = f"{np.mean(train_seconds):.0f} s per trained model" if train_seconds else "none"
    print(
        f"\n{date.today()}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}; recipe {SIAMESE.arguments} "
        f"(seed varied, epochs={args.epochs}); "
        f"training: {trained_s}; splits {args.splits}, "
        f"20 queries per digit each\n"
    )
    print(
        "Means over the query splits (CMC@1, mAP@5) and balanced accuracy "
        "on the held-out neighbour pairs:\n"
    )
    print(table.drop(columns="kind").round(3).to_markdown())
    print(
        "\nOver the seeds of each kind of model (mean +- standard deviation of the per-seed "
        "means; min and max over every seed and split) of the change that re-ranking brings:\n"
    )
    lines = []
    for kind in [k for k in ("trained", "untrained", "plain") if k in set(table["kind"])]:
        per_kind = table[table["kind"] == kind]
        each_kind = gains[gains["kind"] == kind]
        for top_n in args.top_n:
            for metric in ("cmc/1", "map/5"):
                per_seed = per_kind[f"{metric} top_n={top_n}"] - per_kind[f"{metric} before"]
                each = each_kind[f"{metric} top_n={top_n}"] - each_kind[f"{metric} before"]
                lines.append(
                    {
                        "model": kind,
                        "top_n": top_n,
                        "metric": metric,
                        "mean change": per_seed.mean(),
                        "std over seeds": per_seed.std(),
                        "min": each.min(),
                        "max": each.max(),
                        "runs that improve": f"{(each > 0).sum()}/{len(each)}",
                        "runs that worsen": f"{(each < 0).sum()}/{len(each)}",
                    }
                )
    print(pd.DataFrame(lines).round(3).to_markdown(index=False))
    print("\nHeld-out neighbour pairs, balanced accuracy over the seeds of each kind:")
    for kind, rows in table.groupby("kind", sort=False):
        pairs = rows[["pairs: extractor", "pairs: pairwise"]]
        print(
            f"  {kind}: "
            + ", ".join(
                f"{c.split(': ')[1]} {pairs[c].mean():.3f} +- {pairs[c].std():.3f}" for c in pairs
            )
        )


if __name__ == "__main__":
    main()
