"""Checkers for the exercises of chapters 06-07 (retrieval without labels, re-ranking)."""

from typing import Callable, Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np
import torch

from oml.miners.pairs import PairsMiner
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


@checker
def check_precision_threshold(th: float, rr_tuning: RetrievalResults, rr_heldout: RetrievalResults,
                              min_precision: float = 0.9) -> Verdict:
    """Exercise 06.2: on the tuning results, the threshold that keeps the most results at a pooled
    precision >= ``min_precision``; the verdict also scores it on the held-out results."""
    if rr_tuning.gt_ids is None or rr_heldout.gt_ids is None:
        return _verdict(["the results have no gt_ids; use the labelled results rr_tuning and rr_heldout."], "")
    if not isinstance(th, (float, int, np.floating)) and not (torch.is_tensor(th) and th.numel() == 1):
        return _verdict([f"give the threshold as one number, not {type(th).__name__}."], "")
    distances = torch.cat([d for d in rr_tuning.distances if len(d)]).unique().sort().values
    _, best_kept = _best_threshold(rr_tuning, min_precision)
    n_kept, n_right = _kept_stats(rr_tuning, float(th))
    precision = n_right / n_kept if n_kept else float("nan")
    problems = []
    if n_kept == 0:
        problems.append(f"th={float(th):.4g} keeps no result at all; raise it (distances start at {distances[0]:.4g}).")
    elif precision < min_precision:
        problems.append(
            f"th={float(th):.4g} keeps {n_kept} tuning results with a pooled precision of {precision:.3f}, below "
            f"{min_precision}; lower it. The pooled precision is the share of *kept results* that are right, over all "
            "tuning queries together (rr_tuning, not rr_heldout: the held-out queries only score)."
        )
    elif n_kept < best_kept:
        at_distance = bool(torch.isclose(distances, torch.tensor(float(th))).any())
        hint = (" Your threshold equals a distance, and ConstantThresholding drops results at exactly th: "
                "go a little above." if at_distance else "")
        problems.append(
            f"th={float(th):.4g} is safe (precision {precision:.3f}) but keeps only {n_kept} tuning results; "
            f"a larger threshold keeps {best_kept} at a precision still >= {min_precision}. Try every distance "
            f"in rr_tuning.distances as a candidate and keep the largest one that passes.{hint}"
        )
    if problems:
        return _verdict(problems, "")

    def scored(rr: RetrievalResults, threshold: float) -> str:
        kept, right = _kept_stats(rr, threshold)
        return f"{kept} results, {right / kept:.1%} right" if kept else "no result"

    reverse_th, _ = _best_threshold(rr_heldout, min_precision)
    return _verdict([], f"th={float(th):.3g} keeps {n_kept} tuning results, {precision:.1%} of them right; no "
                    f"threshold keeps more at precision >= {min_precision}. On the held-out queries it keeps "
                    f"{scored(rr_heldout, float(th))}. The other way round, the same rule on the held-out queries "
                    f"picks th={reverse_th:.3g}, which on the tuning queries keeps {scored(rr_tuning, reverse_th)}. "
                    "The queries that choose a threshold meet the target by construction; only other queries "
                    f"measure it, and with {len(rr_heldout.retrieved_ids)} of them the figure moves by several points either way.")


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


# Chapter 07 ---------------------------------------------------------------------------------------


def _top1_right(rr: RetrievalResults) -> List[bool]:
    return [bool(len(r) and torch.isin(r[:1], gt).item()) for r, gt in zip(rr.retrieved_ids, rr.gt_ids)]


@checker
def check_top1_flips(right_to_wrong: int, wrong_to_right: int, before: RetrievalResults, after: RetrievalResults) -> Verdict:
    """Exercise 07.1: queries whose first result went from right to wrong, and from wrong to right."""
    b, a = _top1_right(before), _top1_right(after)
    r2w = sum(x and not y for x, y in zip(b, a))
    w2r = sum(y and not x for x, y in zip(b, a))
    moved = [int(rb[0]) != int(ra[0]) for rb, ra in zip(before.retrieved_ids, after.retrieved_ids)]
    changed, moved_right = sum(moved), sum(m and x for m, x in zip(moved, b))
    problems = []
    if (right_to_wrong, wrong_to_right) == (w2r, r2w) and r2w != w2r:
        problems.append("the two counts are swapped: right -> wrong means right before re-ranking, wrong after.")
    elif right_to_wrong == moved_right != r2w:
        problems.append(f"{right_to_wrong} is the number of queries that were right and got a new first result; "
                        "many of those are still right after. Check the new first result against gt_ids too.")
    elif right_to_wrong + wrong_to_right == changed and changed != r2w + w2r:
        problems.append(f"your counts add up to the {changed} queries whose first result changed; most of those "
                        "swapped one right item for another. Count only where right/wrong itself changed.")
    elif right_to_wrong != r2w or wrong_to_right != w2r:
        problems.append(
            f"{right_to_wrong} and {wrong_to_right} are off. For each query, the top-1 is right when "
            "rr.retrieved_ids[q][0] is in rr.gt_ids[q]; compare that before and after."
        )
    net = w2r - r2w
    return _verdict(problems, f"{r2w} right -> wrong, {w2r} wrong -> right: CMC@1 changes by {net:+d} queries "
                    f"of {len(b)}, i.e. {net / len(b):+.2f}.")


