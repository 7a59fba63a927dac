"""Checker for exercise 05.3: new images embedded with the store's own model, and
refused under another model's name."""

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.storage import EmbeddingStore

AddImages = Callable[
    [EmbeddingStore, nn.Module, str, List[int], torch.Tensor, List[int]], Any
]


def _embed(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """The checker's own embeddings: evaluation mode, no gradients, float32, the
    images moved to the model's device (a GPU, say) and the result back to the CPU.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        vectors = model(images.to(device)).cpu().numpy().astype(np.float32)
    model.train(was_training)
    return vectors


def _refusal_problem(fn: AddImages, model: nn.Module, images: torch.Tensor) -> str:
    """The problem with ``fn`` under a wrong model name, or ''."""
    with tempfile.TemporaryDirectory() as folder:
        dim = _embed(model, images[:1]).shape[1]
        vectors = np.eye(4, dim, dtype=np.float32)
        with EmbeddingStore.create(
            Path(folder) / "a.db", model_name="model A", dim=dim
        ) as small:
            small.add([0, 1, 2, 3], vectors, labels=[0, 0, 1, 1])
            try:
                fn(small, model, "model B", [10, 11], images[:2], [7, 7])
            except ValueError:
                raised = True
            else:
                raised = False
            if len(small) != 4:
                return (
                    "with model_name 'model B' on a store of 'model A', your "
                    f"function wrote: the store holds {len(small)} items, not 4. "
                    "Compare the names before anything is added."
                )
            if not raised:
                return (
                    "with model_name 'model B' on a store of 'model A', your "
                    "function did not raise a ValueError: vectors of two models "
                    "must not be mixed in one store."
                )
            model.train()  # the function must switch to eval itself
            try:
                answer = fn(
                    small, model, "model A", [10, 11, 12], images[:3], [7] * 3
                )
            finally:
                model.eval()
            return _added_problem(small, answer, _embed(model, images[:3]))


def _added_problem(small: EmbeddingStore, answer: Any, expected: np.ndarray) -> str:
    """The problem with what ``fn`` added under the right name, or ''."""
    if len(small) != 7:
        return (
            f"with the right model name the store holds {len(small)} items, not "
            "4 + 3: add the three new ids."
        )
    loaded = small.load(ids=[10, 11, 12])
    if not np.allclose(loaded.vectors, expected, atol=1e-5):
        return (
            "the stored vectors are not the model's embeddings of the images in "
            "evaluation mode (the model was handed over in training mode, where "
            "BatchNorm uses the batch's statistics): call model.eval(), and embed "
            "under torch.no_grad()."
        )
    if [str(x) for x in loaded.metadata["label"]] != ["7", "7", "7"]:
        return "the new items do not have the labels passed in: pass labels=."
    if np.shape(answer) != expected.shape or not np.allclose(
        np.asarray(answer, dtype=np.float64), expected, atol=1e-5
    ):
        return (
            f"your function returned {type(answer).__name__} of shape "
            f"{np.shape(answer)}: return the embeddings it added, "
            f"{expected.shape}, as float32 numpy."
        )
    return ""


def _search_report(
    fn: AddImages,
    model: nn.Module,
    store: EmbeddingStore,
    images: torch.Tensor,
    label: Optional[int],
    new: Optional[Sequence[int]],
) -> tuple:
    """Runs ``fn`` on a copy of ``store`` with ``images[1:]``; returns (problem,
    report) for the query ``images[0]``."""
    query = _embed(model, images[:1])[0]
    with tempfile.TemporaryDirectory() as folder:
        source = sqlite3.connect(store.path)
        copy = sqlite3.connect(Path(folder) / "copy.db")
        source.backup(copy)
        source.close()
        copy.close()
        with EmbeddingStore.open(Path(folder) / "copy.db") as twin:
            ids, vectors, metadata = twin.load()
            label_of = dict(zip(ids.tolist(), metadata["label"].tolist()))
            before = twin.search(query, k=5)
            start = int(ids.max()) + 1
            new_ids = list(range(start, start + 5)) if new is None else list(new)
            if label is None:
                label = max(label_of.values()) + 1 if label_of else 0
            fn(twin, model, twin.model_name, new_ids, images[1:], [label] * 5)
            after = twin.search(query, k=5)
    # the checker's own float64 brute force over the old items and the new ones
    every = np.concatenate([vectors, _embed(model, images[1:])]).astype(np.float64)
    every_ids = np.concatenate([ids, new_ids])
    distances = np.linalg.norm(every - query.astype(np.float64), axis=1)
    expected = every_ids[np.lexsort((every_ids, distances))[:5]]
    if not np.array_equal(after.ids, expected):
        return (
            f"after your function added the new images, the search returned ids "
            f"{after.ids.tolist()}, but the nearest are {expected.tolist()}.",
            "",
        )
    labels = [label_of.get(int(i), "new") for i in before.ids]
    n_new = int(np.isin(after.ids, new_ids).sum())
    return "", (
        f"Before: the query's 5 nearest had labels {labels}, the nearest "
        f"{before.distances[0]:.2f} away. After: {n_new} of its 5 nearest are "
        f"new images, the nearest {after.distances[0]:.2f} away."
    )


@checker
def check_add_images(
    fn: AddImages,
    model: nn.Module,
    store: Optional[EmbeddingStore] = None,
    images: Optional[torch.Tensor] = None,
    label: Optional[int] = None,
    ids: Optional[Sequence[int]] = None,
) -> Verdict:
    """Exercise 05.3: ``fn(store, model, model_name, ids, images, labels)`` embeds
    new images with the store's model and adds them, or refuses another model's
    name.

    Args:
        fn: the student's function. It is run on a small store of the checker's own:
            under a wrong model name (it must raise ValueError and write nothing),
            then under the right one with the model handed over in training mode
            (it must store the evaluation-mode embeddings and the labels).
        model: the model that made the store's vectors.
        store: optional, the chapter's store: ``fn`` then adds ``images[1:]`` to a
            copy of it, and the search for ``images[0]`` is checked against the
            checker's own brute force and reported.
        images: the new images, ``[n, 3, H, W]``, at least 3 (6 with ``store``).
        label: the new images' label in the copy of ``store``; by default one
            above the largest stored.
        ids: the 5 ids for ``images[1:6]`` in the copy of ``store``; by default the
            5 after the largest stored.

    Returns:
        The verdict.
    """
    if images is None:
        images = torch.rand(
            6, 3, 64, 64, generator=torch.Generator().manual_seed(0)
        )
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be a tensor [n, 3, H, W], got {type(images).__name__} "
            f"of shape {tuple(np.shape(images))}."
        )
    if len(images) < (6 if store is not None else 3):
        raise ValueError(
            f"images holds {len(images)} images: pass at least 3, or 6 with "
            "store= (1 query and 5 to add)."
        )
    if ids is not None and len(ids) != 5:
        raise ValueError(
            f"ids holds {len(ids)} ids: pass one for each of images[1:6], 5."
        )
    problem = _refusal_problem(fn, model, images)
    report = ""
    if not problem and store is not None:
        problem, report = _search_report(fn, model, store, images[:6], label, ids)
    success = (
        "your function refused another model's name and wrote nothing, and under "
        "the right name it stored the model's evaluation-mode embeddings and the "
        "labels."
    )
    return _verdict([problem] if problem else [], " ".join([success, report]))
