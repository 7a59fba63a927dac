"""Tests of oml_helpers.device: device choice, seeding and the warning filter."""

import random
import warnings

import numpy as np
import pytest
import torch

from oml_helpers import get_device, seed_everything, silence_known_warnings
from oml_helpers.device import KNOWN_WARNINGS


def test_get_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    assert isinstance(get_device(), torch.device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_get_device_is_cpu_here():
    assert get_device().type == "cpu"


def _draw():
    return torch.rand(5), np.random.rand(3), random.random()


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1])
def test_seed_everything_repeats(seed):
    seed_everything(seed)
    t1, n1, r1 = _draw()
    seed_everything(seed)
    t2, n2, r2 = _draw()
    assert torch.equal(t1, t2)
    np.testing.assert_array_equal(n1, n2)
    assert r1 == r2


def test_different_seeds_differ():
    seed_everything(1)
    a = torch.rand(5)
    seed_everything(2)
    assert not torch.equal(a, torch.rand(5))


def test_seed_everything_default_is_zero():
    seed_everything()
    a = torch.rand(4)
    seed_everything(0)
    assert torch.equal(a, torch.rand(4))


@pytest.mark.parametrize("seed", [-1, -100, 1.5, 2.0, "3", None, True, 2**32])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), got"):
        seed_everything(seed)


def test_seed_everything_accepts_numpy_integers():
    """The docstring says "any non-negative integer"; seeds often come from NumPy (np.arange,
    rng.integers)."""
    seed_everything(np.int64(3))
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def _shown(messages):
    """Messages that still show after silence_known_warnings, each warned as a UserWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        for message in messages:
            warnings.warn(message, UserWarning)
    return [str(w.message) for w in caught]


KNOWN_TEXTS = [
    "CUDA is not available or torch_xla is imported. Disabling autocast.",
    "torch.utils._pytree._register_pytree_node is deprecated. "
    "Please use torch.utils._pytree.register_pytree_node.",
    "The 'train_dataloader' does not have many workers which may be a bottleneck. "
    "Consider increasing num_workers.",
    "The 'val_dataloader' does not have many workers which may be a bottleneck.",
    "pkg_resources is deprecated as an API. See https://setuptools.pypa.io/en/latest/pkg_resources.html.",
    "`isinstance(treespec, LeafSpec)` is deprecated, "
    "use `isinstance(treespec, TreeSpec) and treespec.is_leaf()` instead.",
    "It is recommended to use `self.log('OVERALL/map/5', ..., sync_dist=True)` "
    "when logging on epoch level in "
    "distributed setting to accumulate the metric across devices.",
    "It is recommended to use `self.log('triplet_loss', ..., sync_dist=True)` "
    "when logging on epoch level",
]

OTHER_TEXTS = [
    "Something else went wrong",
    "The 'train_dataloader' has many workers",
    # the filter matches messages from their start
    "Note! CUDA is not available or torch_xla is imported",
    "torch.utils._pytree.register_pytree_node is fine",
    "It is recommended to use `self.log('my_accuracy', ..., sync_dist=True)` "
    "when logging on epoch level",
]


def test_known_warnings_are_hidden():
    assert _shown(KNOWN_TEXTS) == []


def test_other_warnings_still_show():
    assert _shown(OTHER_TEXTS + KNOWN_TEXTS) == OTHER_TEXTS


def test_each_listed_pattern_has_a_hidden_example():
    """Every KNOWN_WARNINGS entry is exercised by one of the texts above."""
    import re

    for pattern in KNOWN_WARNINGS:
        assert any(re.match(pattern, text, re.I) for text in KNOWN_TEXTS), pattern


def test_real_autocast_warning_of_oml_inference_is_hidden():
    """oml.inference enters torch.autocast("cuda"); on a machine without a GPU that warns."""
    if torch.cuda.is_available():
        pytest.skip("the warning only appears without a GPU")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cuda"):
            pass
    assert caught, "torch no longer warns here: update KNOWN_WARNINGS"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        with torch.autocast("cuda"):
            pass
    assert [str(w.message) for w in caught] == []


def test_module_warnings_are_hidden_only_from_their_module():
    text = "The given buffer is not writable, and PyTorch does not support non-writable tensors."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        warnings.warn_explicit(
            text, UserWarning, "_package.py", 790, module="torch.export.pt2_archive._package"
        )
        warnings.warn_explicit(text, UserWarning, "mine.py", 1, module="my_code")
    assert [w.filename for w in caught] == ["mine.py"]


def test_silence_is_idempotent_and_does_not_hide_everything():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        silence_known_warnings()
        warnings.warn("still here", RuntimeWarning)
    assert [str(w.message) for w in caught] == ["still here"]
