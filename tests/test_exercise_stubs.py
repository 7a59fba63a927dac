"""An exercise's starting code, run as the student edition hands it out, gives "Not yet", no crash.

Each stub is taken from its notebook (``metadata.student_stub``) and run against the real checker,
with small stand-ins for what the chapter defines before its exercises.
"""

import ast
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.retrieval import RetrievalResults
from oml.samplers import BalanceSampler

import oml_helpers as h
from oml_helpers import exercises as ex
from test_exercises_lightning import lightning_ckpt, logs  # noqa: F401 (fixtures)
from test_exercises import run_logs
from test_exercises_retrieval import _rr, search_setup  # noqa: F401 (fixture)
from verdicts import says

ROOT = Path(__file__).resolve().parent.parent


def _stubs(path: Path) -> list:
    cells = nbformat.read(path, as_version=4).cells
    return [c.metadata["student_stub"] for c in cells if "solution" in c.metadata.get("tags", [])]


STUBS = [
    (path.stem, number, stub)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
    for number, stub in enumerate(_stubs(path), 1)
]


@pytest.fixture
def chapter_names(tmp_path, logs, lightning_ckpt, search_setup):  # noqa: F811 (fixtures)
    """The names the chapters define before their exercises, as small stand-ins."""
    tb, csv = logs
    ckpt, _ = lightning_ckpt
    model, image, store, dataset = search_setup
    return {
        "h": h,
        "torch": torch,
        "np": np,
        "pd": pd,
        "Path": Path,
        "DATA_ROOT": tmp_path,  # 00
        "logs": run_logs(False),
        "hard_logs": run_logs(True),
        "start_embeddings": torch.nn.functional.normalize(torch.randn(10, 4)),
        "start_labels": torch.arange(2).repeat_interleave(5),  # 01
        "toy": pd.DataFrame(
            {
                "label": [5, 6, 5, 5, 6, 6],
                "path": [f"{i}.png" for i in range(6)],
                "split": "validation",
                "is_query": [True, True, False, False, False, False],
                "is_gallery": [False, False, True, True, True, True],
            }
        ),
        "df_val": pd.DataFrame(
            {
                "label": [5, 5, 6, 6],
                "path": [f"v{i}.png" for i in range(4)],
                "split": "validation",
                "is_query": True,
                "is_gallery": True,
            }
        ),
        "toy_embeddings": torch.zeros(6, 1),
        "ImageQueryGalleryLabeledDataset": ImageQueryGalleryLabeledDataset,  # 00
        "RetrievalResults": RetrievalResults,  # 00
        "rr": _rr(),
        "val_dataset": dataset,  # 02 (and rr for 06)
        "trained": model,
        "images": torch.zeros(6, 3, 64, 64),
        "labels": np.arange(6) % 2,
        "moved_table": None,
        "move_each": lambda images, length: images,  # 02
        "df": pd.DataFrame({"label": [d for d in range(10) for _ in range(30)]}),  # 03
        "csv_logger": SimpleNamespace(log_dir=str(csv)),
        "short_logger": SimpleNamespace(log_dir=str(csv)),
        "tb_logger": SimpleNamespace(log_dir=str(tb)),
        "RUNS": ckpt.parent.parent,  # 04: RUNS / "checkpoints" / "last.ckpt"
        "ap5": {"best": np.linspace(0, 1, 50), "last": np.linspace(1, 0, 50)},  # 04
        "rr_tuning": _rr(),
        "rr_heldout": _rr(seed=3),  # 06
        "rr_before": _rr(seed=1),
        "rr_after": _rr(seed=2),  # 07
        "reranked": {2: _rr(seed=1), 5: _rr(seed=1)},  # 07
        "model": model,
        "prepared": {"my_scan.jpg": image, "my_drawing.png": image.rotate(90)},
        "transform": h.digit_transforms(False),
        "threes": torch.zeros(6, 3, 64, 64),
        "three_ids": list(range(900, 906)),  # 05
        "store": store,  # 06
        "seconds": {5: 0.5, 10: 0.9},
        "n_queries": 10,
        "first_stage_ms": 10.0,  # 07
        "val": None,
        "siamese": None,  # 07
        "judges": {
            "pairwise model": {"threshold": 0.3},
            "extractor's distance": {"threshold": 0.3},
        },
        "rr_tune": _rr(seed=4),
        "rr_test": _rr(seed=5),
        "gallery_labels": np.arange(40) % 7,
        "query_labels": np.arange(12) % 7,  # 08
        "threshold": 0.5,  # 08
        "query_names": np.array([f"t_{i % 7}" for i in range(12)]),  # 08
        "gallery_names": np.array([f"t_{i % 7}" for i in range(40)]),
        "test_set": dataset,
        "collection": SimpleNamespace(root=tmp_path),  # 08
    }


def _run(stub: str, names: dict):
    """Execute the stub and return the value of its last line, the checker call."""
    tree = ast.parse(stub)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), f"a stub ends with its checker call:\n{stub}"
    exec(compile(tree, "<stub>", "exec"), names)
    return eval(compile(ast.Expression(last.value), "<stub>", "eval"), names)


@pytest.mark.parametrize("stub", [s for _, _, s in STUBS], ids=[f"{n}-{i}" for n, i, _ in STUBS])
def test_stub_is_not_yet(stub, chapter_names):
    try:
        result = _run(stub, chapter_names)
    except NameError as e:
        pytest.fail(f"{e}: add a stand-in for it to chapter_names in {Path(__file__).name}")
    assert isinstance(result, ex.Verdict), f"the stub's last line gave {result!r}, not a verdict"
    says(result, ex.WRONG)


def test_unanswered_values_and_functions_are_named():
    says(ex.check_balance_batches(...), ex.WRONG, "`my_balance_batches` is still `...`")
    says(
        ex.check_coarse_pixels("model", lambda x, w: x, ..., None, None, None, None),
        ex.WRONG,
        "`sweep` is still `...`",
    )

    def share(margin): ...

    embeddings, labels = torch.eye(4), torch.tensor([0, 0, 1, 1])
    says(ex.check_half_margin(share, 0.1, embeddings, labels), ex.WRONG, "`share` returned None")
    says(
        ex.check_half_margin(lambda m: 0.5, ..., embeddings, labels),
        ex.WRONG,
        "`half_margin` is still `...`",
    )

    def looks_collapsed(run_logs): ...

    says(
        ex.check_collapse_diagnosis(looks_collapsed, run_logs(False), run_logs(True)),
        ex.WRONG,
        "`looks_collapsed` returned None",
    )


def test_real_answers_pass_through_the_guard():
    def oml_sampler(labels, n_labels, n_instances, seed):  # OML's own rules
        np.random.seed(seed)
        return list(BalanceSampler(labels, n_labels, n_instances))

    says(ex.check_balance_batches(oml_sampler), ex.RIGHT)
    with pytest.raises(TypeError):  # wrong arguments still raise as before
        ex.check_balance_batches(1, 2, 3)

    def raises(margin):
        raise ValueError("my bug")

    with pytest.raises(ValueError, match="my bug"):  # the student's own error stays visible
        ex.check_half_margin(raises, 0.1, torch.eye(4), torch.tensor([0, 0, 1, 1]))
