"""The checker of chapter 07's exercise 07.2: the largest ``top_n`` a time budget
allows, and whether the list or the pairwise model limits re-ranking's gain."""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict


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
