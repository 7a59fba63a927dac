"""Each exercise checker accepts the right answer and turns down typical wrong ones with a
reason."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from oml.datasets import ImageQueryGalleryLabeledDataset
from oml.functional.metrics import calc_map
from oml.metrics import calc_retrieval_metrics_rr
from oml.retrieval import RetrievalResults

from oml_helpers import exercises as ex
from oml_helpers.exercises import validation_ap
from verdicts import says as _says


QUIZ_EMBEDDINGS = torch.tensor([[0.0], [1.0], [0.1], [0.3], [0.9], [0.6]])


def _separate(df, n):
    out = df.copy()
    val = out["split"] == "validation"
    rank = out[val].groupby("label").cumcount()
    out.loc[val, "is_query"] = rank < n
    out.loc[val, "is_gallery"] = rank >= n
    return out


# Exercise 2 with the book's split: gallery position 0 and query 99 as dataset rows
# (rows 197 and 206 of df).
ROWS = (98, 103)


def test_separate_queries(digits_df, digits_root):
    result = ex.check_separate_queries(_separate(digits_df, 20), digits_root, *ROWS, n_queries=20)
    _says(result, ex.RIGHT, "keeps 154-162 gallery images")
    result = ex.check_separate_queries(digits_df, digits_root, *ROWS, n_queries=20)
    _says(result, ex.WRONG, "both query and gallery")
    result = ex.check_separate_queries(_separate(digits_df, 10), digits_root, *ROWS, n_queries=20)
    _says(result, ex.WRONG, "exactly 20")
    last = digits_df.copy()
    val = last["split"] == "validation"
    rank = last[val].groupby("label").cumcount(ascending=False)
    last.loc[val, "is_query"], last.loc[val, "is_gallery"] = rank < 20, rank >= 20
    result = ex.check_separate_queries(last, digits_root, *ROWS, n_queries=20)
    _says(result, ex.WRONG, "first 20 rows")
    right = _separate(digits_df, 20)
    no_train = right[right["split"] == "validation"]
    _says(ex.check_separate_queries(no_train, digits_root, *ROWS), ex.WRONG, "keep all 1797")
    no_nine = right[right["label"] != 9]
    _says(ex.check_separate_queries(no_nine, digits_root, *ROWS), ex.WRONG, "keep all 1797")
    moved = right.copy()
    four = moved["label"] == 4  # the 4s moved to the gallery
    moved.loc[four, "split"] = "validation"
    moved.loc[four, "is_query"], moved.loc[four, "is_gallery"] = False, True
    _says(ex.check_separate_queries(moved, digits_root, *ROWS), ex.WRONG, "training rows changed")
    idle = right.copy()
    idle.loc[idle.index[-1], "is_gallery"] = False
    _says(
        ex.check_separate_queries(idle, digits_root, *ROWS), ex.WRONG, "neither query nor gallery"
    )


def test_separate_queries_rows(digits_df, digits_root):
    right = _separate(digits_df, 20)
    _says(
        ex.check_separate_queries(right, digits_root, 98, 103),
        ex.RIGHT,
        "position 0 is dataset row 98",
        "query 99 is dataset row 103",
    )
    _says(ex.check_separate_queries(right, digits_root, np.int64(98), 103), ex.RIGHT)
    _says(ex.check_separate_queries(right, digits_root, *ROWS, fewest_gallery=154), ex.RIGHT)
    _says(
        ex.check_separate_queries(right, digits_root, *ROWS, fewest_gallery=20),
        ex.WRONG,
        "smallest count",
    )
    _says(
        ex.check_separate_queries(right, digits_root, 0, 103),
        ex.WRONG,
        "0 is the gallery position number itself",
        "get_gallery_ids()[0]",
    )
    _says(
        ex.check_separate_queries(right, digits_root, 98, 99),
        ex.WRONG,
        "99 is the query number itself",
        "get_query_ids()[99]",
    )
    _says(
        ex.check_separate_queries(right, digits_root, 197, 103),
        ex.WRONG,
        "197 is that image's row in `df`",
    )
    _says(
        ex.check_separate_queries(right, digits_root, 98, 206),
        ex.WRONG,
        "206 is that image's row in `df`",
    )
    _says(
        ex.check_separate_queries(right, digits_root, 98, 5),
        ex.WRONG,
        "5 is not the dataset row of query 99",
    )
    _says(ex.check_separate_queries(right, digits_root, 98.0, 103), ex.WRONG, "whole number")
    _says(ex.check_separate_queries(right, digits_root, True, 103), ex.WRONG, "whole number")
    # another query: query 20 is dataset row 20 (the first 100 rows are all queries), row 37 of df
    _says(ex.check_separate_queries(right, digits_root, 98, 20, query=20), ex.RIGHT)
    _says(
        ex.check_separate_queries(right, digits_root, 98, 37, query=20),
        ex.WRONG,
        "37 is that image's row in `df`",
    )
    # the dataframe is judged before the rows
    _says(ex.check_separate_queries(digits_df, digits_root, 98, 103), ex.WRONG, "both query")
    _says(
        ex.check_separate_queries(right, digits_root, ..., 103),
        ex.WRONG,
        "`gallery_row` is still `...`",
    )
    with pytest.raises(ValueError, match="between 0 and 99"):
        ex.check_separate_queries(right, digits_root, 98, 103, query=100)


def _toy():
    """Chapter 00's six images with their roles in the retrieval example: rows 0 and 1 query."""
    is_query = [True, True, False, False, False, False]
    return pd.DataFrame(
        {"label": [5, 6, 5, 5, 6, 6], "is_query": is_query, "is_gallery": [not q for q in is_query]}
    )


