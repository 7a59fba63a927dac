"""The chapter 05 checkers accept the right answers and turn down typical wrong ones with a
reason."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import oml_helpers as h
from oml_helpers import exercises as ex
from oml_helpers.models import SmallCNN
from oml_helpers.storage import EmbeddingStore
from verdicts import says as _says


def _precision(store, k, extra=1, drop_self=True, divide_by=None):
    """Per-label precision@k from store.search; the arguments make the typical mistakes."""
    ids, vectors, metadata = store.load()
    labels = metadata["label"].to_numpy(int)
    found = store.search(vectors, k=k + extra).ids
    if drop_self:
        found = np.stack([row[row != i][:k] for i, row in zip(ids, found)])
    else:
        found = found[:, :k]
    hits = labels[np.searchsorted(ids, found)] == labels[:, None]
    precision = hits.sum(axis=1) / (divide_by or hits.shape[1])
    return {int(d): float(precision[labels == d].mean()) for d in np.unique(labels)}


def test_precision_per_label():
    _says(ex.check_precision_per_label(_precision), ex.RIGHT, "brute force")
    # the chapter's store: the function's values on it
    with tempfile.TemporaryDirectory() as folder:
        with EmbeddingStore.create(Path(folder) / "s.db", model_name="t", dim=1) as store:
            # label 0 at 0..5, label 1 at 20..25: each item's 5 nearest others share its label
            store.add(
                np.arange(12),
                np.r_[0:6, 20:26][:, None].astype(np.float32),
                labels=[0] * 6 + [1] * 6,
            )
            _says(
                ex.check_precision_per_label(_precision, store),
                ex.RIGHT,
                "your function gives",
                "{0: 1.0, 1: 1.0}",
            )
            _says(ex.check_precision_per_label(lambda s, k: 0.5, store), ex.WRONG, "return a dict")
            chapter = {}

            def uses_a_global(s, k):  # right on the checker's store, then repeats its answers
                if k not in chapter:
                    chapter[k] = _precision(s, k)
                return chapter[k]

            _says(
                ex.check_precision_per_label(uses_a_global, store),
                ex.WRONG,
                "right on the checker's store",
            )
    # the stub
    _says(ex.check_precision_per_label(lambda store, k: None), ex.WRONG, "returned None")
    _says(
        ex.check_precision_per_label(lambda s, k: _precision(s, k, drop_self=False)),
        ex.WRONG,
        "its own neighbour",
    )
    _says(ex.check_precision_per_label(lambda s, k: _precision(s, k, extra=0)), ex.WRONG, "k - 1")
    _says(
        ex.check_precision_per_label(lambda s, k: _precision(s, k, extra=0, divide_by=k)),
        ex.WRONG,
        "k - 1",
    )
    _says(ex.check_precision_per_label(lambda s, k: 0.5), ex.WRONG, "return a dict")
    _says(ex.check_precision_per_label(lambda s, k: {0: 1.0, 1: 1.0}), ex.WRONG, "your labels are")

    def overall(store, k):
        per_label = _precision(store, k)
        mean = float(np.mean(list(per_label.values())))
        return {label: mean for label in per_label}

    _says(ex.check_precision_per_label(overall), ex.WRONG, "same value")
    _says(
        ex.check_precision_per_label(
            lambda s, k: {d: v + 0.1 for d, v in _precision(s, k).items()}
        ),
        ex.WRONG,
        "brute force gives",
    )


def _unknown_labels(store, corrections):
    return sorted(set(corrections.values()) - set(store.load().metadata["label"].tolist()))


def _relabel(store, corrections):
    """The answer to exercise 2: check the labels, read the old ones, then one update."""
    ids, new_labels = list(corrections), list(corrections.values())
    if _unknown_labels(store, corrections):
        raise ValueError(f"unknown labels {_unknown_labels(store, corrections)}")
    old = store.load(ids=ids)  # sorted by id; unknown ids skipped
    replaced = dict(zip(old.ids.tolist(), old.metadata["label"].tolist()))
    store.update(ids, labels=new_labels)
    return replaced


def _old_labels(store, corrections):
    loaded = store.load(ids=list(corrections))
    return dict(zip(loaded.ids.tolist(), loaded.metadata["label"].tolist()))


def _loop(store, corrections):  # one transaction per id
    replaced = _old_labels(store, corrections)
    for i, label in corrections.items():
        store.update([i], labels=[label])
    return replaced


def _swallows(store, corrections):
    try:
        return _relabel(store, corrections)
    except Exception:
        return {}


def _bare_exception(store, corrections):
    if len(store.load(ids=list(corrections)).ids) < len(corrections):
        raise Exception("some ids are not stored")
    return _relabel(store, corrections)


def _checks_first(store, corrections, error=KeyError):
    stored = set(store.load(ids=list(corrections)).ids.tolist())
    missing = [i for i in corrections if i not in stored]
    if missing:
        raise error(f"not stored: {missing}")
    if _unknown_labels(store, corrections):
        raise error(f"unknown labels: {_unknown_labels(store, corrections)}")
    return _loop(store, corrections)  # safe now: every update will succeed


def _says_nothing(store, corrections):
    try:
        return _relabel(store, corrections)
    except h.UnknownIdError:
        raise ValueError("relabel failed") from None


def _zips_in_given_order(store, corrections):  # load sorts by id: labels to the wrong ids
    old = store.load(ids=list(corrections)).metadata["label"].tolist()
    _relabel(store, corrections)
    return dict(zip(corrections, old))


def _returns_new(store, corrections):
    _relabel(store, corrections)
    return dict(corrections)


def _sorted_ids_given_labels(store, corrections):  # new labels to the wrong ids
    replaced = _old_labels(store, corrections)
    store.update(sorted(corrections), labels=list(corrections.values()))
    return replaced


def _with_zero_vectors(store, corrections):
    replaced = _old_labels(store, corrections)
    zeros = np.zeros((len(corrections), store.dim), np.float32)
    store.update(list(corrections), zeros, labels=list(corrections.values()))
    return replaced


def _deletes_the_missing_batch(store, corrections):  # "all or nothing" by deleting
    try:
        return _relabel(store, corrections)
    except h.UnknownIdError:
        stored = [i for i in corrections if i in set(store.load().ids.tolist())]
        store.delete(stored)
        raise


def test_relabel_right_answers():
    _says(ex.check_relabel(_relabel), ex.RIGHT, "labels they replaced", "committed 2 labels")
    # checking every id first, then one update per id, changes nothing on a missing id
    _says(ex.check_relabel(_checks_first), ex.RIGHT)
    _says(ex.check_relabel(lambda s, c: _checks_first(s, c, LookupError)), ex.RIGHT)


def test_relabel_loop_of_updates():
    _says(
        ex.check_relabel(_loop),
        ex.WRONG,
        "raised, but it had already changed the labels {4: 3, 5: 3}",
        "one transaction",
        "check that every id is stored before writing",
    )


def _no_label_check(store, corrections):  # the store writes any integer label
    ids, new_labels = list(corrections), list(corrections.values())
    replaced = _old_labels(store, corrections)
    store.update(ids, labels=new_labels)
    return replaced


def _checks_labels_too_late(store, corrections):  # writes, then complains
    unknown = _unknown_labels(store, corrections)
    replaced = _no_label_check(store, corrections)
    if unknown:
        raise ValueError(f"unknown labels {unknown}")
    return replaced


def _label_error_says_nothing(store, corrections):
    if _unknown_labels(store, corrections):
        raise ValueError("bad corrections")
    return _relabel(store, corrections)


def _label_bare_exception(store, corrections):
    if _unknown_labels(store, corrections):
        raise Exception("unknown label 42")
    return _relabel(store, corrections)


def test_relabel_unknown_label():
    _says(ex.check_relabel(_no_label_check), ex.WRONG, "changed the labels {3: 0, 8: 42}")
    _says(ex.check_relabel(_checks_labels_too_late), ex.WRONG, "raised, but it had changed")
    _says(ex.check_relabel(_label_error_says_nothing), ex.WRONG, "which label is unknown")
    _says(ex.check_relabel(_label_bare_exception), ex.WRONG, "bare Exception", "label 42")
    _says(ex.check_relabel(_relabel), ex.RIGHT, "unknown label 42 was refused")


def test_relabel_errors():
    _says(ex.check_relabel(_swallows), ex.WRONG, "returned without an error", "UnknownIdError")
    _says(ex.check_relabel(_bare_exception), ex.WRONG, "bare Exception", "names id 99")
    _says(
        ex.check_relabel(_says_nothing),
        ex.WRONG,
        "raised ValueError: relabel failed",
        "does not say which id",
    )
    _says(ex.check_relabel(lambda s, c: 1 / 0), ex.WRONG, "raised ZeroDivisionError")


def test_relabel_wrong_results():
    _says(ex.check_relabel(lambda store, corrections: None), ex.WRONG, "returned None")  # stub
    _says(ex.check_relabel(_zips_in_given_order), ex.WRONG, "sorted by id", "wrong ids")
    _says(ex.check_relabel(_returns_new), ex.WRONG, "returned the new labels")
    _says(ex.check_relabel(_sorted_ids_given_labels), ex.WRONG, "each other's ids")
    _says(ex.check_relabel(_with_zero_vectors), ex.WRONG, "count or vectors")
    _says(ex.check_relabel(_deletes_the_missing_batch), ex.WRONG, "number of items from 10 to 8")
    _says(
        ex.check_relabel(lambda s, c: _relabel(s, dict(list(c.items())[:1]))),
        ex.WRONG,
        "the changed labels are {6: 0}",
    )
    _says(
        ex.check_relabel(lambda s, c: list(_relabel(s, c).values())),
        ex.WRONG,
        "as a dict {id: old label}",
    )
    _says(
        ex.check_relabel(lambda s, c: {i: v + 1 for i, v in _relabel(s, c).items()}),
        ex.WRONG,
        "the labels it replaced were {6: 3, 2: 1}",
    )


# 05.3 (the model exercise): new images with the store's own model


def _add_images(store, model, model_name, ids, images, labels):
    if model_name != store.model_name:
        raise ValueError(f"store of {store.model_name!r}, not {model_name!r}")
    model.eval()
    with torch.no_grad():
        vectors = model(images).numpy()
    store.add(ids, vectors, labels=labels)
    return vectors


class _OnAnotherDevice:
    """What a model on a GPU returns: usable only after ``.cpu()``."""

    def __init__(self, tensor):
        self._tensor = tensor

    def cpu(self):
        return self._tensor

    def numpy(self):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


class _ModelOnAnotherDevice(torch.nn.Module):
    """Stands in for a model on a GPU: its parameters are on the 'meta' device, it
    refuses inputs on another device, and its output must be moved to the CPU."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(8, device="meta"))

    def forward(self, images):
        if images.device != self.weight.device:
            raise RuntimeError("Expected all tensors to be on the same device")
        # one fixed vector per image, the same in every mode
        return _OnAnotherDevice(torch.eye(len(images), 8) + 1.0)


