"""Chapter 01's exercise 1: the checker accepts an epoch that follows BalanceSampler's rules
(OML's own sampler included) and turns down the typical wrong ones with a reason."""

from collections import defaultdict

import numpy as np
import pytest

from oml.samplers import BalanceSampler

from oml_helpers import exercises as ex
from verdicts import says


def balance(
    labels,
    n_labels,
    n_instances,
    seed,
    *,
    n_batches=None,
    small="fill",
    replace=False,
    reuse_labels=False,
    shuffle_labels=True,
    shuffle_images=True,
    as_labels=False,
    seeded=True,
    validate=("one image", "too many labels"),
):
    """A correct epoch by hand, or, with one option changed, a typical mistake."""
    rng = np.random.default_rng(seed) if seeded else np.random.default_rng()
    by_label = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    if "too many labels" in validate and n_labels > len(by_label):
        raise ValueError("too many labels")
    if "one image" in validate and min(map(len, by_label.values())) < 2:
        raise ValueError("a label with one image")
    keys = list(by_label)
    order = [keys[i] for i in rng.permutation(len(keys))] if shuffle_labels else keys
    count = len(keys) // n_labels if n_batches is None else n_batches(labels, n_labels)
    batches = []
    for b in range(count):
        if reuse_labels:
            chosen = [keys[i] for i in rng.choice(len(keys), n_labels, replace=False)]
        else:
            chosen = order[b * n_labels : (b + 1) * n_labels]
        batch = []
        for label in chosen:
            ids = by_label[label]
            if not shuffle_images:
                picked = (ids * n_instances)[:n_instances]
            elif replace:
                picked = rng.choice(ids, n_instances).tolist()
            elif len(ids) >= n_instances:
                picked = rng.choice(ids, n_instances, replace=False).tolist()
            elif small == "fill":
                picked = ids + rng.choice(ids, n_instances - len(ids)).tolist()
            else:  # "all": the small label's images, no repeats
                picked = list(ids)
            batch += [label] * len(picked) if as_labels else picked
        batches.append(batch)
    return batches


def oml_sampler(labels, n_labels, n_instances, seed):
    np.random.seed(seed)
    return list(BalanceSampler(labels, n_labels=n_labels, n_instances=n_instances))


def test_right_answers():
    says(
        ex.check_balance_batches(balance),
        ex.RIGHT,
        "2 batches of 3 x 4 = 12 indices, 24 in an epoch",
        "the 2- and 3-image labels give repeats",
        "changes with the seed",
    )
    says(ex.check_balance_batches(oml_sampler), ex.RIGHT)  # OML's own rules pass


def _variant(**change):
    return lambda labels, n_labels, n_instances, seed: balance(
        labels, n_labels, n_instances, seed, **change
    )


@pytest.mark.parametrize(
    "change, hints",
    [
        (dict(n_batches=lambda labels, k: len(labels) // (4 * k)), ["one pass over the labels"]),
        (dict(n_batches=lambda labels, k: -(-len(set(labels)) // k)), ["sit that epoch out"]),
        (dict(small="all"), ["exactly 4 images each"]),
        (dict(replace=True), ["repeats some of them", "without replacement"]),
        (dict(reuse_labels=True), ["at most once"]),
        (dict(as_labels=True), ["outside", "positions in `labels`"]),
        (dict(seeded=False), ["same seed gave different batches"]),
        (dict(shuffle_labels=False), ["same labels always sit out"]),
        (dict(shuffle_images=False), ["every seed takes the same ones"]),
        (dict(validate=("too many labels",)), ["single image was accepted"]),
        (dict(validate=("one image",)), ["n_labels=8 with only 7 labels"]),
    ],
    ids=[
        "counts-images",
        "partial-last-batch",
        "small-labels-short",
        "always-with-repeats",
        "labels-reused",
        "labels-not-indices",
        "ignores-seed",
        "labels-in-order",
        "first-images",
        "accepts-one-image",
        "accepts-too-many-labels",
    ],
)
def test_typical_mistakes_are_not_yet(change, hints):
    says(ex.check_balance_batches(_variant(**change)), ex.WRONG, *hints)


def test_not_a_list_and_unanswered():
    says(ex.check_balance_batches(lambda *args: 3), ex.WRONG, "list of batches")

    def my_balance_batches(labels, n_labels, n_instances, seed): ...

    says(ex.check_balance_batches(my_balance_batches), ex.WRONG, "returned None")
    says(ex.check_balance_batches(...), ex.WRONG, "still `...`")


def test_a_bug_in_the_answer_is_raised():
    def broken(labels, n_labels, n_instances, seed):
        raise KeyError("my bug")

    with pytest.raises(KeyError, match="my bug"):
        ex.check_balance_batches(broken)


def test_numpy_global_generator_left_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    ex.check_balance_batches(oml_sampler)  # seeds the global generator many times
    assert np.random.rand() == expected