def _oml_lost_match(sequence):
    """What OML itself does with this sequence column: results and gt rows per query, warnings."""
    toy = _toy().assign(sequence=sequence, path=[f"{i}.png" for i in range(6)])
    dataset = ImageQueryGalleryLabeledDataset(toy, dataset_root=".")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rr = RetrievalResults.from_embeddings(QUIZ_EMBEDDINGS, dataset, n_items=3)
    rows = dataset.get_gallery_ids()
    return (
        [rows[ids].tolist() for ids in rr.retrieved_ids],
        [rows[ids].tolist() for ids in rr.gt_ids],
        rr,
        [str(w.message) for w in caught],
    )


W = ex.NO_GTS_WARNING  # what OML warns


def test_lost_match_agrees_with_oml():
    """The checker's hand-made reference says what OML does, for the right and wrong answers."""
    results, gt, rr, warned = _oml_lost_match(list("ABCDBB"))
    assert results[1] == [3, 2] and gt[1] == [] and gt[0] == [2, 3]
    assert W in warned  # the checker's copy of OML's warning is OML's text
    # what the checker says of such a query: 0 in CMC and mAP, NaN precision, NaN mean
    for reduce in (False, True):
        metrics = calc_retrieval_metrics_rr(
            rr, cmc_top_k=(1,), map_top_k=(3,), precision_top_k=(3,), reduce=reduce, verbose=False
        )
        cmc, map_, precision = metrics["cmc"][1], metrics["map"][3], metrics["precision"][3]
        if reduce:
            assert float(cmc) == float(map_) == 0.5 and precision.isnan()
        else:
            assert float(cmc[1]) == float(map_[1]) == 0 and precision[1].isnan()
    results, gt, _, _ = _oml_lost_match(["A", None, "A", None, None, None])
    assert results[1] == [2] and gt[1] == []  # the empty cells skip one another
    _, gt, _, warned = _oml_lost_match(list("ABCDEF"))
    assert gt[1] == [4, 5] and not warned


