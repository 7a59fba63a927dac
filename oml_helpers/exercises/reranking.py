"""Checkers for the exercises of chapter 07, Re-ranking with a pairwise model: the
precision and recall of a pairwise threshold's cut (07.1), the largest ``top_n`` a
time budget allows (07.2) and hard pairs like OML's ``PairsMiner`` (07.3)."""

from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import numpy as np
import torch

from oml.metrics import calc_retrieval_metrics_rr
from oml.miners.pairs import PairsMiner
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict
from oml_helpers.retrieval import correct_mask


def _cut(
    kept: List[torch.Tensor], right: List[torch.Tensor]
) -> Tuple[float, float]:
    """Pooled precision and recall of the kept candidates, over all queries
    together."""
    n_kept = sum(int(k.sum()) for k in kept)
    n_hit = sum(int((k & r).sum()) for k, r in zip(kept, right))
    n_right = sum(int(r.sum()) for r in right)
    return n_hit / max(n_kept, 1), n_hit / max(n_right, 1)


def _model_device(model: Any) -> torch.device:
    """The device of ``model``'s first parameter (a GPU in Colab), or the CPU if it
    has none."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.device if first is not None else torch.device("cpu")


def _raw_scores(
    model: Any, dataset: Any, rr: RetrievalResults, top_n: int
) -> List[torch.Tensor]:
    """The pairwise model's own scores of each query with its ``top_n`` first
    results."""
    query_ids, gallery_ids = dataset.get_query_ids(), dataset.get_gallery_ids()
    device = _model_device(model)
    scores = []
    with torch.no_grad():
        for q, ids in enumerate(rr.retrieved_ids):
            x1 = dataset[int(query_ids[q])]["input_tensors"].to(device)
            x2 = torch.stack(
                [dataset[int(gallery_ids[i])]["input_tensors"] for i in ids[:top_n]]
            ).to(device)
            scores.append(model.predict(x1.expand_as(x2), x2).flatten().cpu())
    return scores


@checker
def check_cut_after_rerank(
    precision: float,
    recall: float,
    rr: RetrievalResults,
    dataset: Any,
    pairwise_model: Any,
    threshold: float,
    extractor_threshold: float,
    top_n: int = 5,
) -> Verdict:
    """Exercise 07.1: pooled precision and recall of the top ``top_n`` cut at a
    pairwise threshold.

    Args:
        precision: The answer: right items among the kept candidates, pooled over
            the queries.
        recall: The answer: kept items among the right ones of each top ``top_n``,
            pooled.
        rr: The extractor's results (its top ``top_n`` are the re-ranker's
            candidates).
        dataset: The query/gallery dataset of ``rr``.
        pairwise_model: The pairwise model; its ``predict`` gives the raw scores.
        threshold: Kept are the candidates the pairwise model scores below it.
        extractor_threshold: The same cut on the extractor's distances, for
            comparison.
        top_n: Candidates per query.

    Returns:
        The verdict.
    """
    if not 1 <= top_n <= rr.n_retrieved_items:
        raise ValueError(
            f"top_n must be between 1 and the {rr.n_retrieved_items} retrieved "
            f"items, got {top_n}."
        )
    right = [mask[:top_n] for mask in correct_mask(rr)]
    scores = _raw_scores(pairwise_model, dataset, rr, top_n)
    truth = _cut([s < threshold for s in scores], right)
    above = _cut([s >= threshold for s in scores], right)
    by_extractor = _cut(
        [d[:top_n] < extractor_threshold for d in rr.distances], right
    )
    mixed = _cut([d[:top_n] < threshold for d in rr.distances], right)
    answer = (float(precision), float(recall))
    # one borderline candidate may land on the other side of the threshold when the
    # scores are computed in other batches: allow it (about 0.003 in precision for
    # ~350 kept)
    n_kept_truth = sum(int((s < threshold).sum()) for s in scores)
    atol = min(0.005, 1.5 / max(n_kept_truth, 1))

    def close(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
        return bool(np.allclose(a, b, atol=atol))

    problems = []
    if close(answer, truth):
        pass
    elif close(answer, truth[::-1]):
        problems.append(
            "the two are swapped: precision is the share of the kept candidates "
            "that are right, recall the share of the right candidates that are "
            "kept."
        )
    elif close(answer, above):
        problems.append(
            "you kept the candidates at or above the threshold; the score is a "
            "distance (high means different): keep those below it."
        )
    elif close(answer, by_extractor) or close(answer, mixed):
        problems.append(
            "those come from the extractor's distances (rr.distances); score "
            "each pair with the pairwise model instead (pairwise_inference on "
            "the query and its top 5)."
        )
    else:
        problems.append(
            f"({answer[0]:.3f}, {answer[1]:.3f}) is off. Score each query with "
            f"its {top_n} first results by the pairwise model's predict "
            "(pairwise_inference), keep the scores below the threshold, and "
            "count over all queries together: right and kept / kept, right and "
            "kept / right."
        )
    n_right = sum(int(r.sum()) for r in right)
    wrong_pairwise = sum(
        int(((s < threshold) & ~r).sum()) for s, r in zip(scores, right)
    )
    wrong_extractor = sum(
        int(((d[:top_n] < extractor_threshold) & ~r).sum())
        for d, r in zip(rr.distances, right)
    )
    fewer = (
        "pairwise model's" if wrong_pairwise < wrong_extractor else "extractor's"
    )
    return verdict(
        problems,
        f"below {threshold:.3f} the pairwise model keeps {n_kept_truth} of the "
        f"{top_n * len(scores)} candidates ({n_right} right): precision "
        f"{truth[0]:.3f}, recall {truth[1]:.3f}, {wrong_pairwise} wrong "
        "candidates kept. The extractor's distances cut at "
        f"{extractor_threshold:.3f} give precision {by_extractor[0]:.3f}, recall "
        f"{by_extractor[1]:.3f}, {wrong_extractor} wrong kept: the {fewer} cut "
        "keeps fewer wrong candidates.",
    )


def _line_fit(seconds: Dict[int, float], n_queries: int) -> Tuple[float, float]:
    """Least-squares line ``ms per query = slope * top_n + intercept`` through
    the timings."""
    xs = np.array(sorted(seconds), dtype=float)
    ms = np.array([1000 * seconds[int(x)] / n_queries for x in xs])
    design = np.stack([xs, np.ones_like(xs)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(design, ms, rcond=None)
    return float(slope), float(intercept)


def _cmc(rr: RetrievalResults, top_k: Sequence[int]) -> Dict[int, Any]:
    """OML's CMC@k of ``rr`` for each k in ``top_k``, keyed by k."""
    return calc_retrieval_metrics_rr(
        rr, cmc_top_k=tuple(top_k), precision_top_k=(), map_top_k=(), verbose=False
    )["cmc"]


