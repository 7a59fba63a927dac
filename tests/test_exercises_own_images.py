"""Chapter 08's checkers: kNN with "unknown" by hand (08.1), the misses of a threshold by colour
mode (08.2) and the other tiles' cost (08.3)."""

import numpy as np
import pytest
import torch
from PIL import Image

import oml_helpers as h
from oml_helpers import exercises as ex
from test_exercises_retrieval import _rr
from verdicts import says

GALLERY_LABELS = np.arange(40) % 7
QUERY_LABELS = np.arange(12) % 7


UNKNOWN = ex.own_images_knn.UNKNOWN
THRESHOLD = 0.5  # _rr's distances run from 0.1 to 1.2: some nearest items lie beyond


def _knn(tie_to_nearest=True, k_off=0, refuse="nearest", strict=False):
    """kNN with "unknown", written from the task, with one typical mistake switched on:
    ties by label, one neighbour too many, no refusals (refuse=None), a refusal when the
    k-th item is far (refuse="kth"), or a distance equal to the threshold answered (strict)."""

    def my_knn(rr, gallery_labels, k, threshold=float("inf")):
        out = []
        for ids, d in zip(rr.retrieved_ids, rr.distances):
            votes = list(np.asarray(gallery_labels)[ids[: k + k_off].numpy()])
            counts = {v: votes.count(v) for v in votes}
            best = max(counts.values())
            tied = [v for v in votes if counts[v] == best]
            far = {"nearest": d[0], "kth": d[: k + k_off][-1], None: -np.inf}[refuse]
            refused = far > threshold if strict else far >= threshold
            out.append(UNKNOWN if refused else tied[0] if tie_to_nearest else max(tied))
        return np.array(out)

    return my_knn


def _right_rates(rr=None, threshold=THRESHOLD):
    rr = rr or _rr()
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, threshold)
    return ex.own_images_knn.coverage_accuracy(predicted, QUERY_LABELS)


def _check(fn, coverage=None, accuracy=None, threshold=THRESHOLD):
    if coverage is None:
        coverage, accuracy = _right_rates(threshold=threshold)
    return ex.check_knn(fn, _rr(), GALLERY_LABELS, QUERY_LABELS, threshold, coverage, accuracy)


def test_knn_rule_and_rates_by_hand():
    rr = _rr()
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, THRESHOLD)
    nearest = np.array([float(d[0]) for d in rr.distances])
    # the data has both kinds of query: some refused, some answered
    assert 0 < (nearest >= THRESHOLD).sum() < len(nearest)
    assert ((predicted == UNKNOWN) == (nearest >= THRESHOLD)).all()
    coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, QUERY_LABELS)
    answered = predicted != UNKNOWN
    assert coverage == answered.mean()
    assert accuracy == (predicted[answered] == QUERY_LABELS[answered]).mean()
    # nothing answered: coverage 0, accuracy undefined
    none = ex.own_images_knn.coverage_accuracy(np.full(3, UNKNOWN), np.arange(3))
    assert none[0] == 0 and np.isnan(none[1])


def test_knn_right_answer():
    says(
        _check(_knn()),
        ex.RIGHT,
        "With no threshold, k=1 answers every query",
    )
    coverage, accuracy = _right_rates()
    says(_check(_knn(), torch.tensor(coverage), np.float64(accuracy)), ex.RIGHT)


def test_knn_ties_broken_the_other_way():
    says(_check(_knn(tie_to_nearest=False)), ex.WRONG, "whose item is nearest")


def test_knn_tie_rules_are_caught_without_ties_in_the_data():
    # every gallery item has one label, so the data itself has no tie: only the
    # checker's built case can catch a rule that breaks ties by label
    one_label = np.zeros(40, dtype=int)

    def smallest_label(rr, gallery_labels, k, threshold=float("inf")):
        labels = np.asarray(gallery_labels)
        votes = [np.bincount(labels[ids[:k].numpy()]).argmax() for ids in rr.retrieved_ids]
        nearest = np.array([float(d[0]) for d in rr.distances])
        return np.where(nearest >= threshold, UNKNOWN, votes)

    for rule in (smallest_label, _knn(tie_to_nearest=False)):
        verdict = ex.check_knn(rule, _rr(), one_label, QUERY_LABELS, THRESHOLD, 0.5, 0.5)
        says(verdict, ex.WRONG, "whose item is nearest")


def test_knn_off_by_one_neighbour():
    says(_check(_knn(k_off=1)), ex.WRONG, "should get")


def test_knn_without_refusals():
    says(_check(_knn(refuse=None)), ex.WRONG, "should be UNKNOWN", "beyond the threshold")


