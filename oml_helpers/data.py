"""The book's offline dataset, its image transforms, and a readable check of OML's
dataframe format.

OML describes a retrieval dataset with one dataframe row per image:

========== =====================================================================
column     meaning
========== =====================================================================
label      integer class id; images of one label are "the same thing"
path       image path, relative to ``dataset_root`` (or absolute)
split      ``"train"`` or ``"validation"``
is_query   validation only: the image is used as a query
is_gallery validation only: the image is searched for
========== =====================================================================
"""

import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from PIL import Image
from torchvision import transforms as T

from oml.const import (
    IS_GALLERY_COLUMN,
    IS_QUERY_COLUMN,
    LABELS_COLUMN,
    PATHS_COLUMN,
    SPLIT_COLUMN,
)
from oml.utils.dataframe_format import check_retrieval_dataframe_format

from oml_helpers.messages import shorten

REQUIRED_COLUMNS = (
    LABELS_COLUMN,
    PATHS_COLUMN,
    SPLIT_COLUMN,
    IS_QUERY_COLUMN,
    IS_GALLERY_COLUMN,
)
TRAIN_DIGITS = (0, 1, 2, 3, 4)
VALIDATION_DIGITS = (5, 6, 7, 8, 9)
DIGITS_CSV = "df.csv"
MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


class DatasetFormatError(ValueError):
    """A dataframe does not follow OML's retrieval format; the message says what
    to fix."""


def default_data_root() -> Path:
    """Where the notebooks keep their data: ``$OML_BOOK_DATA`` or ``./data``.

    Returns:
        The folder (not created).
    """
    return Path(os.environ.get("OML_BOOK_DATA", "data"))


def make_digits_dataset(
    root: Union[str, Path],
    train_digits: Sequence[int] = TRAIN_DIGITS,
    image_size: int = 64,
) -> pd.DataFrame:
    """Write scikit-learn's bundled handwritten digits as PNGs in OML's format.

    Training uses ``train_digits``; every other digit goes to validation, where each
    image is both a query and a gallery item. The model never sees the validation
    digits during training: this is the open-set setting metric learning is made
    for. The output is deterministic, and a call on a root that already holds the
    same dataset rewrites nothing.

    Args:
        root: Folder to write into (created if needed):
            ``images/<digit>/<index>.png`` and ``df.csv``.
        train_digits: Digits used for training, at least two and not all ten.
        image_size: Side of the square images in pixels (the originals are 8x8).

    Returns:
        The dataframe, also saved as ``root/df.csv``, with paths relative to
        ``root``.
    """
    from sklearn.datasets import load_digits

    train_digits = sorted(set(int(d) for d in train_digits))
    if (
        len(train_digits) < 2
        or len(train_digits) > 9
        or not set(train_digits) <= set(range(10))
    ):
        raise ValueError(
            f"train_digits={train_digits} is not usable: give between 2 and 9 "
            "distinct digits in 0..9, so that both training and validation have "
            "at least one class (training needs two)."
        )
    if image_size < 8:
        raise ValueError(
            f"image_size={image_size} is smaller than the 8x8 originals; use 8 or "
            "more."
        )

    root = Path(root)
    digits = load_digits()
    rows = []
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        path = Path("images") / str(label) / f"{index:04d}.png"
        is_train = int(label) in train_digits
        rows.append(
            {
                LABELS_COLUMN: int(label),
                PATHS_COLUMN: path.as_posix(),
                SPLIT_COLUMN: "train" if is_train else "validation",
                IS_QUERY_COLUMN: None if is_train else True,
                IS_GALLERY_COLUMN: None if is_train else True,
            }
        )
        _write_digit(root / path, pixels, image_size)

    df = pd.DataFrame(rows)
    csv, text = root / DIGITS_CSV, df.to_csv(index=False)
    if not csv.is_file() or csv.read_text() != text:
        csv.write_text(text)
    return df


