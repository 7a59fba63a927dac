"""Checkers for the exercises of chapter 06 (retrieval without labels)."""

from typing import Callable, Iterable, List, Sequence, Tuple

import numpy as np
import torch

from oml.retrieval import ConstantThresholding, RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict
from oml_helpers.image_search import search_image


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


def _best_threshold(rr: RetrievalResults, min_precision: float) -> Tuple[float, int]:
    """The threshold that keeps the most results at a pooled precision >= ``min_precision``, and that number."""
    distances = torch.cat([d for d in rr.distances if len(d)]).unique().sort().values.tolist()
    best_th, best_kept = 0.0, 0
    for i, d in enumerate(distances):  # a threshold just above each distance keeps everything up to it
        candidate = (d + (distances[i + 1] if i + 1 < len(distances) else d + 1.0)) / 2
        n_kept, n_right = _kept_stats(rr, candidate)
        if n_kept and n_right / n_kept >= min_precision and n_kept > best_kept:
            best_th, best_kept = candidate, n_kept
    return best_th, best_kept


#: how many tuning results fewer than the best a threshold may keep and still pass Exercise 06.2
KEPT_SLACK = 2


def _next_distance(distances: torch.Tensor, th: float) -> float:
    """The smallest distance at or above ``th`` (``inf`` if none): the next result a larger th keeps."""
    above = distances[distances >= th]
    return float(above.min()) if len(above) else float("inf")


@checker
def check_precision_threshold(th: float, rr_tuning: RetrievalResults, rr_heldout: RetrievalResults,
                              min_precision: float = 0.9) -> Verdict:
    """Exercise 06.2: on the tuning results, the threshold that keeps the most results at a pooled
    precision >= ``min_precision`` (up to ``KEPT_SLACK`` results fewer); the verdict also scores it
    on the held-out results."""
    if rr_tuning.gt_ids is None or rr_heldout.gt_ids is None:
        return _verdict(["the results have no gt_ids; use the labelled results rr_tuning and rr_heldout."], "")
    if not isinstance(th, (float, int, np.floating)) and not (torch.is_tensor(th) and th.numel() == 1):
        return _verdict([f"give the threshold as one number, not {type(th).__name__}."], "")
    th = float(th)
    distances = torch.cat([d for d in rr_tuning.distances if len(d)]).unique().sort().values
    best_th, best_kept = _best_threshold(rr_tuning, min_precision)
    n_kept, n_right = _kept_stats(rr_tuning, th)
    precision = n_right / n_kept if n_kept else float("nan")
    problems = []
    if n_kept == 0:
        problems.append(f"th={th:.4f} keeps no result at all; raise it (distances start at {distances[0]:.4f}).")
    elif precision < min_precision:
        problems.append(
            f"th={th:.4f} keeps {n_kept} tuning results with a pooled precision of {precision:.3f}, below "
            f"{min_precision}; lower it.\nThe pooled precision is the share of *kept results* that are right, "
            "over all tuning queries together\n(rr_tuning, not rr_heldout: the held-out queries only score)."
        )
    elif n_kept < best_kept - KEPT_SLACK:
        at_distance = bool(torch.isclose(distances, torch.tensor(th)).any())
        hint = ("\nYour threshold equals a distance, and ConstantThresholding drops results at exactly th: "
                "go a little above." if at_distance else "")
        problems.append(
            f"th={th:.4f} is safe (precision {precision:.3f}) but keeps only {n_kept} tuning results;\n"
            f"a larger threshold keeps {best_kept} at a precision still >= {min_precision}. Try every distance\n"
            f"in rr_tuning.distances as a candidate and keep the largest one that passes.{hint}"
        )
    if problems:
        return _verdict(problems, "")

    def scored(rr: RetrievalResults, threshold: float) -> str:
        kept, right = _kept_stats(rr, threshold)
        return f"{kept} results, {right / kept:.1%} right" if kept else "no result"

    lines = [f"your th keeps {n_kept} tuning results, {precision:.1%} of them right",
             f"(the most any threshold keeps at precision >= {min_precision}: {best_kept})."]
    next_d = _next_distance(distances, best_th)
    if next_d < float("inf"):
        gap = next_d - th
        how_far = "less than 0.0001" if 0 <= gap < 1e-4 else f"{gap:.4f}"
        next_kept, next_right = _kept_stats(rr_tuning, next_d + 1e-6)
        rounded = round(th, 4)
        lines += [f"It is fragile: the next tuning distance lies {how_far} above it, and a threshold just above",
                  f"that keeps {next_kept} results, {next_right / next_kept:.1%} right; your th rounded to "
                  f"{rounded:.4f} keeps {scored(rr_tuning, rounded)}."]
    reverse_th, _ = _best_threshold(rr_heldout, min_precision)
    return _verdict([], "\n".join(lines + [
        f"On the held-out queries it keeps {scored(rr_heldout, th)}.",
        f"The other way round, the same rule on the held-out queries picks th={reverse_th:.4f},",
        f"which on the tuning queries keeps {scored(rr_tuning, reverse_th)}.",
        "The queries that choose a threshold meet the target by construction; only other queries",
        f"measure it, and with {len(rr_heldout.retrieved_ids)} of them the figure moves by several points either way.",
    ]))


