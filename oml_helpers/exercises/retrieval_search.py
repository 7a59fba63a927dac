"""Checker for exercise 06.3: search the kept gallery for several new images at
once, without ``store.search``, and return store ids."""

import copy
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.image_search import search_image


def _rounded(values) -> List[float]:
    return [round(float(v), 3) for v in values]


def _rows(x, n: int, k: int) -> np.ndarray:
    """``x`` as an ``[n, k]`` float array, or None when it has another shape."""
    array = torch.as_tensor(np.asarray(x, dtype=np.float64)).numpy()
    return array if array.shape == (n, k) else None


def _same(ids, dist, right_ids, right_d) -> bool:
    """The same items at the same distances, nearest first; items at a near-tie
    may swap places."""
    if not np.allclose(dist, right_d, atol=1e-4):
        return False
    tied = [(abs(right_d - e) < 1e-4).sum() > 1 for e in right_d]
    return all(a == b or t for a, b, t in zip(ids, right_ids, tied))


def _all_same(ids, dist, right_ids, right_d) -> bool:
    return all(map(_same, ids, dist, right_ids, right_d))


@checker
def check_search(
    fn: Callable[..., Tuple[Sequence, Sequence]],
    model: torch.nn.Module,
    images: Sequence,
    transform: Callable,
    store,
    k: int = 5,
) -> Verdict:
    """Exercise 06.3: ``fn(model, images, transform, store, k)`` gives ``(store
    ids, distances)``, each ``[len(images), k]``, nearest first, as
    ``h.search_image`` finds them one image at a time.

    ``fn`` gets the model in training mode, as a training loop leaves it; the
    model comes back as it was, BatchNorm statistics included."""
    images = list(images)
    was_training, saved = model.training, copy.deepcopy(model.state_dict())
    # search_image embeds in eval mode (embed_image calls model.eval())
    truth = [search_image(model, im, transform, store, k=k) for im in images]
    right_ids = np.array([t.ids for t in truth], dtype=np.int64)
    right_d = np.array([t.distances for t in truth], dtype=np.float64)
    stored_ids = store.load().ids
    model.train()
    try:
        ids, distances = fn(model, images, transform, store, k)
        left_training = model.training
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    n = len(images)
    mine = _rows(ids, n, k)
    mine_d = _rows(torch.as_tensor(distances).detach().cpu(), n, k)
    problems = []
    if mine is None or mine_d is None:
        problems.append(
            f"return store ids and distances, each of shape [{n}, {k}] (one row "
            f"per image), got {np.shape(ids)} and {np.shape(distances)}."
        )
    elif _all_same(mine, mine_d, right_ids, right_d):
        pass
    elif left_training:
        problems.append(
            "the model was in training mode when it embedded the images: call "
            "model.eval() first. In training mode BatchNorm normalises with the "
            "statistics of this batch of images instead of the ones it learnt."
        )
    elif (
        mine.min() >= 0
        and mine.max() < len(stored_ids)
        and _all_same(stored_ids[mine.astype(int)], mine_d, right_ids, right_d)
    ):
        problems.append(
            "these are positions, rows of store.load().vectors, not store ids: "
            "store.load().ids[positions] gives the ids."
        )
    elif np.allclose(np.sort(mine_d, axis=1), np.sort(right_d, axis=1), atol=1e-4):
        problems.append(
            "the right items in the wrong order; sort by distance, nearest first "
            "(topk(k, largest=False))."
        )
    elif (mine_d[:, 0] > mine_d[:, -1]).any():
        problems.append(
            "your distances decrease: you took the farthest items. Use topk(k, "
            "largest=False)."
        )
    elif np.allclose(mine_d, right_d**2, rtol=1e-3):
        problems.append(
            "your distances are squared; torch.cdist gives the Euclidean "
            "distance OML uses."
        )
    else:
        problems.append(
            f"image 0: you found ids {mine[0].astype(int).tolist()} at "
            f"{_rounded(mine_d[0])}, expected ids {right_ids[0].tolist()} at "
            f"{_rounded(right_d[0])}. Put each image through `transform` (after "
            ".convert('RGB')), stack them into one batch, embed it, and compare "
            "with store.load().vectors by torch.cdist."
        )
    return _verdict(
        problems,
        f"the {k} nearest stored items of each of the {n} images, as "
        f"h.search_image finds them; image 0's at {_rounded(right_d[0])}.",
    )