def _what_limits(
    reranked: Mapping[int, RetrievalResults], rr: RetrievalResults, cmc: Any
) -> str:
    """One sentence: does re-ranking reach its cap CMC@n at some timed ``top_n``
    (the list, so the budget, limits) or stay below it at every one (the pairwise
    model limits)?

    Raises:
        TypeError: ``reranked`` is not a dict of ``{top_n: RetrievalResults}``.
        ValueError: A ``top_n`` is outside 2 to ``rr.n_retrieved_items``, a result
            has another number of queries than ``rr``, or its CMC@1 lies above the
            extractor's CMC@n (re-ranking the top n cannot do that).
    """
    n_max = rr.n_retrieved_items
    if not isinstance(reranked, Mapping) or not reranked:
        raise TypeError(
            "reranked must be a non-empty dict {top_n: RetrievalResults after "
            f"re-ranking the top_n}}, got {type(reranked).__name__}."
        )
    after = {}
    for n, rr_n in sorted(reranked.items()):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"reranked's keys are top_n, whole numbers; got {n!r}.")
        if not 2 <= n <= n_max:
            raise ValueError(
                f"reranked's top_n must be from 2 to the {n_max} retrieved items, "
                f"got {n}."
            )
        n = int(n)
        if not isinstance(rr_n, RetrievalResults):
            raise TypeError(
                f"reranked[{n}] must be RetrievalResults, got "
                f"{type(rr_n).__name__}."
            )
        if len(rr_n.retrieved_ids) != len(rr.retrieved_ids):
            raise ValueError(
                f"reranked[{n}] has {len(rr_n.retrieved_ids)} queries, rr has "
                f"{len(rr.retrieved_ids)}: pass the lists re-ranked from rr."
            )
        after[n] = float(_cmc(rr_n, (1,))[1])
        if after[n] > float(cmc[n]) + 1e-6:
            raise ValueError(
                f"reranked[{n}] has CMC@1 {after[n]:.2f}, above the extractor's "
                f"CMC@{n} = {float(cmc[n]):.2f}: re-ranking the top {n} cannot do "
                "that; pass the lists re-ranked from rr."
            )
    pairs = ", ".join(
        f"{a:.2f} < {float(cmc[n]):.2f} at top_n={n}" for n, a in after.items()
    )
    reached = [
        n for n, a in after.items() if np.isclose(a, float(cmc[n]), atol=1e-6)
    ]
    if not reached:
        return (
            f" After re-ranking, CMC@1 stays below its cap CMC@n at every top_n "
            f"timed ({pairs}): the pairwise model limits, not the budget."
        )
    n = reached[0]
    return (
        f" After re-ranking the top {n}, CMC@1 reaches its cap CMC@{n} = "
        f"{after[n]:.2f}: there the list, and so the budget that sets its length, "
        "limits the gain, not the pairwise model."
    )