def _check_positions(found: List[int], found_d: np.ndarray, right: List[int], right_d: np.ndarray) -> bool:
    """The same items at the same distances, nearest first; two items at a near-tie may swap places."""
    if len(found) != len(right) or not np.allclose(found_d, right_d, atol=1e-4):
        return False
    return all(a == b or abs(d - e) < 1e-4 for a, b, d, e in zip(found, right, found_d, right_d))


@checker
def check_search(
    fn: Callable[..., Tuple[torch.Tensor, torch.Tensor]],
    model: torch.nn.Module,
    image,
    transform: Callable,
    store,
    k: int = 5,
) -> Verdict:
    """Exercise 06.3: ``fn(model, image, transform, vectors, k)`` gives ``(row positions, distances)``."""
    truth = search_image(model, image, transform, store, k=k)
    right_ids, right_d = _as_ids(truth.ids), np.asarray(truth.distances, dtype=np.float64)
    stored = store.load()
    row_of_id = {int(i): row for row, i in enumerate(stored.ids.tolist())}
    positions, distances = fn(model, image, transform, torch.from_numpy(stored.vectors), k)
    mine = _as_ids(positions)
    mine_d = torch.as_tensor(distances, dtype=torch.float32).detach().cpu().flatten().numpy()
    problems = []
    if len(mine) != k or len(mine_d) != k:
        problems.append(f"return k={k} positions and k distances, got {len(mine)} and {len(mine_d)}.")
    elif any(not 0 <= p < len(stored.ids) for p in mine):
        if all(p in row_of_id for p in mine):
            problems.append("these look like store ids; return positions, the rows of `vectors` (0 to "
                            f"{len(stored.ids) - 1}); store.load().ids[position] is the store id.")
        else:
            problems.append(f"positions must be rows of `vectors`, 0 to {len(stored.ids) - 1}; got {mine}.")
    elif _check_positions(_as_ids(stored.ids[mine]), mine_d, right_ids, right_d):
        pass
    elif sorted(mine) == sorted(row_of_id[i] for i in right_ids) and _as_ids(stored.ids[mine]) != right_ids:
        problems.append("the right items in the wrong order; sort by distance, nearest first (topk(..., largest=False)).")
    elif len(mine_d) > 1 and mine_d[0] > mine_d[-1]:
        problems.append("your distances decrease: you took the farthest items. Use topk(k, largest=False).")
    elif np.allclose(mine_d, right_d ** 2, rtol=1e-3):
        problems.append("your distances are squared; torch.cdist gives the Euclidean distance OML uses.")
    else:
        problems.append(
            f"you found rows {mine} at {_rounded(mine_d)}, expected rows {[row_of_id[i] for i in right_ids]} at "
            f"{_rounded(right_d)}. Put the image through `transform` (after .convert('RGB')), add a batch "
            "dimension with unsqueeze(0), embed it with the model in eval mode, and compare with `vectors` by torch.cdist."
        )
    return _verdict(problems, f"the {k} nearest stored items, at distances {_rounded(right_d)}.")
