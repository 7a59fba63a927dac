"""DDP with two CPU processes: validation metrics must cover the whole validation set, not each
process's half.

Runs ``python -m oml_helpers.ddp_demo`` (the script chapter 03 shows) under ``torchrun``, as the
chapter does, for one epoch; about 20 s.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oml_helpers.ddp_demo import expected_share

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ddp_reports(tmp_path_factory):
    out, data = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("digits32")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "oml_helpers.ddp_demo",
        str(out),
        "--data-root",
        str(data),
        "--epochs",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_each_process_validates_half_but_metrics_use_everything(ddp_reports):
    for rank, report in enumerate(ddp_reports):
        assert report["rank"] == rank and report["world_size"] == 2
        n = report["val_size"]
        assert report["validated_by_this_process"] == expected_share(n, 2) < n
        assert report["metric_items_after_sync"] == n
        assert report["queries_ranked"] == report["n_queries"] > n // 2


def test_each_process_trains_on_whole_batches(ddp_reports):
    # one epoch: the BalanceSampler's 5 // 2 = 2 batches of 2 digits x 32 images, one per process
    batches = [report["train_batches"] for report in ddp_reports]
    assert [len(b) for b in batches] == [1, 1]
    (first,), (second,) = batches
    for batch in (first, second):
        assert batch["size"] == 64 and len(batch["labels"]) == 2
    assert not set(first["labels"]) & set(second["labels"])  # an epoch draws each digit once


def test_ddp_metrics_equal_a_single_process_evaluation(ddp_reports):
    logged, single = ddp_reports[0]["metrics_logged"], ddp_reports[0]["metrics_single_process"]
    assert logged.keys() == single.keys() == {"cmc/1", "precision/5", "map/5"}
    # Same weights, same images; only the batches differ (each process embeds its own share), which
    # can move a distance in its last bit and swap two near-tied gallery items: allow one query's
    # worth, not half the set.
    for name in logged:
        assert logged[name] == pytest.approx(
            single[name], abs=2 / ddp_reports[0]["n_queries"]
        ), name
    assert (
        ddp_reports[1]["metrics_logged"] == logged
    )  # every process computed the same, complete metrics


def test_expected_share_pads_up():
    assert expected_share(896, 2) == 448
    assert expected_share(897, 2) == 449 == math.ceil(897 / 2)
