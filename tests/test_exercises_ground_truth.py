"""Chapter 00's exercise 1: the checker of a student's ``my_gt_ids`` accepts a right
function and turns down the usual mistakes with a reason."""

import numpy as np
import pandas as pd

from oml_helpers import exercises as ex
from oml_helpers.exercises.ground_truth import gt_cases, oml_gt_ids
from verdicts import says as _says


def _toy():
    """The chapter's six images: rows 0 and 1 are the queries."""
    is_query = [True, True, False, False, False, False]
    return pd.DataFrame(
        {
            "label": [5, 6, 5, 5, 6, 6],
            "path": [f"{i}.png" for i in range(6)],
            "split": "validation",
            "is_query": is_query,
            "is_gallery": [not q for q in is_query],
        }
    )


def _val(per_label=12):
    """A small stand-in for the validation digits: every image query and gallery."""
    labels = np.repeat(np.arange(5, 10), per_label)
    return pd.DataFrame(
        {
            "label": labels,
            "path": [f"v{i}.png" for i in range(len(labels))],
            "split": "validation",
            "is_query": True,
            "is_gallery": True,
        }
    )


def right(frame, skip_self=True):
    gallery = frame[frame["is_gallery"].astype(bool)]
    out = []
    for row, query in frame[frame["is_query"].astype(bool)].iterrows():
        ok = gallery["label"] == query["label"]
        if skip_self:
            ok &= gallery.index != row
        if "sequence" in frame:
            ok &= gallery["sequence"] != query["sequence"]
        out.append(np.flatnonzero(ok.to_numpy()).tolist())
    return out


def check(fn):
    return ex.check_gt_ids(fn, _toy(), _val(), ".")


def test_the_cases_differ_where_the_lessons_are():
    cases = gt_cases(_toy(), _val())
    assert len(cases) == 6
    plain = oml_gt_ids(cases["the six images"], ".")
    assert plain == [[0, 1], [2, 3]]  # gallery positions, not rows 2-5
    assert oml_gt_ids(cases["the six images with their sequences"], ".")[0] == [1]
    assert oml_gt_ids(cases["the six images, query 1 relabelled as the only 7"], ".")[1] == []
    loo = oml_gt_ids(cases["the 896 validation digits, every image both query and gallery"], ".")
    assert all(len(ids) == 11 for ids in loo)  # every other image of the label


def test_right_answers_pass():
    _says(check(right), ex.RIGHT, "all 6 dataframes", "11-11 correct items", "each has 7-7:")
    _says(check(lambda f: [np.array(ids) for ids in right(f)]), ex.RIGHT)


def test_dataset_rows_instead_of_positions():
    def rows(frame):
        gallery = frame.index[frame["is_gallery"].astype(bool)].to_numpy()
        return [gallery[ids].tolist() for ids in right(frame)]

    _says(check(rows), ex.WRONG, "the six images:", "dataset rows", "gallery positions")


def test_the_query_itself_counted():
    def with_self(frame):
        return right(frame, skip_self=False)

    _says(check(with_self), ex.WRONG, "every image both query and gallery", "its own row")


def test_sequences_ignored():
    def no_sequence(frame):
        return right(frame.drop(columns="sequence", errors="ignore"))

    _says(check(no_sequence), ex.WRONG, "with their sequences", "shares its sequence")


def test_other_mistakes():
    def per_row(frame):
        return right(frame.assign(is_query=True))

    _says(check(per_row), ex.WRONG, "lists; give one per query (2)")
    _says(check(lambda f: [ids[::-1] for ids in right(f)]), ex.WRONG, "increasing order")
    _says(check(lambda f: [ids[:1] for ids in right(f)]), ex.WRONG, "missing")

    def raises(frame):
        raise KeyError("sequence")

    _says(check(raises), ex.WRONG, "raised KeyError('sequence')")