def test_lost_match():
    toy = _toy()
    _says(
        ex.check_lost_match(list("ABCDBB"), 2, W, toy, QUIZ_EMBEDDINGS),
        ex.RIGHT,
        "no correct item",
        "only 2 results",
        "no ground truth (gts)",
        "NaN",
    )
    _says(ex.check_lost_match(pd.Series(list("XYZWYY")), 2, W, toy, QUIZ_EMBEDDINGS), ex.RIGHT)
    _says(
        ex.check_lost_match(list("ABCDBB"), 3, W, toy, QUIZ_EMBEDDINGS),
        ex.WRONG,
        "drops the skipped ones",
    )
    _says(
        ex.check_lost_match(list("ABCDBB"), 1, W, toy, QUIZ_EMBEDDINGS),
        ex.WRONG,
        "len(rr.retrieved_ids[1])",
    )
    _says(
        ex.check_lost_match(list("ABCDBB"), 2.0, W, toy, QUIZ_EMBEDDINGS), ex.WRONG, "whole number"
    )
    _says(
        ex.check_lost_match(list("ABCDEF"), 3, W, toy, QUIZ_EMBEDDINGS),
        ex.WRONG,
        "still has correct items, rows [4, 5]",
    )
    _says(ex.check_lost_match(list("ABCDBA"), 2, W, toy, QUIZ_EMBEDDINGS), ex.WRONG, "rows [5]")
    _says(
        ex.check_lost_match(["A", None, "A", None, None, None], 1, W, toy, QUIZ_EMBEDDINGS),
        ex.WRONG,
        "rows [1, 3, 4, 5] have no id",
        "pd.factorize",
    )
    _says(
        ex.check_lost_match(list("ABADBB"), 2, W, toy, QUIZ_EMBEDDINGS),
        ex.WRONG,
        "dataset row 0, another query, lost",
        "[2]",
    )
    _says(ex.check_lost_match("ABCDBB", 2, W, toy, QUIZ_EMBEDDINGS), ex.WRONG, "one sequence id")
    _says(ex.check_lost_match(list("ABC"), 2, W, toy, QUIZ_EMBEDDINGS), ex.WRONG, "(6)")


def test_lost_match_no_results():
    """A query left with no results at all: OML gives it 1.0, and the task asks for one that
    still retrieves, so the verdict is "Not yet" and says why."""
    results, gt, rr, warned = _oml_lost_match(list("ABBBBB"))
    assert results[1] == [] and gt[1] == [] and gt[0] == [2, 3] and W in warned
    metrics = calc_retrieval_metrics_rr(
        rr, cmc_top_k=(1,), map_top_k=(3,), precision_top_k=(3,), reduce=False, verbose=False
    )
    assert [float(metrics[m][k][1]) for m, k in (("cmc", 1), ("map", 3), ("precision", 3))] == [
        1.0,
        1.0,
        1.0,
    ]
    verdict = ex.check_lost_match(list("ABBBBB"), 0, W, _toy(), QUIZ_EMBEDDINGS)
    _says(verdict, ex.WRONG, "no results at all", "1.0", "free perfect score", "other ids")
    assert "NaN" not in verdict.message and "only 0" not in verdict.message
    # whatever n_results and warning it gets
    _says(
        ex.check_lost_match(list("ABBBBB"), 2, W, _toy(), QUIZ_EMBEDDINGS), ex.WRONG, "no results"
    )


def test_lost_match_warning():
    toy = _toy()
    _says(ex.check_lost_match(list("ABCDBB"), 2, [W], toy, QUIZ_EMBEDDINGS), ex.RIGHT)
    for wrong in ("", "no gts", [], None, 3):
        _says(
            ex.check_lost_match(list("ABCDBB"), 2, wrong, toy, QUIZ_EMBEDDINGS),
            ex.WRONG,
            "is not OML's warning",
            "catch_warnings",
        )


def test_lost_match_bad_input():
    with pytest.raises(ValueError, match="one embedding per row"):
        ex.check_lost_match(list("ABCDBB"), 2, W, _toy(), QUIZ_EMBEDDINGS[:4])
    with pytest.raises(ValueError, match="query must be in 0..1"):
        ex.check_lost_match(list("ABCDBB"), 2, W, _toy(), QUIZ_EMBEDDINGS, query=2)


def _first_batch():
    """A stand-in for chapter 01's first batch: 5 labels x 8 images, unit vectors."""
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(40, 8, generator=generator))
    return embeddings, torch.arange(5).repeat_interleave(8)


