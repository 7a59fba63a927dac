"""Train and validate with Lightning's DDP on CPU processes, and check that
validation saw every item.

Run it as a script, best under ``torchrun``, which starts all processes at once
(chapter 03)::

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m
    oml_helpers.ddp_demo OUT_DIR --epochs 1

Run plainly (``python -m oml_helpers.ddp_demo OUT_DIR``), Lightning's
``strategy="ddp"`` starts the other processes itself by re-running the command, once
the first one has imported everything.

Every process writes ``OUT_DIR/rank<r>.json`` with the training batches it got (size
and digits of each), what it validated and the metrics it got; process 0 also
evaluates the final weights once more without DDP, over the whole validation set,
for comparison.
"""

import argparse
import fcntl
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from oml_helpers.data import make_digits_dataset
from oml_helpers.device import seed_everything, silence_known_warnings
from oml_helpers.lightning import (
    MetricValCallback,
    pl,
    make_loaders,
    make_metric,
    make_module,
    make_trainer,
)
from oml_helpers.models import SmallCNN
from oml_helpers.training import make_datasets, retrieval_metrics

METRICS = ("cmc/1", "precision/5", "map/5")


class TrainingBatches(pl.Callback):
    """Records the size and the labels of every training batch this process gets."""

    def __init__(self) -> None:
        self.batches: List[Dict[str, Any]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        labels = batch["labels"].tolist()
        self.batches.append({"size": len(labels), "labels": sorted(set(labels))})


def run(
    out_dir: Path, data_root: Path, devices: int = 2, epochs: int = 2
) -> Dict[str, Any]:
    """Train a ``SmallCNN`` with ``ExtractorModuleDDP`` on ``devices`` CPU
    processes, validating every epoch.

    Args:
        out_dir: Folder for ``rank<r>.json`` (created).
        data_root: Digits data folder (written if missing; 32x32 images).
        devices: Number of processes.
        epochs: Training epochs.

    Returns:
        This process's report (also written to ``rank<r>.json``).
    """
    silence_known_warnings()
    data_root.mkdir(parents=True, exist_ok=True)
    # torchrun starts every process at once: one writes the images while the others
    # wait, then find them written (reading a PNG that another process is still
    # writing fails).
    with open(data_root / ".write-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        df = make_digits_dataset(data_root, image_size=32)
    train, val = make_datasets(df, data_root)
    loader_train, loader_val = make_loaders(train, val, n_labels=2, n_instances=32)
    seed_everything(0)
    model = SmallCNN()
    # ExtractorModuleDDP wraps both loaders' samplers (a share per process).
    module = make_module(
        model, ddp_loaders={"train": loader_train, "val": loader_val}
    )
    callback = MetricValCallback(make_metric(val))
    batches = TrainingBatches()  # the size and digits of each training batch
    trainer = make_trainer(
        epochs,
        accelerator="cpu",
        devices=devices,
        strategy="ddp",
        callbacks=[callback, batches],
        logger=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,  # OML's module replaced the samplers already
    )
    # no loaders here: passing them would skip OML's DDP patching
    trainer.fit(module)

    logged = {
        name: round(float(trainer.callback_metrics[f"OVERALL/{name}"]), 6)
        for name in METRICS
    }
    report: Dict[str, Any] = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        # whole batches of the BalanceSampler: size and labels of each
        "train_batches": batches.batches,
        "val_size": len(val),
        # items this process embedded
        "validated_by_this_process": callback._collected_samples,
        # items the metric was computed on
        "metric_items_after_sync": int(callback.metric.acc.num_samples),
        "queries_ranked": len(callback.metric.retrieval_results.distances),
        "n_queries": len(val.get_query_ids()),
        "metrics_logged": logged,
    }
    # leave DDP, or OML's inference below would split the data again
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    if report["rank"] == 0:
        single, _ = retrieval_metrics(model.eval(), val, top_k=(1, 5))
        report["metrics_single_process"] = {
            name: round(single[name], 6) for name in METRICS
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"rank{trainer.global_rank}.json").write_text(
        json.dumps(report, indent=1)
    )
    return report


def expected_share(val_size: int, world_size: int) -> int:
    """Items each process validates: OML pads the last share so that all processes
    get the same number.

    Args:
        val_size: Items in the validation set.
        world_size: Number of processes.

    Returns:
        ``ceil(val_size / world_size)``.
    """
    return math.ceil(val_size / world_size)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--data-root", type=Path, default=Path("data") / "digits32")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run(args.out_dir, args.data_root, devices=args.devices, epochs=args.epochs)


if __name__ == "__main__":
    main()
