"""The book's trained models, shipped with the repository so that later chapters
need not retrain them.

Chapter 01 trains the digits extractor and chapter 07 trains a pairwise model on top
of it; the chapters after 01 load the shipped copies (``load_book_model``). Each
file keeps the *fingerprint* of the recipe that made it: the code of every function
the training runs (comments, docstrings and layout aside), its arguments and OML's
version. When the recipe changes, the fingerprint no longer matches, the tests fail
and name the one command that retrains: ``python scripts/train_book_models.py``.

Training gives slightly different weights on different CPUs; loading a shipped file
gives the same model everywhere, so the chapters that use it print the same numbers
on every machine.
"""

import ast
import hashlib
import inspect
import json
import platform
import textwrap
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import oml
import torch
from torch import nn

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.inference import inference
from oml.retrieval import RetrievalResults

from oml_helpers import data, device, models, reranking, retrieval, training
from oml_helpers.checkpoints import (
    CheckpointError,
    load_extractor,
    read_checkpoint,
    save_extractor,
)
from oml_helpers.metrics import metrics_dict

WEIGHTS = Path(__file__).resolve().parent / "weights"
RETRAIN_COMMAND = "python scripts/train_book_models.py"


class StaleModelWarning(UserWarning):
    """A shipped model was made by another version of its recipe: retrain it."""


@dataclass(frozen=True)
class Recipe:
    """How one of the book's models is made.

    Attributes:
        name: The model's name, as ``load_book_model`` takes it.
        file: Its file in ``oml_helpers/weights/``.
        arguments: The arguments of its training, as recorded in the fingerprint.
        code: The functions and classes the training runs; their code is part of the
            fingerprint.
        constants: Module-level values the code reads (part of the fingerprint too).
        tolerance: How far a retrained model's metrics may lie from the shipped
            one's (the tests retrain and check it): training differs in the last
            digits from CPU to CPU.
    """

    name: str
    file: str
    arguments: Dict[str, Any]
    code: Tuple[Callable, ...]
    constants: Tuple[Any, ...]
    tolerance: float


DIGITS = Recipe(
    name="digits",
    file="digits_smallcnn.pt",
    arguments={"seed": 0, "epochs": training.RECIPE_EPOCHS, "image_size": 64},
    code=(
        data.make_digits_dataset,
        data._write_digit,
        data.split_dataframe,
        device.seed_everything,
        data.digit_transforms,
        training.make_datasets,
        training.train_extractor,
        training.make_criterion,
        training.balanced_schedule,
        training.balanced_loader,
        training.train_digits_model,
        models.SmallCNN,
    ),
    constants=(
        data.MEAN_STD,
        data.TRAIN_DIGITS,
        training.RECIPE_LR,
        training.RECIPE_BATCH,
    ),
    tolerance=0.04,
)
SIAMESE = Recipe(
    name="siamese",
    file="digits_siamese.pt",
    arguments={
        "seed": 0,
        "hidden": [32],
        "epochs": 80,
        "lr": 3e-3,
        "n_labels": 5,
        "n_instances": 6,
    },
    code=(
        reranking.make_siamese,
        reranking.PairFusionExtractor,
        reranking.dataset_with_embeddings,
        reranking.train_siamese,
        training.balanced_schedule,
        training.balanced_loader,
        device.seed_everything,
    ),
    constants=(),
    tolerance=0.06,
)
RECIPES = {recipe.name: recipe for recipe in (DIGITS, SIAMESE)}
# The siamese model starts from the digits model, so its fingerprint includes that
# one.
DEPENDS_ON = {"siamese": ("digits",)}