def test_knn_refusing_on_the_kth_neighbour():
    says(
        _check(_knn(refuse="kth")), ex.WRONG, "not UNKNOWN", "Answer UNKNOWN only when the nearest"
    )


def test_knn_distance_equal_to_the_threshold():
    says(
        _check(_knn(strict=True)),
        ex.WRONG,
        "at the threshold",
        "a distance equal to the threshold is a non-match",
    )


def test_knn_threshold_ignored_when_it_is_not_passed_on():
    # a function whose threshold argument is missing cannot be called as the task says
    def no_threshold(rr, gallery_labels, k):
        return _knn(refuse=None)(rr, gallery_labels, k)

    with pytest.raises(TypeError):
        _check(no_threshold)


def test_knn_wrong_shape():
    def one_label(rr, gallery_labels, k, threshold=float("inf")):
        return np.array([0])

    says(_check(one_label), ex.WRONG, "one label (or UNKNOWN) per")


def test_knn_coverage_mistakes():
    coverage, accuracy = _right_rates()
    assert 0 < coverage < 1
    says(_check(_knn(), 1 - coverage, accuracy), ex.WRONG, "That is the share refused")
    says(_check(_knn(), 1.0, accuracy), ex.WRONG, "coverage is not 1.000")
    args = (_knn(), _rr(), GALLERY_LABELS, QUERY_LABELS, THRESHOLD)
    says(ex.check_knn(*args, None, accuracy), ex.WRONG, "give `coverage` as one number")
    says(_check(_knn(), "0.5", accuracy), ex.WRONG, "not str")


def test_knn_accuracy_mistakes():
    rr = _rr()
    # queries whose first answer is right every other time, refused or not, so that
    # the three wrong ways to score below give three different numbers
    first = h.knn_classify(rr, GALLERY_LABELS, 1)
    labels = np.where(np.arange(12) % 2 == 0, first, (first + 1) % 7)
    predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, THRESHOLD)
    coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, labels)
    all_accuracy = np.mean(first == labels)
    assert len({round(accuracy, 3), round(accuracy * coverage, 3), round(all_accuracy, 3)}) == 3

    def check(value):
        return ex.check_knn(_knn(), rr, GALLERY_LABELS, labels, THRESHOLD, coverage, value)

    says(check(accuracy), ex.RIGHT)
    # the lesson follows the numbers: here the refusals help, on the book's data not
    helped = accuracy > all_accuracy
    lesson = "bought accuracy" if helped else "bought no accuracy"
    says(check(accuracy), ex.RIGHT, lesson)
    says(check(accuracy * coverage), ex.WRONG, "counts every UNKNOWN as a wrong answer")
    says(check(all_accuracy), ex.WRONG, "accuracy with no threshold")
    says(check(2.0), ex.WRONG, "which share got the right one")
    says(check(...), ex.WRONG, "`accuracy` is still `...`")


def test_knn_lesson_follows_the_refusals():
    # the closing lesson must say what this run shows: a gain only when queries were
    # refused and the answered ones are more often right, and no lesson about
    # refusals when none was refused
    rr = _rr()
    first = h.knn_classify(rr, GALLERY_LABELS, 1)
    refused = np.array([float(d[0]) for d in rr.distances]) >= THRESHOLD
    n_refused = int(refused.sum())
    assert 0 < n_refused < len(refused)
    wrong = (first + 1) % 7

    def verdict(labels, threshold=THRESHOLD):
        predicted = ex.own_images_knn.knn_or_unknown(rr, GALLERY_LABELS, 1, threshold)
        coverage, accuracy = ex.own_images_knn.coverage_accuracy(predicted, labels)
        return ex.check_knn(_knn(), rr, GALLERY_LABELS, labels, threshold, coverage, accuracy)

    # the refused queries are the wrong ones: refusing buys accuracy
    helped = verdict(np.where(refused, wrong, first))
    says(helped, ex.RIGHT, f"refuses {n_refused} of the 12", "bought accuracy")
    # the refused queries are the right ones: refusing buys nothing
    hurt = verdict(np.where(refused, first, wrong))
    says(hurt, ex.RIGHT, f"refuses {n_refused} of the 12", "bought no accuracy")
    # nothing refused: the run shows nothing about refusals, whatever the accuracy
    for labels in (np.where(refused, wrong, first), np.where(refused, first, wrong)):
        none = verdict(labels, threshold=np.inf)
        says(none, ex.RIGHT, "refuses 0 of the 12", "Nothing was refused", "cannot show")
        assert "bought" not in none.message, none.message
    # a threshold below every nearest distance refuses all: nothing answered
    says(verdict(first, threshold=0.0), ex.RIGHT, "refuses 12 of the 12", "no accuracy")