def _write_digit(path: Path, pixels: np.ndarray, image_size: int) -> None:
    """Save one 8x8 digit (values 0..16) as a white-on-black grey PNG, skipping
    identical files."""
    image = Image.fromarray(
        (pixels * (255 / 16)).round().astype(np.uint8), mode="L"
    )
    image = image.resize((image_size, image_size), Image.BILINEAR)
    if path.exists():
        with Image.open(path) as old:
            if old.size == image.size and np.array_equal(
                np.asarray(old), np.asarray(image)
            ):
                return
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def split_dataframe(df: pd.DataFrame) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Split an OML dataframe into its training and validation parts.

    Args:
        df: A dataframe in OML's format.

    Returns:
        ``(df_train, df_val)``, each with a fresh index.
    """
    is_train = df[SPLIT_COLUMN] == "train"
    return df[is_train].reset_index(drop=True), df[~is_train].reset_index(drop=True)


def digit_transforms(train: bool) -> T.Compose:
    """Transforms for the digit images: small random shifts, turns and zooms when
    training.

    Args:
        train: ``True`` adds augmentation; ``False`` only converts and normalises.

    Returns:
        A torchvision ``Compose`` (OML's datasets accept it).
    """
    steps = (
        [T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.85, 1.15))]
        if train
        else []
    )
    return T.Compose(steps + [T.ToTensor(), T.Normalize(*MEAN_STD)])


def check_dataframe(
    df: Union[pd.DataFrame, str, Path],
    dataset_root: Optional[Union[str, Path]] = None,
) -> None:
    """Check a dataframe against OML's retrieval format and explain the first
    problem found.

    It checks what OML's own ``check_retrieval_dataframe_format`` checks, with
    messages that name the problem and the fix, and two more things that otherwise
    fail later and less clearly: each training label needs two images
    (``BalanceSampler``), and each query needs another gallery image of its label
    (otherwise it has nothing to find).

    Args:
        df: The dataframe, or the path of its ``.csv`` file.
        dataset_root: Folder that relative paths start from; ``None`` if paths are
            absolute.

    Raises:
        DatasetFormatError: Describing the problem and how to fix it.
    """
    if isinstance(df, (str, Path)):
        if not Path(df).is_file():
            raise DatasetFormatError(
                f"No dataframe file at {df}. Give the path of your .csv file."
            )
        df = pd.read_csv(df)
    if not isinstance(df, pd.DataFrame):
        raise DatasetFormatError(
            f"Expected a pandas DataFrame or a .csv path, got {type(df).__name__}."
        )
    if df.empty:
        raise DatasetFormatError(
            "The dataframe has no rows. Add one row per image."
        )

    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetFormatError(
            f"Missing column(s) {missing}. OML needs {list(REQUIRED_COLUMNS)}; "
            f"is_query/is_gallery stay empty for training rows."
        )

    if not pd.api.types.is_integer_dtype(df[LABELS_COLUMN]):
        raise DatasetFormatError(
            f"Column '{LABELS_COLUMN}' must hold integers, found dtype "
            f"{df[LABELS_COLUMN].dtype} (e.g. {df[LABELS_COLUMN].iloc[0]!r}). Map "
            f"class names to integers, e.g. with df['{LABELS_COLUMN}'] = "
            f"pd.factorize(df['{LABELS_COLUMN}'])[0]."
        )

    bad_splits = sorted(set(map(str, df[SPLIT_COLUMN])) - {"train", "validation"})
    if bad_splits:
        raise DatasetFormatError(
            f"Column '{SPLIT_COLUMN}' has {bad_splits}; only 'train' and "
            "'validation' are allowed."
        )

    is_train = df[SPLIT_COLUMN] == "train"
    _check_train_rows(df[is_train])
    _check_validation_rows(df[~is_train])
    _check_files(df[PATHS_COLUMN], dataset_root)

    try:  # anything else OML checks (bounding boxes, categories, ...)
        check_retrieval_dataframe_format(
            df, dataset_root=Path(dataset_root or ""), verbose=False
        )
    except AssertionError as e:
        raise DatasetFormatError(f"OML's format check failed: {e}") from e


def _check_train_rows(df_train: pd.DataFrame) -> None:
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        filled = df_train[column].notna()
        if filled.any():
            raise DatasetFormatError(
                f"{filled.sum()} training row(s) have a value in '{column}' (first "
                f"at index {filled.idxmax()}). Leave is_query/is_gallery empty for "
                "split == 'train'."
            )
    counts = df_train[LABELS_COLUMN].value_counts()
    lonely = sorted(counts[counts < 2].index.tolist())
    if lonely:
        raise DatasetFormatError(
            f"Training label(s) [{shorten(lonely)}] have a single image; "
            "BalanceSampler needs at least 2 per label. Add images or move these "
            "labels to validation."
        )


def _check_validation_rows(df_val: pd.DataFrame) -> None:
    if df_val.empty:
        return
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        values = df_val[column]
        if (
            values.isna().any()
            or not values.map(lambda v: isinstance(v, (bool, np.bool_))).all()
        ):
            raise DatasetFormatError(
                f"Column '{column}' must be True or False on every validation row; "
                f"found [{shorten(sorted(set(map(repr, values))))}]."
            )
    neither = ~(df_val[IS_QUERY_COLUMN] | df_val[IS_GALLERY_COLUMN])
    if neither.any():
        raise DatasetFormatError(
            f"{neither.sum()} validation row(s) are neither query nor gallery "
            f"(first at index {neither.idxmax()}); set at least one of "
            "is_query/is_gallery to True or drop the row."
        )
    queries_without_match = []
    gallery = df_val[df_val[IS_GALLERY_COLUMN]]
    gallery_per_label = gallery.groupby(LABELS_COLUMN).size()
    for index, row in df_val[df_val[IS_QUERY_COLUMN]].iterrows():
        n_matches = gallery_per_label.get(row[LABELS_COLUMN], 0) - int(
            bool(row[IS_GALLERY_COLUMN])
        )
        if n_matches < 1:
            queries_without_match.append(index)
    if queries_without_match:
        raise DatasetFormatError(
            f"Query row(s) [{shorten(queries_without_match)}] have no other "
            "gallery image of their label, so there is nothing correct to "
            "retrieve. Add gallery images of those labels or drop the queries."
        )


def _check_files(
    paths: pd.Series, dataset_root: Optional[Union[str, Path]]
) -> None:
    root = Path(dataset_root) if dataset_root is not None else Path("")
    if dataset_root is not None and not root.is_dir():
        raise DatasetFormatError(
            f"dataset_root {root} is not a folder. Pass the folder your paths "
            "start from."
        )
    missing = [p for p in paths if not (root / str(p)).is_file()]
    if missing:
        hint = (
            ""
            if dataset_root is not None
            else " Paths are relative: pass dataset_root."
        )
        raise DatasetFormatError(
            f"{len(missing)} image file(s) do not exist, e.g. [{shorten(missing)}] "
            f"under '{root}'.{hint}"
        )
