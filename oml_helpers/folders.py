"""A folder of images, one subfolder per class, as OML's dataframe (chapter 08).

This is the layout most people have (and torchvision's ``ImageFolder`` reads)::

    photos/
        mug/       1.jpg  2.png  ...
        teapot/    a.jpeg b.jpg  ...
"""

import warnings
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from oml_helpers.data import DatasetFormatError, check_dataframe
from oml_helpers.messages import shorten

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
)


def folder_to_dataframe(
    folder: Union[str, Path],
    validation_classes: Sequence[str],
    n_queries: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """OML's dataframe for ``folder/<class>/<image>``, split by class.

    Labels are the class folders' names numbered in sorted order (``pd.factorize``);
    the ``class_name`` column keeps the names. Classes in ``validation_classes``
    form the validation split, where ``n_queries`` random images of each class are
    queries and the others its gallery; every other class trains. Files that are not
    images, images that cannot be decoded and classes with fewer than two images are
    left out with a warning that names them.

    Args:
        folder: The folder of class folders; paths in the dataframe start from it
            (pass it as ``dataset_root``).
        validation_classes: Names of the class folders to hold out.
        n_queries: Queries per validation class (at most its size minus one).
        seed: Seed of the choice of queries.

    Returns:
        A dataframe that ``check_dataframe`` accepts.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        DatasetFormatError: No class with two readable images, a class folder's name
            that cannot be a path in a CSV file, an unknown validation class, or a
            split left empty.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder: pass the folder that holds one subfolder "
            "of images per class."
        )
    if n_queries < 1:
        raise ValueError(f"n_queries must be at least 1, got {n_queries}.")
    rows = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        _check_name(class_dir)
        images = _readable_images(class_dir)
        if not images:
            warnings.warn(
                f"Left out class {class_dir.name!r}: its folder holds no readable "
                "image.",
                stacklevel=2,
            )
            continue
        if len(images) == 1:
            warnings.warn(
                f"Left out class {class_dir.name!r}: it has one image "
                f"({images[0].name}), and a class needs two, one to search with "
                "and one to find. Add a second image to use it.",
                stacklevel=2,
            )
            continue
        rows += [(class_dir.name, str(p.relative_to(folder))) for p in images]
    if not rows:
        raise DatasetFormatError(
            f"{folder} holds no class folder with two readable images: put each "
            "class's images in a subfolder of its own, named after the class."
        )
    df = pd.DataFrame(rows, columns=["class_name", "path"])
    df["label"] = pd.factorize(df["class_name"], sort=True)[0]
    _split(df, validation_classes, n_queries, seed)
    check_dataframe(df, folder)
    return df


def _check_name(class_dir: Path) -> None:
    name = class_dir.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DatasetFormatError(
            f"The class folder {name!r} in {class_dir.parent} has a name that is "
            "not valid UTF-8, so it cannot be stored as a path: rename it."
        ) from None
    if not name.isprintable():
        raise DatasetFormatError(
            f"The class folder {name!r} in {class_dir.parent} has a control "
            "character (such as a line break) in its name, which a CSV of paths "
            "cannot hold: rename it."
        )


def _readable_images(class_dir: Path) -> List[Path]:
    files = sorted(p for p in class_dir.iterdir() if p.is_file())
    images, skipped, broken = [], [], []
    for path in files:
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(path.name)
            continue
        try:
            with Image.open(path) as image:
                image.load()  # decodes every pixel: a cut-off file fails here
            images.append(path)
        except (OSError, UnidentifiedImageError, SyntaxError) as e:
            broken.append(f"{path.name} ({type(e).__name__})")
    if skipped:
        warnings.warn(
            f"Left out {len(skipped)} file(s) in {class_dir} that are not images "
            f"by their extension: {shorten(skipped)}. Images end in "
            f"{', '.join(IMAGE_EXTENSIONS)}.",
            stacklevel=3,
        )
    if broken:
        warnings.warn(
            f"Left out {len(broken)} image(s) in {class_dir} that cannot be read: "
            f"{shorten(broken)}. Open them in an image viewer; re-save or delete "
            "them.",
            stacklevel=3,
        )
    return images


def _split(
    df: pd.DataFrame, validation_classes: Sequence[str], n_queries: int, seed: int
) -> None:
    if isinstance(validation_classes, str):
        validation_classes = [validation_classes]
    unknown = sorted(set(validation_classes) - set(df["class_name"]))
    if unknown:
        raise DatasetFormatError(
            f"Validation classes {shorten(unknown)} are not class folders with "
            "two readable images; the classes are "
            f"{shorten(sorted(set(df.class_name)))}."
        )
    is_val = df["class_name"].isin(validation_classes)
    if is_val.all() or not is_val.any():
        raise DatasetFormatError(
            "Both splits need classes: choose some, but not all, of the classes "
            f"as validation_classes (got {len(set(validation_classes))} of "
            f"{df['class_name'].nunique()})."
        )
    df["split"] = np.where(is_val, "validation", "train")
    rng = np.random.default_rng(seed)
    query = pd.Series(False, index=df.index)
    for _, rows in df[is_val].groupby("class_name"):
        n = min(n_queries, len(rows) - 1)
        query[rng.choice(rows.index.to_numpy(), size=n, replace=False)] = True
    # OML reads is_query/is_gallery on validation rows only, and asserts NaN
    # elsewhere
    df["is_query"] = pd.Series(query, dtype=object).where(is_val, np.nan)
    df["is_gallery"] = pd.Series(~query, dtype=object).where(is_val, np.nan)


def split_queries(
    df: pd.DataFrame, share: float = 0.5, seed: int = 0
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Split a validation dataframe's queries in two (by image, every class on both
    sides), keeping the whole gallery in each: one half to choose a threshold on,
    the other to score it.

    Args:
        df: Validation rows (``is_query``/``is_gallery`` set).
        share: Share of each class's queries in the first half.
        seed: Seed of the split.

    Returns:
        ``(tune, test)``: two dataframes, each with the gallery and its queries.
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, got {share}.")
    queries = df[df["is_query"].astype(bool)]
    if len(queries) < 2:
        raise DatasetFormatError(
            f"Need at least two queries to split, got {len(queries)}."
        )
    rng = np.random.default_rng(seed)
    tune_ids = []
    for _, rows in queries.groupby("label"):
        ids = rng.permutation(rows.index.to_numpy())
        tune_ids += list(ids[: max(1, round(share * len(ids)))])
    gallery = df[df["is_gallery"].astype(bool) & ~df["is_query"].astype(bool)]
    tune = pd.concat([gallery, queries.loc[tune_ids]])
    test = pd.concat([gallery, queries.drop(index=tune_ids)])
    return tune.reset_index(drop=True), test.reset_index(drop=True)
