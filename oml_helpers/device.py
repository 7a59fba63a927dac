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


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (OML's ``set_global_seed``) so that a rerun gives the same numbers.

    Runs are repeatable on the same kind of machine; another CPU or a GPU may round differently.

    Args:
        seed: Any non-negative integer.
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    set_global_seed(int(seed))


KNOWN_WARNINGS = (
    # oml.inference.inference always enters torch.autocast("cuda"), which warns on a CPU.
    "CUDA is not available or torch_xla is imported",
    # Lightning 2.1's use of torch's private _pytree API.
    r"torch.utils._pytree._register_pytree_node is deprecated",
    # Lightning asks for more DataLoader workers; the book's data lives in memory and needs none.
    r"The '\w+_dataloader' does not have many workers",
)


def silence_known_warnings() -> None:
    """Hide the warnings the book's stack prints although nothing is wrong (listed in ``KNOWN_WARNINGS``).

    Only these exact messages are hidden; any other warning still shows.
    """
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