# 08.2: three things, each with two colour and two greyscale files; one of each kind is a
# query, the others are the gallery, so every query has one same-mode and one mixed pair
@pytest.fixture(scope="module")
def modes_case(tmp_path_factory):
    import pandas as pd

    from oml.datasets import ImageQueryGalleryLabeledDataset
    from oml.retrieval import RetrievalResults

    root = tmp_path_factory.mktemp("modes")
    rows = []
    for label in range(3):
        for i, mode in enumerate(["RGB", "RGB", "L", "L"]):
            Image.new(mode, (8, 8)).save(root / f"{label}_{i}.png")
            rows.append((label, f"{label}_{i}.png", i in (0, 2), i in (1, 3)))
    df = pd.DataFrame(rows, columns=["label", "path", "is_query", "is_gallery"])
    df["split"] = "validation"
    ds = ImageQueryGalleryLabeledDataset(df, dataset_root=root, transform=h.photo_transforms(False))
    rng = np.random.default_rng(0)
    # a thing's greyscale files lie off to one side: mixed pairs are farther apart
    emb = torch.zeros(12, 4)
    emb[torch.arange(12), torch.tensor(df["label"].to_numpy())] = 1.0
    emb[:, 3] = torch.tensor([0.0, 0.0, 0.6, 0.6] * 3)
    emb += torch.tensor(rng.normal(0, 0.15, size=(12, 4)), dtype=torch.float32)
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=6)
    return rr, ds, root


def _by_hand(rr, ds, root, threshold):
    """The exercise's numbers, written from the task: per group, the misses among its pairs."""
    modes = np.array([Image.open(root / p).mode for p in ds.df["path"]])
    qm, gm = modes[ds.get_query_ids().numpy()], modes[ds.get_gallery_ids().numpy()]
    out = {"same mode": [], "mixed": []}
    for q, (d, ids, gt) in enumerate(zip(rr.distances, rr.retrieved_ids, rr.gt_ids)):
        for dist, g in zip(d[torch.isin(ids, gt)], ids[torch.isin(ids, gt)]):
            out["same mode" if gm[g] == qm[q] else "mixed"].append(float(dist) >= threshold)
    return {k: float(np.mean(v)) for k, v in out.items()}


def _threshold(rr):
    # between the two groups' distances, so that each group has misses and matches
    positive = [d[torch.isin(i, g)] for d, i, g in zip(rr.distances, rr.retrieved_ids, rr.gt_ids)]
    return float(np.quantile(torch.cat(positive).numpy(), 0.7))


def test_modes_reference_and_right_answer(modes_case):
    rr, ds, root = modes_case
    th = _threshold(rr)
    right = _by_hand(rr, ds, root, th)
    ref = ex.own_images_modes.fnmr_by_colour_mode(rr, ds, root, th)
    assert ref["n same mode"] == ref["n mixed"] == 6
    assert (ref["same mode"], ref["mixed"]) == (right["same mode"], right["mixed"])
    assert right["same mode"] < right["mixed"]  # the case tells the groups apart
    says(
        ex.check_fnmr_by_mode(right, rr, ds, root, th, guess=0.4, fix="b"),
        ex.RIGHT,
        "6 share a colour mode and 6 are mixed",
        f"the same-mode pairs miss {right['same mode']:.2f}, the mixed ones "
        f"{right['mixed']:.2f}",
        "You guessed 0.40",
    )
    as_tensors = {k: torch.tensor(v) for k, v in right.items()}
    says(ex.check_fnmr_by_mode(as_tensors, rr, ds, root, th, fix="(B)"), ex.RIGHT)


@pytest.mark.parametrize(
    "mistake, fragment",
    [
        ("swapped", "swapped"),
        ("all", "FNMR of all same-thing pairs"),
        ("fmr", "different-thing pairs below the threshold"),
        ("share", "divide by the number of same-thing pairs in the group"),
        ("off", "in each group take the share"),
    ],
)
def test_modes_typical_mistakes(modes_case, mistake, fragment):
    rr, ds, root = modes_case
    th = _threshold(rr)
    ref = ex.own_images_modes.fnmr_by_colour_mode(rr, ds, root, th)
    answer = {
        "swapped": (ref["mixed"], ref["same mode"]),
        "all": (ref["all"], ref["all"]),
        "fmr": (ref["fmr same mode"], ref["fmr mixed"]),
        "share": (ref["share same mode"], ref["share mixed"]),
        "off": (ref["same mode"], min(1.0, ref["mixed"] + 0.3)),
    }[mistake]
    given = dict(zip(("same mode", "mixed"), answer))
    says(ex.check_fnmr_by_mode(given, rr, ds, root, th, fix="b"), ex.WRONG, fragment)


