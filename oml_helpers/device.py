"""Where to compute, and how to make runs repeatable."""

import numbers
import warnings

import torch

from oml.utils.misc import set_global_seed


def get_device() -> torch.device:
    """The GPU when there is one (Colab with a GPU runtime), otherwise the CPU.

    Returns:
        ``cuda`` or ``cpu``.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0, single_thread: bool = False) -> None:
    """Seed Python, NumPy and torch (OML's ``set_global_seed``) so that a rerun
    gives the same numbers.

    The same seed gives the same initial weights, batches and augmentations on every
    machine. What a training run ends with still differs in the last digits: CPUs
    with other vector instructions (AVX2, AVX-512, ...) add numbers up in other
    orders, and so do torch's threads from one run to the next. The book therefore
    states trained numbers as "about" and checks them against a range
    (``expect_between``). ``single_thread=True`` makes reruns on one machine repeat
    bit for bit, at about half the training speed on two cores.

    Args:
        seed: An integer in ``[0, 2**32)``.
        single_thread: Run torch's CPU kernels on one thread, for runs that repeat
            exactly on one machine.
    """
    if (
        not isinstance(seed, numbers.Integral)
        or isinstance(seed, bool)
        or not 0 <= seed < 2**32
    ):
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    set_global_seed(int(seed))
    if single_thread:
        torch.set_num_threads(1)


KNOWN_WARNINGS = (
    # oml.inference.inference always enters torch.autocast("cuda"), which warns on a
    # CPU.
    "CUDA is not available or torch_xla is imported",
    # Lightning 2.1's use of torch's private _pytree API.
    r"torch.utils._pytree._register_pytree_node is deprecated",
    # Lightning asks for more DataLoader workers; the book's data lives in memory
    # and needs none.
    r"The '\w+_dataloader' does not have many workers",
    # Lightning 2.1 imports pkg_resources, which setuptools deprecates.
    "pkg_resources is deprecated as an API",
    # Lightning 2.1's _pytree helper uses a torch API that newer torch deprecates.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # Under DDP, OML's MetricValCallback logs metrics it has already computed over
    # the data of all processes (rank 0 logs them); the loss is the one of rank 0's
    # batches. Nothing to accumulate.
    r"It is recommended to use `self.log\('(OVERALL/|triplet_loss)",
)
# (message, module) pairs: hidden only when raised from that module.
KNOWN_MODULE_WARNINGS = (
    # torch.export.load of torch 2.11 (Colab's, seen in chapter 04 on a GPU run)
    # makes its weights from a read-only buffer and says so; the loaded module is
    # not written to.
    (r"The given buffer is not writable", r"torch\.export\."),
)


def silence_known_warnings() -> None:
    """Hide the warnings the book's stack prints although nothing is wrong (listed
    in ``KNOWN_WARNINGS``).

    Only these exact messages are hidden; any other warning still shows.
    """
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for message, module in KNOWN_MODULE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