def _gaps_by_hand(embeddings, labels, squared=False):
    """d(a, n) - d(a, p) of every triplet, with loops over the batch (no OML)."""
    d = torch.cdist(embeddings, embeddings) ** (2 if squared else 1)
    gaps = [
        d[a, n] - d[a, p]
        for a in range(len(labels))
        for p in range(len(labels))
        for n in range(len(labels))
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]
    ]
    return torch.stack(gaps)


def _share_by_hand(embeddings, labels, squared=False, flip=False):
    """The share of active triplets, counted with loops over the batch (no OML)."""
    gaps = _gaps_by_hand(embeddings, labels, squared)

    def share(margin):
        return float(((gaps > margin) if flip else (gaps < margin)).float().mean())

    return share, float(gaps.median())


def test_percent_never_rounds_a_share_to_0_or_100():
    from oml_helpers.exercises.training import _percent

    assert _percent(0.999) == "99.9%"  # not "100%", which would read as every one
    assert _percent(0.9996) == "99.96%"
    assert _percent(0.0004) == "0.04%"
    assert _percent(0.53) == "53%"
    assert _percent(1.0) == "100%" and _percent(0.0) == "0%"


def test_half_margin():
    embeddings, labels = _first_batch()
    share, median = _share_by_hand(embeddings, labels)
    result = ex.check_half_margin(share, median, embeddings, labels)
    _says(result, ex.RIGHT, "8,960 triplets", "Active share by margin")
    _says(ex.check_half_margin(share, np.float32(median), embeddings, labels), ex.RIGHT)
    flipped, _ = _share_by_hand(embeddings, labels, flip=True)
    _says(ex.check_half_margin(flipped, median, embeddings, labels), ex.WRONG, "below the")
    squared, _ = _share_by_hand(embeddings, labels, squared=True)
    _says(ex.check_half_margin(squared, median, embeddings, labels), ex.WRONG, "OML counts")
    # a wrong half_margin: the message says which way to move it and how far the share is off
    above = f"{(share(0.2) - 0.5) * 100:.1f} percentage points above one half"
    too_wide = ex.check_half_margin(share, 0.2, embeddings, labels)
    _says(too_wide, ex.WRONG, "smaller margin", above, "crosses 50%")
    below = f"{(0.5 - share(-0.5)) * 100:.1f} percentage points below one half"
    too_narrow = ex.check_half_margin(share, -0.5, embeddings, labels)
    _says(too_narrow, ex.WRONG, "larger margin", below)
    # the tolerance the task states, 48% to 52% active, on either side of the edge
    gaps = _gaps_by_hand(embeddings, labels).sort().values
    just_in = float(gaps[int(0.515 * len(gaps))])
    just_out = float(gaps[int(0.53 * len(gaps))])
    _says(ex.check_half_margin(share, just_in, embeddings, labels), ex.RIGHT)
    _says(
        ex.check_half_margin(share, just_out, embeddings, labels),
        ex.WRONG,
        "accepts 48% to 52%",
        "smaller margin",
    )
    _says(ex.check_half_margin(share, "0.1", embeddings, labels), ex.WRONG, "as a number")
    _says(ex.check_half_margin(share, True, embeddings, labels), ex.WRONG, "not bool")
    as_tensor = ex.check_half_margin(lambda m: torch.tensor(share(m)), median, embeddings, labels)
    _says(as_tensor, ex.RIGHT)
    _says(ex.check_half_margin(lambda m: [0.5], median, embeddings, labels), ex.WRONG, "one number")


def test_half_margin_bad_input_and_numpy_generator():
    embeddings, labels = _first_batch()
    share, median = _share_by_hand(embeddings, labels)
    with pytest.raises(ValueError, match="2-d tensor"):
        ex.check_half_margin(share, median, embeddings[0], labels)
    with pytest.raises(ValueError, match="one label per embedding"):
        ex.check_half_margin(share, median, embeddings, labels[:10])
    with pytest.raises(ValueError, match="at least two"):
        ex.check_half_margin(share, median, embeddings, torch.zeros(40))
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    ex.check_half_margin(share, median, embeddings, labels)
    assert np.random.rand() == expected


