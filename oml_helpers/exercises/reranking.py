"""Checkers for the exercises of chapter 07 (re-ranking with a pairwise model)."""

from typing import Callable, Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np
import torch

from oml.miners.pairs import PairsMiner
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict as _verdict


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