def recipe_fingerprint(name: str) -> str:
    """A short hash of everything that decides what a recipe trains.

    Args:
        name: ``"digits"`` or ``"siamese"``.

    Returns:
        16 hexadecimal digits; they change when the recipe's code, arguments or
        OML's version change.
    """
    recipe = _recipe(name)
    parts = [
        json.dumps(recipe.arguments, sort_keys=True),
        repr(recipe.constants),
        oml.__version__,
    ]
    parts += [_code_without_docs(item) for item in recipe.code]
    parts += [recipe_fingerprint(parent) for parent in DEPENDS_ON.get(name, ())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _code_without_docs(item: Callable) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(item)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(
                body[0].value.value, str
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(
            f"The book ships no model called {name!r}; choose one of "
            f"{sorted(RECIPES)}."
        )
    return RECIPES[name]


def _file(name: str, path: Optional[Union[str, Path]]) -> Path:
    return Path(path) if path is not None else WEIGHTS / _recipe(name).file


def _architecture(name: str) -> nn.Module:
    if name == "digits":
        return models.SmallCNN()
    return reranking.make_siamese(
        models.SmallCNN(), hidden=tuple(SIAMESE.arguments["hidden"])
    )


def load_book_model(
    name: str = "digits", path: Optional[Union[str, Path]] = None
) -> nn.Module:
    """Load one of the book's shipped models, safely (``weights_only=True``), in
    eval mode.

    Args:
        name: ``"digits"`` (the extractor of chapter 01) or ``"siamese"`` (the
            pairwise model of chapter 07).
        path: Another file made by ``save_book_model``; by default the shipped one.

    Returns:
        The model, on the GPU when there is one.

    Raises:
        KeyError: Unknown ``name``.
        CheckpointError: The file is missing, damaged, of another architecture, or
            not one of the book's model files; the message says how to regenerate
            it.

    Warns:
        StaleModelWarning: The file was made by another version of the recipe.
    """
    path = _file(name, path)
    model = _architecture(name)
    try:
        meta = load_extractor(path, model)
    except CheckpointError as e:
        raise CheckpointError(
            f"{e} To regenerate the book's {name} model: {RETRAIN_COMMAND} {name}"
        ) from e
    if meta.get("recipe") != name or "fingerprint" not in meta:
        raise CheckpointError(
            f"{path} fits the {name} architecture but is not the book's {name} "
            f"model file (its metadata has recipe={meta.get('recipe')!r} and no "
            f"fingerprint). Regenerate it: {RETRAIN_COMMAND} {name}"
        )
    current = recipe_fingerprint(name)
    if meta["fingerprint"] != current:
        warnings.warn(
            StaleModelWarning(
                f"{path.name} was made by another version of its recipe "
                f"(fingerprint {meta['fingerprint']}, now {current}); retrain it: "
                f"{RETRAIN_COMMAND} {name}"
            ),
            stacklevel=2,
        )
    return model.to(device.get_device()).eval()


def book_model_info(
    name: str = "digits", path: Optional[Union[str, Path]] = None
) -> Dict[str, Any]:
    """The metadata stored with a book model: its recipe's fingerprint, arguments
    and metrics, and where it was made.

    Args:
        name: ``"digits"`` or ``"siamese"``.
        path: Another file; by default the shipped one.

    Returns:
        The metadata dict (empty for a file without any).

    Raises:
        CheckpointError: The file is missing or damaged.
    """
    checkpoint = read_checkpoint(_file(name, path))
    return dict(checkpoint.get("meta", {})) if isinstance(checkpoint, dict) else {}


def evaluate_book_model(
    name: str, model: nn.Module, root: Union[str, Path]
) -> Dict[str, float]:
    """The metrics recorded with a book model, and compared when it is retrained.

    The digits model: CMC@1, precision@5 and mAP@5 on the unseen digits 5-9 (every
    image a query). The siamese model: the same after it re-ranks the top 5 of
    chapter 07's 100 queries.

    Args:
        name: ``"digits"`` or ``"siamese"``.
        model: The model to evaluate.
        root: Data folder of the digits (written if missing).

    Returns:
        The metrics, rounded to 4 digits.
    """
    _recipe(name)
    df = data.make_digits_dataset(root)
    if name == "digits":
        _, val = training.make_datasets(df, root)
        metrics, _ = training.retrieval_metrics(model, val)
        return {
            k: round(v, 4)
            for k, v in metrics.items()
            if k in ("cmc/1", "precision/5", "map/5")
        }
    extractor = load_book_model("digits")
    _, df_val = data.split_dataframe(df)
    df_qg = retrieval.query_gallery_split(df_val, n_queries_per_label=20, seed=0)
    val = ImageQueryGalleryLabeledDataset(
        df_qg, dataset_root=root, transform=data.digit_transforms(False)
    )
    rr = RetrievalResults.from_embeddings(
        inference(extractor, val, batch_size=256), val, n_items=20
    )
    after, _ = reranking.rerank(model, rr, val, top_n=5)
    return {
        k: round(v, 4)
        for k, v in metrics_dict(after).items()
        if k in ("cmc/1", "map/5")
    }


def train_book_model(name: str, root: Union[str, Path]) -> nn.Module:
    """Train one of the book's models by its recipe.

    Args:
        name: ``"digits"`` or ``"siamese"`` (which starts from the shipped digits
            model).
        root: Data folder of the digits (written if missing).

    Returns:
        The trained model, in eval mode.
    """
    recipe = _recipe(name)
    if name == "digits":
        return training.train_digits_model(
            root, seed=recipe.arguments["seed"], epochs=recipe.arguments["epochs"]
        )
    args = recipe.arguments
    df_train, _ = data.split_dataframe(data.make_digits_dataset(root))
    extractor = load_book_model("digits")
    pairs = reranking.dataset_with_embeddings(extractor, df_train, root)
    device.seed_everything(args["seed"])
    siamese = reranking.make_siamese(extractor, hidden=tuple(args["hidden"]))
    reranking.train_siamese(
        siamese,
        pairs,
        epochs=args["epochs"],
        lr=args["lr"],
        n_labels=args["n_labels"],
        n_instances=args["n_instances"],
    )
    return siamese.eval()


def save_book_model(
    name: str,
    model: nn.Module,
    metrics: Dict[str, float],
    path: Optional[Union[str, Path]] = None,
) -> Path:
    """Save a book model with its recipe's fingerprint, its metrics and where it was
    made.

    Args:
        name: ``"digits"`` or ``"siamese"``.
        model: The trained model.
        metrics: What ``evaluate_book_model`` gave for it.
        path: Where to write; by default the shipped file.

    Returns:
        The path written.
    """
    recipe = _recipe(name)
    meta = {
        "recipe": name,
        "fingerprint": recipe_fingerprint(name),
        "arguments": recipe.arguments,
        "metrics": metrics,
        "made_on": (
            f"{date.today()}, {platform.processor() or platform.machine()}, torch "
            f"{torch.__version__}"
        ),
        "retrain": f"{RETRAIN_COMMAND} {name}",
    }
    return save_extractor(model, _file(name, path), meta)


def compare_metrics(
    shipped: Dict[str, float], retrained: Dict[str, float], tolerance: float
) -> Sequence[str]:
    """The metrics of a retrained model that lie further than ``tolerance`` from the
    shipped model's.

    Args:
        shipped: The metrics stored with the shipped model.
        retrained: The metrics of the retrained model.
        tolerance: Largest allowed absolute difference.

    Returns:
        One line per metric out of tolerance (empty when all agree).
    """
    if set(shipped) != set(retrained):
        return [
            f"different metrics: shipped {sorted(shipped)}, retrained "
            f"{sorted(retrained)}"
        ]
    return [
        f"{k}: shipped {shipped[k]:.3f}, retrained {retrained[k]:.3f} (more than "
        f"{tolerance} apart)"
        for k in sorted(shipped)
        if abs(shipped[k] - retrained[k]) > tolerance
    ]