def run_logs(collapsed: bool, steps: int = 180) -> pd.DataFrame:
    """Logs shaped like chapter 01's runs: healthy (all triplets) or collapsed (hard mining)."""
    t = np.linspace(0, 1, steps)
    if collapsed:
        pos, neg, active = 0.23 - 0.22 * t**0.2, 0.10 - 0.09 * t**0.2, np.ones(steps)
        loss = np.maximum(0.2 + pos - neg, 0.2)
    else:
        pos, neg, active = 0.17 + 0.35 * t**0.3, 0.18 + 1.1 * t**0.3, 1 - 0.95 * t**0.3
        loss = 0.19 * (1 - t) ** 3 + 0.005
    return pd.DataFrame({"loss": loss, "active_tri": active, "pos_dist": pos, "neg_dist": neg})


def _by_distance(run):
    last = run.iloc[-10:].mean()
    return bool(last["pos_dist"] < 0.1 and last["neg_dist"] < 0.1)


def test_collapse_diagnosis():
    healthy, collapsed = run_logs(False), run_logs(True)
    _says(ex.check_collapse_diagnosis(_by_distance, healthy, collapsed), ex.RIGHT, "at the margin")
    slips = [  # (a wrong rule, what its verdict says)
        (lambda run: bool(run["loss"].iloc[-10:].mean() > 0.1), "about 0.44"),
        (lambda run: bool(run["pos_dist"].iloc[-1] >= run["neg_dist"].iloc[-1]), "not the loss"),
        (lambda run: bool(abs(run["loss"].iloc[-10:].mean() - 0.2) < 0.005), "one particular"),
        (lambda run: bool(run["neg_dist"].iloc[0] < 0.3), "last steps"),
        (lambda run: False, "close to 0"),
        (lambda run: "collapsed", "True or False"),
    ]
    for rule, fragment in slips:
        _says(ex.check_collapse_diagnosis(rule, healthy, collapsed), ex.WRONG, fragment)


def test_collapse_diagnosis_bad_input():
    healthy, collapsed = run_logs(False), run_logs(True)
    with pytest.raises(ValueError, match="pass the all-triplets logs first"):
        ex.check_collapse_diagnosis(_by_distance, collapsed, healthy)
    with pytest.raises(ValueError, match="columns"):
        ex.check_collapse_diagnosis(_by_distance, healthy.drop(columns="pos_dist"), collapsed)
    with pytest.raises(ValueError, match="whole run"):
        ex.check_collapse_diagnosis(_by_distance, healthy, collapsed.iloc[:5])
    with pytest.raises(ValueError, match="DataFrame"):
        ex.check_collapse_diagnosis(_by_distance, [0.1, 0.2], collapsed)


def _ap(is_correct, n_gt, k):
    hits, total = 0, 0.0
    for rank, correct in enumerate(is_correct[:k], start=1):
        if correct:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


# exercise 02.1, part 2: one early hit against four hits after a miss
INVERTED = ([True, False, False, False, False], [False, True, True, True, True])


def test_average_precision():
    result = ex.check_average_precision(_oml_ap, *INVERTED)
    _says(
        result,
        ex.RIGHT,
        "edge cases",
        "invert",
        "mAP@5 (OML's map/5) gives first 1.000, second 0.679",
        "0.200 and 0.543",
    )
    assert "AP@5 gives" not in result.message
    # either order of the two is an inversion
    _says(ex.check_average_precision(_oml_ap, *INVERTED[::-1]), ex.RIGHT, "first 0.679")
    result = ex.check_average_precision(
        lambda c, n, k: _ap(c, n, k) * sum(c[:k]) / min(n, k) if n else 0, *INVERTED
    )
    _says(result, ex.WRONG, "OML gives")
    result = ex.check_average_precision(lambda c, n, k: sum(c[:k]) / k, *INVERTED)
    _says(result, ex.WRONG)


def _oml_ap(is_correct, n_gt, k):
    if not is_correct:  # OML's convention for an empty ranking
        return 1.0 if n_gt == 0 else 0.0
    return _ap(is_correct, n_gt, k)


