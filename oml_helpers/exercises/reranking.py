"""Checkers for the exercises of chapter 07, Re-ranking with a pairwise model: the
precision and recall of a pairwise threshold's cut (07.1) and hard pairs like OML's
``PairsMiner`` (07.3). The time-budget checker (07.2) is in ``reranking_budget``."""

from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Sequence,
    Set,
    Tuple,
)

import numpy as np
import torch

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
    results, in eval mode as ``pairwise_inference`` scores them (a model that
    ``trainer.validate`` left in training mode has its dropout on); the model's
    mode is restored afterwards."""
    query_ids, gallery_ids = dataset.get_query_ids(), dataset.get_gallery_ids()
    device = _model_device(model)
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    scores = []
    try:
        with torch.no_grad():
            for q, ids in enumerate(rr.retrieved_ids):
                x1 = dataset[int(query_ids[q])]["input_tensors"].to(device)
                x2 = torch.stack(
                    [
                        dataset[int(gallery_ids[i])]["input_tensors"]
                        for i in ids[:top_n]
                    ]
                ).to(device)
                scores.append(model.predict(x1.expand_as(x2), x2).flatten().cpu())
    finally:
        if was_training:
            model.train()
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