def _add_images_on_its_device(store, model, model_name, ids, images, labels):
    if model_name != store.model_name:
        raise ValueError(f"store of {store.model_name!r}, not {model_name!r}")
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        vectors = model(images.to(device)).cpu().numpy()
    store.add(ids, vectors, labels=labels)
    return vectors


def test_add_images_moves_the_images_to_the_models_device():
    model = _ModelOnAnotherDevice()
    _says(ex.check_add_images(_add_images_on_its_device, model), ex.RIGHT, "refused")
    # an answer that forgets the device fails as it would on a GPU
    with pytest.raises(RuntimeError, match="same device"):
        ex.check_add_images(_add_images, model)


def _digit_model():
    torch.manual_seed(0)
    return SmallCNN().eval()


def test_add_images_right_answer():
    _says(ex.check_add_images(_add_images, _digit_model()), ex.RIGHT, "refused")


def test_add_images_on_a_copy_of_a_store_reports_the_search(tmp_path):
    model = _digit_model()
    images = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        vectors = model(torch.rand(8, 3, 64, 64)).numpy()
    with EmbeddingStore.create(tmp_path / "s.db", model_name="m", dim=64) as store:
        store.add(np.arange(8), vectors, labels=[5] * 8)
        _says(
            ex.check_add_images(
                _add_images, model, store, images, label=3, ids=[20, 21, 22, 23, 24]
            ),
            ex.RIGHT,
            "Before: the query's 5 nearest had labels [5, 5, 5, 5, 5]",
            "of its 5 nearest are new images",
        )
        assert len(store) == 8  # the chapter's store itself is untouched