# walks k ranks, so it fails when k is longer than the ranking
def _indexing_ap(is_correct, n_gt, k):
    if not is_correct or k <= len(is_correct):
        return _oml_ap(is_correct, n_gt, k)
    return _ap([is_correct[i] for i in range(k)], n_gt, k)


def test_average_precision_edge_cases():
    # the cases the checker adds are the edge cases this test names
    for case in validation_ap.AP_EDGE_CASES:
        oml = calc_map([torch.tensor(case[0], dtype=torch.bool)], [case[1]], (case[2],))[0][0]
        assert float(oml) == pytest.approx(_oml_ap(*case))
    # no special case for an empty ranking with nothing to find
    result = ex.check_average_precision(_ap, *INVERTED)
    _says(
        result,
        ex.WRONG,
        "none retrieved",
        "n_gt=0",
        "empty ranking",
        "you return 0.0000, OML gives 1.0000",
    )
    result = ex.check_average_precision(_indexing_ap, *INVERTED)
    _says(result, ex.WRONG, "k=10", "longer than the ranking", "raised IndexError")
    # n_gt=0 is not a free 1.0
    result = ex.check_average_precision(lambda c, n, k: _oml_ap(c, n, k) if n else 1.0, *INVERTED)
    _says(result, ex.WRONG, "n_gt=0", "no correct item exists", "OML gives 0.0000")
    # divides by zero
    result = ex.check_average_precision(lambda c, n, k: _ap(c, n, k) if c else 1 / n, *INVERTED)
    _says(result, ex.WRONG, "raised ZeroDivisionError")


def test_average_precision_inversion_typical_mistakes():
    t, f = True, False
    # part 1 is wrong: part 2 is not looked at yet
    _says(ex.check_average_precision(lambda c, n, k: 0.5, *INVERTED), ex.WRONG, "OML gives")
    right = "part 1 is right (your function matches OML's mAP@k on 38 rankings)"
    # the same number of hits: S / h and S / 5 always agree
    _says(
        ex.check_average_precision(_oml_ap, [t, f, t, f, f], [f, t, f, t, f]),
        ex.WRONG,
        right,
        "Both hold 2 hits",
        "always agree",
        "different numbers of hits",
    )
    _says(
        ex.check_average_precision(_oml_ap, [t, f, f, f, f], [f, f, f, f, t]),
        ex.WRONG,
        "Both hold 1 hit:",
    )
    _says(ex.check_average_precision(_oml_ap, INVERTED[0], INVERTED[0]), ex.WRONG, "Both hold")
    # all hits first: OML ties at 1.0
    _says(
        ex.check_average_precision(_oml_ap, [t, f, f, f, f], [t, t, f, f, f]),
        ex.WRONG,
        "first 1.000, second 1.000",
        "a tie is not an opposite order",
    )
    # more hits, and earlier: both prefer the second
    _says(
        ex.check_average_precision(_oml_ap, [f, t, f, f, f], [t, t, f, f, f]),
        ex.WRONG,
        "the same order",
        "some of them late",
    )
    _says(ex.check_average_precision(_oml_ap, [f] * 5, INVERTED[1]), ex.WRONG, "the same order")


def test_average_precision_inversion_bad_input():
    for bad in ("TFFFF", [True, False], [True] * 6, [0, 2, 0, 0, 0], 5, None):
        _says(
            ex.check_average_precision(_oml_ap, bad, INVERTED[1]),
            ex.WRONG,
            "`first` must be a list of 5 True/False values",
        )
    # 0/1 and tensors are rankings too
    ones = torch.tensor([0, 1, 1, 1, 1])
    _says(ex.check_average_precision(_oml_ap, [1, 0, 0, 0, 0], ones), ex.RIGHT)
    _says(
        ex.check_average_precision(_oml_ap, INVERTED[0], ...), ex.WRONG, "`second` is still `...`"
    )
    # the recsys AP divides by min(k, n)
    assert validation_ap.recsys_ap([True, False, True], 2, 3) == pytest.approx((1 + 2 / 3) / 2)
    # divided by min(k, n) = 5, not by the 2 results retrieved
    assert validation_ap.recsys_ap([False, True], 10, 5) == pytest.approx(0.5 / 5)