@checker
def check_rerank_budget(
    budget_top_n: int,
    cmc_cap: float,
    seconds: Dict[int, float],
    n_queries: int,
    rr: RetrievalResults,
    budget_ms: float = 100.0,
    reranked: Optional[Mapping[int, RetrievalResults]] = None,
) -> Verdict:
    """Exercise 07.2: the largest ``top_n`` a time budget allows, and the CMC@n that
    caps its gain.

    Args:
        budget_top_n: The answer: the largest ``top_n`` (2 to
            ``rr.n_retrieved_items``; OML's ``PairwiseReranker`` needs ``top_n >
            1``) whose time per query, on the straight line through the timings, is
            at most ``budget_ms``; 0 if none.
        cmc_cap: The answer: the extractor's CMC@``budget_top_n`` on ``rr``; CMC@1
            when ``budget_top_n`` is 0 (no re-ranking leaves CMC@1 as it is).
        seconds: Measured ``{top_n: seconds for all queries}``, at least two
            ``top_n``.
        n_queries: Queries the timings are for.
        rr: The extractor's results (their CMC@n caps CMC@1 after re-ranking the top
            n).
        budget_ms: Milliseconds per query that re-ranking may cost.
        reranked: Optional ``{top_n: rr re-ranked at that top_n}``. If given (and
            some ``top_n`` fits the budget), the verdict also says what limits the
            gain: the pairwise model, when CMC@1 after re-ranking stays below its
            cap CMC@n at every ``top_n``; otherwise the list, and so the budget.

    Returns:
        The verdict.

    Raises:
        ValueError: Fewer than two timings; a bad ``reranked`` (see
            ``_what_limits``).
        TypeError: ``reranked`` is not a dict of ``RetrievalResults``.
    """
    if len(seconds) < 2:
        raise ValueError(
            "Need timings for at least two top_n to fit a line, got "
            f"{sorted(seconds)}."
        )
    slope, intercept = _line_fit(seconds, n_queries)
    n_max = rr.n_retrieved_items
    fits = [n for n in range(2, n_max + 1) if slope * n + intercept <= budget_ms]
    truth = max(fits) if fits else 0
    cmc = _cmc(rr, range(1, n_max + 1))
    cap = float(cmc[truth if truth else 1])
    limits = "" if reranked is None else _what_limits(reranked, rr, cmc)
    n, value = budget_top_n, float(cmc_cap)
    per_pair = [1000 * seconds[k] / n_queries / k for k in seconds]
    problems = []
    if n != truth:
        if not isinstance(n, (int, np.integer)) or not 0 <= n <= n_max:
            problems.append(
                f"top_n is a whole number from 2 to the {n_max} results the "
                f"extractor returned (or 0 if none fits), got {n!r}."
            )
        elif n == 1:
            problems.append(
                "PairwiseReranker needs top_n > 1 (re-ranking one item changes "
                "nothing): search from 2."
            )
        elif n == truth + 1:
            problems.append(
                f"the line gives {slope * n + intercept:.0f} ms per query at "
                f"top_n={n}, over {budget_ms:.0f} ms: round down, to the largest "
                "top_n that fits."
            )
        elif n == int(budget_ms / np.mean(per_pair)):
            problems.append(
                "that divides the budget by the cost of one pair; the line also "
                "has an intercept: solve slope * top_n + intercept <= budget."
            )
        else:
            problems.append(
                f"top_n={n} is not the largest that fits: fit ms per query (1000 "
                "* seconds / n_queries) = slope * top_n + intercept and find "
                f"the largest top_n from 2 to {n_max} whose value is at most "
                f"{budget_ms:.0f}."
            )
    elif not np.isclose(value, cap, atol=1e-3):
        if truth and np.isclose(value, float(cmc[1]), atol=1e-3):
            problems.append(
                f"that is CMC@1; the cap is CMC@{truth}: the share of queries "
                f"with a right item among their first {truth}."
            )
        elif np.isclose(value, 100 * cap, atol=0.1):
            problems.append(
                "that is a percentage; give the share, between 0 and 1."
            )
        else:
            problems.append(
                f"{value:.3f} is not CMC@{max(truth, 1)}: count the queries with "
                "at least one right item (rr.gt_ids) among their first "
                f"{max(truth, 1)} results, over all queries."
            )
    if not truth:
        success = (
            f"even top_n=2 costs {2 * slope + intercept:.0f} ms per query on "
            f"this line: re-ranking does not fit {budget_ms:.0f} ms here, and "
            f"CMC@1 stays {float(cmc[1]):.2f}."
        )
    else:
        success = (
            f"the line (slope {slope:.1f} ms per added pair, intercept "
            f"{intercept:.1f} ms) "
            f"gives {slope * truth + intercept:.0f} ms per query at "
            f"top_n={truth} and {slope * (truth + 1) + intercept:.0f} at "
            f"{truth + 1}. Re-ranking the top {truth} can lift CMC@1 from "
            f"{float(cmc[1]):.2f} to at most CMC@{truth} = {cap:.2f}, against "
            f"CMC@{n_max} = {float(cmc[n_max]):.2f} for the whole list. Timings "
            "vary with the machine, and so does this top_n." + limits
        )
    return verdict(problems, success)


