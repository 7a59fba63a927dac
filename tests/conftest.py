"""Shared fixtures for the oml_helpers unit tests.

Writing the digits dataset takes about a second and a short training a few more, so both are done
once per test session; tests that change a dataframe get their own copy.
"""

import os

# albumentations must not go online at import
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from oml.const import LABELS_COLUMN, SPLIT_COLUMN  # noqa: E402


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """A folder holding the digits dataset (64x64 images, default split), written once."""
    from oml_helpers import make_digits_dataset

    root = tmp_path_factory.mktemp("digits")
    make_digits_dataset(root)
    return root


@pytest.fixture(scope="session")
def _digits_df_session(digits_root):
    return pd.read_csv(digits_root / "df.csv")


@pytest.fixture
def digits_df(_digits_df_session):
    """The digits dataframe as read from ``df.csv``: a fresh copy per test, safe to change."""
    return _digits_df_session.copy()


def take_per_label(df: pd.DataFrame, split: str, n: int) -> pd.DataFrame:
    """The first ``n`` rows of every label of one split, with a fresh index."""
    part = df[df[SPLIT_COLUMN] == split]
    return part.groupby(LABELS_COLUMN, sort=True).head(n).reset_index(drop=True)


@pytest.fixture
def per_label():
    """``take_per_label`` for the tests (conftest itself is not importable as a module)."""
    return take_per_label


@pytest.fixture
def small_df(_digits_df_session):
    """8 training images per training digit and 10 validation images per validation digit."""
    df = _digits_df_session
    return pd.concat(
        [take_per_label(df, "train", 8), take_per_label(df, "validation", 10)], ignore_index=True
    )


@pytest.fixture(scope="session")
def short_training(digits_root, _digits_df_session):
    """A seeded SmallCNN trained for 20 one-step epochs on the digits 0-4: ``(model, logs,
    epochs)``.

    Batches of 5 labels x 8 images (half the default) keep it at a few seconds on two CPU cores.
    """
    from oml_helpers import SmallCNN, make_datasets, seed_everything, train_extractor

    epochs = 20
    train, _ = make_datasets(_digits_df_session, digits_root)
    seed_everything(0)
    model = SmallCNN()
    logs = train_extractor(model, train, epochs=epochs, n_instances=8)
    return model, logs, epochs
