"""The checker of chapter 07's exercise 07.2: the largest ``top_n`` a time budget
allows, and whether the list or the pairwise model limits re-ranking's gain."""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers.exercises.verdict import Verdict, checker
from oml_helpers.exercises.verdict import verdict


# how far from the budget a measured time may lie and still count as "on the edge":
# timings move by more than this from run to run
TOLERANCE = 0.05


def _ms_per_query(seconds: Dict[int, float], n_queries: int) -> Dict[int, float]:
    """The timings as ``{top_n: milliseconds per query}``, sorted by ``top_n``."""
    return {int(n): 1000 * seconds[n] / n_queries for n in sorted(seconds)}


def _joined(ms: Dict[int, float], n: int) -> float:
    """Milliseconds per query at ``top_n=n`` on the measured points joined by
    straight segments (``np.interp``); 0 for ``n=0``, no re-ranking."""
    return float(np.interp(n, list(ms), list(ms.values()))) if n else 0.0


def _line(ms: Dict[int, float]) -> Tuple[float, float]:
    """Least-squares line ``ms per query = slope * top_n + intercept``: the model
    the checker does not use, to recognise an answer made with it."""
    slope, intercept = np.polyfit(list(ms), list(ms.values()), 1)
    return float(slope), float(intercept)


def _largest_within(costs: Dict[int, float], budget_ms: float) -> int:
    """The largest ``top_n`` whose cost is at most ``budget_ms``; 0 if none."""
    return max((n for n, c in costs.items() if c <= budget_ms), default=0)


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

    The time per query at a ``top_n`` is read off the measured points joined by
    straight segments (``np.interp``), not off one straight line: the cost of a pair
    is not the same at every ``top_n``, and a line can miss a measured time. An
    answer counts as right when the table cannot tell it from the exact one: its
    time is at most ``budget_ms`` plus ``TOLERANCE`` (5%), and the next ``top_n``'s
    time is at least ``budget_ms`` minus 5%.

    Args:
        budget_top_n: The answer: the largest ``top_n`` from 2 to the largest timed
            one (OML's ``PairwiseReranker`` needs ``top_n > 1``) whose time per
            query is at most ``budget_ms``; 0 if none.
        cmc_cap: The answer: the extractor's CMC@``budget_top_n`` on ``rr``; CMC@1
            when ``budget_top_n`` is 0 (no re-ranking leaves CMC@1 as it is).
        seconds: Measured ``{top_n: seconds for all queries}``, at least two
            ``top_n``, each from 2 to ``rr.n_retrieved_items``.
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
        ValueError: Fewer than two timings, a timed ``top_n`` outside 2 to
            ``rr.n_retrieved_items``; a bad ``reranked`` (see ``_what_limits``).
        TypeError: ``reranked`` is not a dict of ``RetrievalResults``.
    """
    n_max = rr.n_retrieved_items
    if len(seconds) < 2:
        raise ValueError(
            "Need timings for at least two top_n to read times between them, got "
            f"{sorted(seconds)}."
        )
    if not all(2 <= n <= n_max for n in seconds):
        raise ValueError(
            f"The timed top_n must be from 2 to the {n_max} retrieved items, got "
            f"{sorted(seconds)}."
        )
    ms = _ms_per_query(seconds, n_queries)
    n_hi = max(ms)  # the table says nothing beyond the largest top_n timed
    costs = {n: _joined(ms, n) for n in range(2, n_hi + 1)}
    truth = _largest_within(costs, budget_ms)

    def on_the_edge(n: int) -> bool:
        # the table cannot tell n from truth: within TOLERANCE of the budget
        after = n_hi + 1 if n == n_hi else (2 if n == 0 else n + 1)
        next_cost = costs.get(after, float("inf"))
        return _joined(ms, n) <= budget_ms * (1 + TOLERANCE) and next_cost >= (
            budget_ms * (1 - TOLERANCE)
        )

    cmc = _cmc(rr, range(1, n_max + 1))
    limits = "" if reranked is None else _what_limits(reranked, rr, cmc)
    n, value = budget_top_n, float(cmc_cap)
    whole = not isinstance(n, bool) and isinstance(n, (int, np.integer))
    accepted = whole and (n == truth or (n in costs or n == 0) and on_the_edge(n))
    answer = int(n) if accepted else truth
    cap = float(cmc[answer if answer else 1])
    slope, intercept = _line(ms)
    on_line = _largest_within(
        {k: slope * k + intercept for k in range(2, n_hi + 1)}, budget_ms
    )
    off_line = max(ms, key=lambda k: abs(ms[k] - slope * k - intercept))
    per_pair = {k: ms[k] / k for k in ms}
    problems = []
    if not accepted:
        if not whole or not 0 <= n <= n_max:
            problems.append(
                f"top_n is a whole number from 2 to the {n_max} results the "
                f"extractor returned (or 0 if none fits), got {n!r}."
            )
        elif n == 1:
            problems.append(
                "PairwiseReranker needs top_n > 1 (re-ranking one item changes "
                "nothing): search from 2."
            )
        elif n > n_hi:
            problems.append(
                f"the largest top_n timed is {n_hi}; beyond it the table says "
                f"nothing about the cost: search from 2 to {n_hi}."
            )
        elif n == on_line:
            problems.append(
                "that is what one straight line through the timings gives, but "
                f"the line misses the measured {ms[off_line]:.0f} ms at top_n="
                f"{off_line} (it says {slope * off_line + intercept:.0f}): join "
                "the measured points instead (np.interp) and read the time there."
            )
        elif n == truth + 1 or (truth == 0 and n == 2):
            problems.append(
                f"the measured points give {costs[n]:.0f} ms per query at "
                f"top_n={n}, over {budget_ms:.0f} ms: round down, to the largest "
                "top_n that fits."
            )
        elif n == int(budget_ms / np.mean(list(per_pair.values()))):
            problems.append(
                "that divides the budget by an average cost per pair, but the "
                "cost per pair changes with top_n (from "
                f"{min(per_pair.values()):.1f} to "
                f"{max(per_pair.values()):.1f} ms): read the time per query off "
                "the measured points (np.interp)."
            )
        else:
            problems.append(
                f"top_n={n} is not the largest that fits: join the measured ms "
                "per query (1000 * seconds / n_queries) by straight segments "
                f"(np.interp) and find the largest top_n from 2 to {n_hi} whose "
                f"time is at most {budget_ms:.0f}."
            )
    elif not np.isclose(value, cap, atol=1e-3):
        if answer and np.isclose(value, float(cmc[1]), atol=1e-3):
            problems.append(
                f"that is CMC@1; the cap is CMC@{answer}: the share of queries "
                f"with a right item among their first {answer}."
            )
        elif np.isclose(value, 100 * cap, atol=0.1):
            problems.append(
                "that is a percentage; give the share, between 0 and 1."
            )
        else:
            problems.append(
                f"{value:.3f} is not CMC@{max(answer, 1)}: count the queries with "
                "at least one right item (rr.gt_ids) among their first "
                f"{max(answer, 1)} results, over all queries."
            )
    edge = (
        ""
        if answer == truth
        else f" (the exact answer is {truth}, but the times lie within "
        f"{TOLERANCE:.0%} of the budget: the table cannot tell them apart)"
    )
    if not answer:
        return verdict(
            problems,
            f"even top_n=2 costs {costs[2]:.0f} ms per query: re-ranking does not "
            f"fit {budget_ms:.0f} ms here, and CMC@1 stays {float(cmc[1]):.2f}"
            f"{edge}.",
        )
    step = (
        f"{costs[answer + 1]:.0f} at {answer + 1}"
        if answer < n_hi
        else f"the largest top_n timed is {n_hi}"
    )
    return verdict(
        problems,
        f"the measured points give {costs[answer]:.0f} ms per query at "
        f"top_n={answer} and {step}{edge}. Re-ranking the top {answer} can "
        f"lift CMC@1 from {float(cmc[1]):.2f} to at most CMC@{answer} = {cap:.2f}, "
        f"against CMC@{n_max} = {float(cmc[n_max]):.2f} for the whole list. "
        "Timings vary with the machine, and so does this top_n." + limits,
    )