def _pair_set(pairs: Iterable) -> Set[Tuple[int, int]]:
    return {tuple(sorted((int(i), int(j)))) for i, j in pairs}


@checker
def check_hard_pairs(
    fn: Callable[[torch.Tensor, Sequence[int]], Tuple[Iterable, Iterable]],
) -> Verdict:
    """Exercise 07.3: ``fn(embeddings, labels)`` gives (positive pairs, negative
    pairs) like ``PairsMiner(hard_mining=True)``."""
    generator = torch.Generator().manual_seed(7)
    embeddings = torch.randn(12, 4, generator=generator)
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    ids1, ids2, is_negative = PairsMiner(hard_mining=True).sample(
        features=embeddings, labels=labels
    )
    pos = _pair_set(zip(ids1[~is_negative].tolist(), ids2[~is_negative].tolist()))
    neg = _pair_set(zip(ids1[is_negative].tolist(), ids2[is_negative].tolist()))
    distances = torch.cdist(embeddings, embeddings)
    same = torch.tensor(labels)[:, None] == torch.tensor(labels)[None, :]
    easy_pos = _pair_set(
        enumerate(
            distances.masked_fill(
                ~same | torch.eye(12, dtype=torch.bool), float("inf")
            )
            .argmin(1)
            .tolist()
        )
    )
    easy_neg = _pair_set(
        enumerate(distances.masked_fill(same, -1.0).argmax(1).tolist())
    )
    answer_pos, answer_neg = (list(x) for x in fn(embeddings, labels))
    mine_pos, mine_neg = _pair_set(answer_pos), _pair_set(answer_neg)
    problems = []
    if any(i == j for i, j in mine_pos | mine_neg):
        problems.append(
            "a pair of an image with itself; the hardest positive is another "
            "image of the same label."
        )
    elif any(labels[i] != labels[j] for i, j in mine_pos) or any(
        labels[i] == labels[j] for i, j in mine_neg
    ):
        problems.append(
            "positive pairs share a label and negative pairs do not; check which "
            "list is which."
        )
    elif mine_pos == easy_pos and pos != easy_pos:
        problems.append(
            "you took each anchor's *nearest* positive; the hardest one is the "
            "*farthest* same-label image."
        )
    elif mine_neg == easy_neg and neg != easy_neg:
        problems.append(
            "you took each anchor's *farthest* negative; the hardest one is the "
            "*nearest* other-label image."
        )
    elif len(answer_pos) + len(answer_neg) > len(mine_pos) + len(mine_neg) and (
        mine_pos,
        mine_neg,
    ) == (pos, neg):
        problems.append(
            "right pairs, but some twice: (i, j) and (j, i) are one pair, which "
            "the miner keeps once."
        )
    elif mine_pos != pos:
        problems.append(
            f"positive pairs differ: missing {sorted(pos - mine_pos)[:3]}, extra "
            f"{sorted(mine_pos - pos)[:3]}."
        )
    elif mine_neg != neg:
        problems.append(
            f"negative pairs differ: missing {sorted(neg - mine_neg)[:3]}, extra "
            f"{sorted(mine_neg - neg)[:3]}."
        )
    return verdict(
        problems,
        f"{len(pos)} positive and {len(neg)} negative pairs, as PairsMiner mines "
        f"them: {len(pos) + len(neg)} pairs from {len(labels)} anchors, not "
        f"{2 * len(labels)} (one positive and one negative each), because two "
        "anchors that pick each other give one pair.",
    )