def test_modes_the_fix(modes_case):
    rr, ds, root = modes_case
    th = _threshold(rr)
    right = _by_hand(rr, ds, root, th)
    says(ex.check_fnmr_by_mode(right, rr, ds, root, th, fix="a"), ex.WRONG, "as rare as before")
    says(ex.check_fnmr_by_mode(right, rr, ds, root, th, fix="c"), ex.WRONG, "one threshold")
    says(ex.check_fnmr_by_mode(right, rr, ds, root, th), ex.WRONG, 'set fix to "a"')
    says(ex.check_fnmr_by_mode(right, rr, ds, root, th, fix=...), ex.WRONG, "`fix` is still `...`")


def test_modes_bad_answers(modes_case):
    rr, ds, root = modes_case
    th = _threshold(rr)
    says(ex.check_fnmr_by_mode(0.3, rr, ds, root, th), ex.WRONG, 'two keys, "same mode"')
    says(ex.check_fnmr_by_mode({"same": 0.1, "mixed": 0.2}, rr, ds, root, th), ex.WRONG, "two keys")
    given = {"same mode": [0.1], "mixed": 0.2}
    says(ex.check_fnmr_by_mode(given, rr, ds, root, th), ex.WRONG, "is a list: give one number")


def test_modes_need_both_groups(modes_case, tmp_path):
    rr, ds, root = modes_case
    for path in ds.df["path"]:  # the same files, all in colour: no pair is mixed
        with Image.open(root / path) as image:
            image.convert("RGB").save(tmp_path / path)
    with pytest.raises(ValueError, match="Both kinds of same-thing pair"):
        ex.own_images_modes.fnmr_by_colour_mode(rr, ds, tmp_path, 0.5)


# 08.3: four queries of tiles a_0 and b_0; a_1 is another tile of photo a
SAME_PHOTO_QUERIES = np.array(["a_0", "a_0", "b_0", "b_0"])
SAME_PHOTO_GALLERY = np.array(["a_0", "a_1", "b_0", "b_1"])


def _same_photo_rr():
    from oml.retrieval import RetrievalResults

    orders = ([1, 0, 2, 3], [0, 1, 2, 3], [3, 2, 0, 1], [0, 3, 2, 1])
    return RetrievalResults(
        distances=[torch.tensor([0.1, 0.2, 0.3, 0.4]) for _ in orders],
        retrieved_ids=[torch.tensor(o) for o in orders],
        gt_ids=None,
    )


def test_same_photo_numbers():
    # first answers: a_1 (wrong), a_0 (right), b_1 (wrong), a_0 (wrong, other photo)
    with_them, without_them = ex.your_own_images.same_photo_cmc1(
        _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY
    )
    assert (with_them, without_them) == (0.25, 0.75)


def test_same_photo_right_answer():
    says(
        ex.check_same_photo_cost(
            0.75,
            _same_photo_rr(),
            SAME_PHOTO_QUERIES,
            SAME_PHOTO_GALLERY,
            guess=0.5,
            raised=" With",
        ),
        ex.RIGHT,
        "0.25 with the other tiles",
        "0.75 without them. You guessed 0.50.",
        "A split by tile would most likely raise the first number, 0.25",
    )


def test_same_photo_raised_is_graded():
    args = (0.75, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY)
    says(
        ex.check_same_photo_cost(*args, raised="without"),
        ex.WRONG,
        "0.75 without them.",
        "which number would it help?",
    )
    for unanswered in (None, "both", 1):
        says(
            ex.check_same_photo_cost(*args, raised=unanswered),
            ex.WRONG,
            "0.25 with the other tiles",
            'set raised to "with" or "without"',
        )
    says(
        ex.check_same_photo_cost(*args, raised=...),
        ex.WRONG,
        "`raised` is still `...`",
    )


def test_same_photo_unchanged_score_is_caught():
    says(
        ex.check_same_photo_cost(0.25, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "with the other tiles still there",
    )


def test_same_photo_own_tile_dropped_is_caught():
    says(
        ex.check_same_photo_cost(0.0, _same_photo_rr(), SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "Keep the query's own tile",
    )


def test_same_photo_other_wrong_number_and_bad_input():
    rr = _same_photo_rr()
    says(
        ex.check_same_photo_cost(0.5, rr, SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "then check whether the first one left",
    )
    says(
        ex.check_same_photo_cost("0.75", rr, SAME_PHOTO_QUERIES, SAME_PHOTO_GALLERY),
        ex.WRONG,
        "give CMC@1 as one number, not str",
    )
    with pytest.raises(ValueError, match="one class name per query"):
        ex.check_same_photo_cost(0.75, rr, SAME_PHOTO_QUERIES[:2], SAME_PHOTO_GALLERY)
