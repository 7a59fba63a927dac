"""Checkers for the exercises of chapter 06 (retrieval without labels)."""

from pathlib import Path
from typing import Callable, Iterable, List, Sequence, Tuple, Union

import numpy as np
import torch

from oml.retrieval import ConstantThresholding, RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.retrieval import search_image


def _rounded(values: Iterable[float]) -> List[float]:
    return [round(float(v), 3) for v in values]


def _as_ids(x: Iterable) -> List[int]:
    return [int(i) for i in torch.as_tensor(x).flatten().tolist()] if x is not None else []


# Chapter 06 ---------------------------------------------------------------------------------------


@checker
def check_threshold_by_hand(fn: Callable[[RetrievalResults, float], Sequence], rr: RetrievalResults) -> Verdict:
    """Exercise 06.1: ``fn(rr, th)`` gives, per query, the retrieved ids that ``ConstantThresholding(th)`` keeps."""
    all_distances = torch.cat([d for d in rr.distances if len(d)])
    # a quantile, the exact distance of one result (a tie at the threshold) and a threshold that keeps nothing
    cases = [float(all_distances.quantile(0.3)), float(all_distances.sort().values[len(all_distances) // 2]), 0.0]
    problems: List[str] = []
    for th in cases:
        truth = [_as_ids(r) for r in ConstantThresholding(th).process(rr).retrieved_ids]
        answer = list(fn(rr, th))
        if len(answer) != len(truth):
            problems.append(f"return one list of ids per query ({len(truth)} queries), got {len(answer)}.")
            break
        for q, (mine, right) in enumerate(zip(answer, truth)):
            mine = _as_ids(mine)
            if mine == right:
                continue
            distance_of = dict(zip(_as_ids(rr.retrieved_ids[q]), rr.distances[q].tolist()))
            extra = [distance_of[i] for i in mine if i not in right and i in distance_of]
            if extra and all(np.isclose(d, th) for d in extra):
                hint = "a result exactly at the threshold is dropped: keep distance < th, not <= th."
            elif extra:
                hint = "you keep results at or above the threshold; keep only the ones closer than th."
            elif sorted(mine) == sorted(right):
                hint = "the right items but in another order; thresholding never reorders, keep the ranking."
            elif len(mine) == len(right):
                hint = "the right number of items but not the right ones; take them from rr.retrieved_ids, not positions."
            else:
                hint = "compare each distance in rr.distances[q] with th and keep the ids where it is smaller."
            problems.append(f"for th={th:.4g}, query {q}: you keep {mine[:6]}, OML keeps {right[:6]}; {hint}")
            break
        if problems:
            break
    return _verdict(problems, "your filter keeps exactly what ConstantThresholding keeps, ties at the threshold included.")


def _kept_stats(rr: RetrievalResults, th: float) -> Tuple[int, int]:
    kept = ConstantThresholding(th).process(rr)
    n_kept = sum(len(r) for r in kept.retrieved_ids)
    n_right = sum(int(torch.isin(r, gt).sum()) for r, gt in zip(kept.retrieved_ids, kept.gt_ids))
    return n_kept, n_right


@checker
def check_precision_threshold(th: float, rr: RetrievalResults, min_precision: float = 0.9) -> Verdict:
    """Exercise 06.2: the threshold that keeps the most results while their precision stays >= ``min_precision``."""
    if rr.gt_ids is None:
        return _verdict(["rr has no gt_ids; use the labelled retrieval results (rr_labeled)."], "")
    if not isinstance(th, (float, int, np.floating)) and not (torch.is_tensor(th) and th.numel() == 1):
        return _verdict([f"give the threshold as one number, not {type(th).__name__}."], "")
    distances = torch.cat([d for d in rr.distances if len(d)]).unique().sort().values
    best_kept = 0
    for i, d in enumerate(distances.tolist()):  # a threshold just above each distance keeps everything up to it
        upper = distances[i + 1].item() if i + 1 < len(distances) else d + 1.0
        candidate = (d + upper) / 2
        n_kept, n_right = _kept_stats(rr, candidate)
        if n_kept and n_right / n_kept >= min_precision and n_kept > best_kept:
            best_kept = n_kept
    n_kept, n_right = _kept_stats(rr, float(th))
    precision = n_right / n_kept if n_kept else float("nan")
    problems = []
    if n_kept == 0:
        problems.append(f"th={float(th):.4g} keeps no result at all; raise it (distances start at {distances[0]:.4g}).")
    elif precision < min_precision:
        problems.append(
            f"th={float(th):.4g} keeps {n_kept} results with a precision of {precision:.3f}, below {min_precision}; "
            "lower it. Precision is the share of *kept results* that are right, over all queries together."
        )
    elif n_kept < best_kept:
        at_distance = bool(torch.isclose(distances, torch.tensor(float(th))).any())
        hint = (" Your threshold equals a distance, and ConstantThresholding drops results at exactly th: "
                "go a little above." if at_distance else "")
        problems.append(
            f"th={float(th):.4g} is safe (precision {precision:.3f}) but keeps only {n_kept} results; "
            f"a larger threshold keeps {best_kept} at a precision still >= {min_precision}. Try every distance "
            f"in rr.distances as a candidate and keep the largest one that passes.{hint}"
        )
    return _verdict(problems, f"th={float(th):.3g} keeps {n_kept} result{'s' * (n_kept != 1)}, {precision:.1%} of them right; "
                    f"no threshold keeps more at precision >= {min_precision}.")


@checker
def check_search(
    fn: Callable[..., Tuple[torch.Tensor, torch.Tensor]],
    model: torch.nn.Module,
    image_path: Union[str, Path],
    dataset,
    gallery_embeddings: torch.Tensor,
    k: int = 5,
) -> Verdict:
    """Exercise 06.3: ``fn(model, image_path, gallery_embeddings, k)`` gives ``(gallery positions, distances)``."""
    truth = search_image(model, image_path, dataset, gallery_embeddings, k=k)
    right_ids, right_d = truth["gallery_id"].tolist(), truth["distance"].to_numpy()
    positions, distances = fn(model, image_path, gallery_embeddings, k)
    mine, mine_d = _as_ids(positions), torch.as_tensor(distances, dtype=torch.float32).detach().cpu().flatten().numpy()
    problems = []
    gallery_ids = _as_ids(dataset.get_gallery_ids())
    if len(mine) != k or len(mine_d) != k:
        problems.append(f"return k={k} positions and k distances, got {len(mine)} and {len(mine_d)}.")
    elif mine == right_ids and np.allclose(mine_d, right_d, atol=1e-4):
        pass
    elif mine == [gallery_ids[i] for i in right_ids]:
        problems.append("these are dataset indices; return positions in the gallery (rows of gallery_embeddings).")
    elif sorted(mine) == sorted(right_ids) and mine != right_ids:
        problems.append("the right items in the wrong order; sort by distance, nearest first (topk(..., largest=False)).")
    elif len(mine_d) > 1 and mine_d[0] > mine_d[-1]:
        problems.append("your distances decrease: you took the farthest items. Use topk(k, largest=False).")
    elif np.allclose(mine_d, right_d ** 2, rtol=1e-3):
        problems.append("your distances are squared; torch.cdist gives the Euclidean distance OML uses.")
    else:
        problems.append(
            f"you found {mine} at {_rounded(mine_d)}, expected {right_ids} at {_rounded(right_d)}. "
            "Read the image with h.load_image_tensor (the book's transforms), embed it with the model in eval mode, "
            "and compare with gallery_embeddings by torch.cdist."
        )
    return _verdict(problems, f"the {k} nearest gallery items, at distances {_rounded(right_d)}.")