@checker
def check_cost_estimate(estimate_ms: float, seconds: Dict[int, float], n_queries: int, top_n: int = 50,
                        tolerance: float = 0.2) -> Verdict:
    """Exercise 07.2: ms per query at ``top_n``, extrapolated from measured ``{top_n: seconds for all queries}``."""
    xs = np.array(sorted(seconds), dtype=float)
    ms = np.array([1000 * seconds[int(x)] / n_queries for x in xs])
    slope, intercept = np.polyfit(xs, ms, 1)
    truth = slope * top_n + intercept
    value = float(estimate_ms)
    problems = []
    if abs(value - truth) <= tolerance * truth:
        pass
    elif np.isclose(value, truth / 1000, rtol=tolerance):
        problems.append("that looks like seconds; give milliseconds (x 1000).")
    elif np.isclose(value, truth * n_queries, rtol=tolerance) or np.isclose(value, truth * n_queries / 1000, rtol=tolerance):
        problems.append(f"that is the time for all {n_queries} queries; divide by the number of queries.")
    elif any(np.isclose(value, m, rtol=0.05) for m in ms):
        problems.append(f"that is a measured value; extrapolate to top_n={top_n} with a straight line (np.polyfit, degree 1).")
    else:
        problems.append(
            f"{value:.1f} ms is more than {tolerance:.0%} away from the straight-line fit. Convert each timing to "
            f"ms per query (1000 * seconds / n_queries), fit ms = a * top_n + b, and evaluate it at {top_n}."
        )
    return _verdict(problems, f"the line through the timings gives {truth:.1f} ms per query at top_n={top_n} "
                    f"({slope:.2f} ms per extra pair); yours, {value:.1f}, is within {tolerance:.0%}. Timings vary "
                    "with the machine and its load, hence the tolerance.")


def _pair_set(pairs: Iterable) -> Set[Tuple[int, int]]:
    return {tuple(sorted((int(i), int(j)))) for i, j in pairs}


@checker
def check_hard_pairs(fn: Callable[[torch.Tensor, Sequence[int]], Tuple[Iterable, Iterable]]) -> Verdict:
    """Exercise 07.3: ``fn(embeddings, labels)`` gives (positive pairs, negative pairs) like ``PairsMiner(hard_mining=True)``."""
    generator = torch.Generator().manual_seed(7)
    embeddings = torch.randn(12, 4, generator=generator)
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    ids1, ids2, is_negative = PairsMiner(hard_mining=True).sample(features=embeddings, labels=labels)
    pos = _pair_set(zip(ids1[~is_negative].tolist(), ids2[~is_negative].tolist()))
    neg = _pair_set(zip(ids1[is_negative].tolist(), ids2[is_negative].tolist()))
    distances = torch.cdist(embeddings, embeddings)
    same = torch.tensor(labels)[:, None] == torch.tensor(labels)[None, :]
    easy_pos = _pair_set(enumerate(distances.masked_fill(~same | torch.eye(12, dtype=torch.bool), float("inf")).argmin(1).tolist()))
    easy_neg = _pair_set(enumerate(distances.masked_fill(same, -1.0).argmax(1).tolist()))
    answer_pos, answer_neg = (list(x) for x in fn(embeddings, labels))
    mine_pos, mine_neg = _pair_set(answer_pos), _pair_set(answer_neg)
    problems = []
    if any(i == j for i, j in mine_pos | mine_neg):
        problems.append("a pair of an image with itself; the hardest positive is another image of the same label.")
    elif any(labels[i] != labels[j] for i, j in mine_pos) or any(labels[i] == labels[j] for i, j in mine_neg):
        problems.append("positive pairs share a label and negative pairs do not; check which list is which.")
    elif mine_pos == easy_pos and pos != easy_pos:
        problems.append("you took each anchor's *nearest* positive; the hardest one is the *farthest* same-label image.")
    elif mine_neg == easy_neg and neg != easy_neg:
        problems.append("you took each anchor's *farthest* negative; the hardest one is the *nearest* other-label image.")
    elif len(answer_pos) + len(answer_neg) > len(mine_pos) + len(mine_neg) and (mine_pos, mine_neg) == (pos, neg):
        problems.append("right pairs, but some twice: (i, j) and (j, i) are one pair, which the miner keeps once.")
    elif mine_pos != pos:
        problems.append(f"positive pairs differ: missing {sorted(pos - mine_pos)[:3]}, extra {sorted(mine_pos - pos)[:3]}.")
    elif mine_neg != neg:
        problems.append(f"negative pairs differ: missing {sorted(neg - mine_neg)[:3]}, extra {sorted(mine_neg - neg)[:3]}.")
    return _verdict(problems, f"{len(pos)} positive and {len(neg)} negative pairs, as PairsMiner mines them: fewer "
                    f"than 2 x {len(labels)}, because two anchors that pick each other give one pair.")