def _confusion_setup(first=((0, 1), (0, 3), (1, 0), (0, 2), (0, 1))):
    """Five queries only (rows 0-4) and four gallery items only (rows 5-8): positions are not rows.

    ``first`` holds each query's results as gallery positions: 0 is a 6, 1 a 5, 2 a 7, 3 a 5. The
    queries are 5, 5, 6, 7, 7; by default their first results show 6, 6, 5, 6, 6.
    """
    df = pd.DataFrame(
        {
            "label": [5, 5, 6, 7, 7, 6, 5, 7, 5],
            "path": [f"{i}.png" for i in range(9)],
            "is_query": [True] * 5 + [False] * 4,
            "is_gallery": [False] * 5 + [True] * 4,
        }
    )
    rr = RetrievalResults(
        distances=[torch.tensor([0.1, 0.2])] * len(first),
        retrieved_ids=[torch.tensor(r) for r in first],
    )
    return rr, ImageQueryGalleryLabeledDataset(df)


def _table(counts):
    return pd.DataFrame(counts, index=[5, 6, 7], columns=[5, 6, 7])


RIGHT_TABLE = [[0, 2, 0], [1, 0, 0], [0, 2, 0]]  # rows: query 5, 6, 7; columns: first result


def test_confusion_table():
    rr, dataset = _confusion_setup()
    _says(
        ex.check_confusion_table(_table(RIGHT_TABLE), rr, dataset),
        ex.RIGHT,
        "0 of the 5 queries are right",
        "a 5 retrieving a 6 (2 times, and 1 the other way)",
    )
    _says(ex.check_confusion_table(torch.tensor(RIGHT_TABLE), rr, dataset), ex.RIGHT)
    # one query right at rank 1: the first 5 retrieves position 1, a 5
    rr_one, _ = _confusion_setup(first=((1, 0), (0, 3), (1, 0), (0, 2), (0, 1)))
    right_one = [[1, 1, 0], [1, 0, 0], [0, 2, 0]]
    _says(ex.check_confusion_table(_table(right_one), rr_one, dataset), ex.RIGHT, "1 of the 5")
    no_diagonal = [[0, 1, 0], [1, 0, 0], [0, 2, 0]]
    _says(ex.check_confusion_table(_table(no_diagonal), rr_one, dataset), ex.WRONG, "diagonal")


def test_confusion_table_typical_mistakes():
    rr, dataset = _confusion_setup()
    transposed = [list(r) for r in zip(*RIGHT_TABLE)]
    _says(ex.check_confusion_table(_table(transposed), rr, dataset), ex.WRONG, "swapped")
    shares = _table(RIGHT_TABLE).div(_table(RIGHT_TABLE).sum(axis=1), axis=0)
    _says(ex.check_confusion_table(shares, rr, dataset), ex.WRONG, "shares")
    positions_as_rows = [[0, 0, 2], [1, 0, 0], [0, 0, 2]]  # gallery positions read as dataset rows
    _says(
        ex.check_confusion_table(_table(positions_as_rows), rr, dataset),
        ex.WRONG,
        "gallery position",
        "get_gallery_ids()",
    )
    top2 = [[0, 3, 1], [2, 0, 0], [0, 3, 1]]  # both results counted, not the first only
    _says(
        ex.check_confusion_table(_table(top2), rr, dataset), ex.WRONG, "add up to 10", "5 queries"
    )


def test_confusion_table_bad_input():
    rr, dataset = _confusion_setup()
    _says(ex.check_confusion_table([[0, 2], [1, 0]], rr, dataset), ex.WRONG, "3x3", "(2, 2)")
    _says(ex.check_confusion_table("5 and 6", rr, dataset), ex.WRONG, "table of numbers")
    relabelled = pd.DataFrame(RIGHT_TABLE, index=[0, 1, 2], columns=[5, 6, 7])
    _says(
        ex.check_confusion_table(relabelled, rr, dataset), ex.WRONG, "label the rows", "[5, 6, 7]"
    )
    short = RetrievalResults(distances=rr.distances[:2], retrieved_ids=rr.retrieved_ids[:2])
    with pytest.raises(ValueError, match="pass the dataset rr was computed on"):
        ex.check_confusion_table(_table(RIGHT_TABLE), short, dataset)