def test_add_images_wrong_answers():
    model = _digit_model()

    def mixes(store, model, model_name, ids, images, labels):
        with torch.no_grad():
            vectors = model.eval()(images).numpy()
        store.add(ids, vectors, labels=labels)
        return vectors

    _says(ex.check_add_images(mixes, model), ex.WRONG, "wrote")

    def checks_after_writing(store, model, model_name, ids, images, labels):
        vectors = mixes(store, model, model_name, ids, images, labels)
        if model_name != store.model_name:
            raise ValueError("too late")
        return vectors

    _says(ex.check_add_images(checks_after_writing, model), ex.WRONG, "wrote")

    def variant(eval_mode, with_labels):
        def fn(store, model, model_name, ids, images, labels):
            if model_name != store.model_name:
                raise ValueError("no")
            if eval_mode:
                model.eval()
            with torch.no_grad():
                vectors = model(images).numpy()
            store.add(ids, vectors, labels=labels if with_labels else None)
            return vectors

        return fn

    # left in training mode; labels not passed
    _says(ex.check_add_images(variant(False, True), model), ex.WRONG, "model.eval()")
    _says(ex.check_add_images(variant(True, False), model), ex.WRONG, "labels=")

    def returns_count(store, model, model_name, ids, images, labels):
        _add_images(store, model, model_name, ids, images, labels)
        return len(ids)

    _says(ex.check_add_images(returns_count, model), ex.WRONG, "return the embeddings")

    def returns_none(store, model, model_name, ids, images, labels): ...

    _says(ex.check_add_images(returns_none, model), ex.WRONG)


def test_add_images_bad_input():
    model = _digit_model()
    with pytest.raises(ValueError, match="tensor"):
        ex.check_add_images(_add_images, model, images=np.zeros((6, 3, 64, 64)))
    with pytest.raises(ValueError, match="at least 3"):
        ex.check_add_images(_add_images, model, images=torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="5"):
        ex.check_add_images(_add_images, model, ids=[1, 2])