def test_a_verdict_is_shown_wrapped_to_the_page_and_keeps_its_lines():
    from oml_helpers.exercises.verdict import WIDTH, Verdict, wrap_lines

    message = "Not yet: " + " ".join(["word"] * 60) + "\nshort line\n" + "x" * 100
    shown = repr(Verdict(False, message))
    lines = shown.split("\n")
    # no break inside a word
    assert all(len(line) <= WIDTH for line in lines[:-1]) and lines[-1] == "x" * 100
    assert "short line" in lines and " ".join(shown.split()) == " ".join(message.split())
    assert wrap_lines(shown) == shown  # wrapping twice changes nothing


def test_every_verdict_in_the_notebooks_fits_the_page():
    import nbformat

    from oml_helpers.exercises.verdict import RIGHT, WIDTH, WRONG

    too_wide = []
    for path in sorted(Path(__file__).resolve().parent.parent.glob("notebooks/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                text = (
                    output.get("data", {}).get("text/plain", "")
                    if "data" in output
                    else output.get("text", "")
                )
                if text.startswith((RIGHT + ":", WRONG + ":")):
                    too_wide += [
                        f"{path.name} {cell.get('id')}"
                        for line in text.split("\n")
                        if len(line) > WIDTH
                    ]
    assert too_wide == []


def test_cmc1_from_diagonal():
    # queries 5, 5, 6, 7, 7; their first results show 5, 5, 5, 6, 6: both 5s right
    rr, dataset = _confusion_setup(first=((1, 0), (1, 3), (1, 0), (0, 2), (0, 1)))
    right = pd.Series({5: 1.0, 6: 0.0, 7: 0.0})
    _says(ex.check_cmc1_from_diagonal(right, rr, dataset), ex.RIGHT, "5: 1.000", "hardest digit")
    _says(ex.check_cmc1_from_diagonal([1.0, 0.0, 0.0], rr, dataset), ex.RIGHT)
    _says(ex.check_cmc1_from_diagonal({7: 0, 6: 0, 5: 1.0}, rr, dataset), ex.RIGHT)
    _says(ex.check_cmc1_from_diagonal([2, 0, 0], rr, dataset), ex.WRONG, "counts")
    _says(ex.check_cmc1_from_diagonal([2 / 3, 0, 0], rr, dataset), ex.WRONG, "column totals")
    _says(ex.check_cmc1_from_diagonal([0.4, 0, 0], rr, dataset), ex.WRONG, "all queries")
    _says(ex.check_cmc1_from_diagonal([0.9, 0, 0], rr, dataset), ex.WRONG, "row totals")
    _says(ex.check_cmc1_from_diagonal([0.5, 0], rr, dataset), ex.WRONG, "3 numbers")
    _says(ex.check_cmc1_from_diagonal({0: 1, 1: 0, 2: 0}, rr, dataset), ex.WRONG, "index")
    _says(ex.check_cmc1_from_diagonal("high", rr, dataset), ex.WRONG, "one number per digit")


def test_mixups():
    rr, dataset = _confusion_setup(first=((1, 0), (1, 3), (1, 0), (0, 2), (0, 1)))
    table = _table([[2, 0, 0], [1, 0, 0], [0, 2, 0]])
    _says(
        ex.check_mixups(table, [1.0, 0, 0], rr, dataset), ex.RIGHT, "2 of the 5", "And the diagonal"
    )
    _says(ex.check_mixups(table, [2, 0, 0], rr, dataset), ex.WRONG, "table is right", "counts")
    _says(ex.check_mixups(table.T, [1.0, 0, 0], rr, dataset), ex.WRONG, "swapped")
    _says(ex.check_mixups(table, ..., rr, dataset), ex.WRONG, "`cmc1_by_digit` is still")
