"""A folder of real photographs, laid out as a user's own collection would be
(chapter 08), and the transforms that bring its mixed sizes to one.

The photographs are the ones scikit-image ships in its wheel (``skimage.data``),
so nothing is downloaded. Each photo is cut into a grid of tiles; each tile is one
*thing* (one class), and each view of it is a random crop, flip, brightness and
size, saved as JPEG or PNG, in colour or greyscale: several photos of one object,
as in instance retrieval (OML's Stanford Online Products setting).
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageEnhance, ImageOps
from torchvision import transforms as T

from oml_helpers.data import MEAN_STD

# skimage.data function -> credit and licence, as its docstrings give them.
PHOTOS: Dict[str, str] = {
    "astronaut": "NASA; public domain",
    "camera": "Lav Varshney; CC0",
    "chelsea": "Stefan van der Walt; CC0",
    "clock": "Stefan van der Walt; public domain",
    "coffee": "Rachel Michetti; CC0",
    "coins": "Brooklyn Museum; no known copyright restrictions",
    "hubble_deep_field": "NASA; public domain",
    "immunohistochemistry": "CMMI; no known copyright restrictions",
    "retina": "Mikael Haggstrom; CC0",
    "rocket": "SpaceX; public domain",
    "text": "Wikipedia, Corner.png; public domain",
    "cell": "qpformat comparison data; CC0",
}
MANIFEST = "collection.json"


@dataclass
class PhotoCollection:
    """What ``make_photo_collection`` wrote.

    Attributes:
        root: The folder: ``root/<photo>_<row><col>/<view>.jpg|png``.
        classes: The class folders' names, sorted.
        duplicates: Planted near-duplicates, ``(original, copy)`` paths relative
            to ``root``.
        credits: Photo name -> its credit and licence.
    """

    root: Path
    classes: List[str]
    duplicates: List[Tuple[str, str]]
    credits: Dict[str, str]


def make_photo_collection(
    root: Union[str, Path],
    photos: Sequence[str] = tuple(PHOTOS),
    grid: int = 3,
    n_views: int = 6,
    n_duplicates: int = 6,
    seed: int = 0,
) -> PhotoCollection:
    """Write ``grid x grid`` tiles of each photo, ``n_views`` views of each tile, as
    one folder per tile, and plant ``n_duplicates`` re-encoded copies.

    The output is deterministic; a call on a root that already holds the same
    collection (same arguments) rewrites nothing.

    Args:
        root: Folder to write into (created if needed).
        photos: Names of ``skimage.data`` photos (keys of ``PHOTOS``).
        grid: Tiles per side of each photo.
        n_views: Views per tile, at least 2.
        n_duplicates: Views saved a second time, at 80% of their size as a JPEG of
            quality 60, next to the original (``<view>_copy.jpg``).
        seed: Seed of the random views.

    Returns:
        The ``PhotoCollection``.
    """
    unknown = sorted(set(photos) - set(PHOTOS))
    if unknown or not photos:
        raise ValueError(
            f"Unknown or no photos {unknown}: choose from {sorted(PHOTOS)}."
        )
    if grid < 1 or n_views < 2 or n_duplicates < 0:
        raise ValueError(
            "Need grid >= 1, n_views >= 2 and n_duplicates >= 0, got "
            f"{grid}, {n_views}, {n_duplicates}."
        )
    root = Path(root)
    settings = dict(
        photos=list(photos), grid=grid, n_views=n_views,
        n_duplicates=n_duplicates, seed=seed,
    )  # fmt: skip
    manifest = root / MANIFEST
    if manifest.exists():
        written = json.loads(manifest.read_text())
        if written["settings"] == settings:
            return _collection(root, written)
        _remove_class_folders(root, written["settings"])
    rng = np.random.default_rng(seed)
    views = []
    for photo in photos:
        for name, tile in _tiles(load_photo(photo), grid).items():
            folder = root / f"{photo}_{name}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n_views):
                views.append(
                    _save_view(_random_view(tile, rng), folder / str(i), rng)
                )
    duplicates = []
    for k in rng.choice(
        len(views), size=min(n_duplicates, len(views)), replace=False
    ):
        original = views[int(k)]
        copy = original.with_name(original.stem + "_copy.jpg")
        with Image.open(original) as image:
            small = image.resize((max(8, image.width * 4 // 5),
                                  max(8, image.height * 4 // 5)))  # fmt: skip
            small.save(copy, quality=60)
        duplicates.append([str(p.relative_to(root)) for p in (original, copy)])
    written = dict(settings=settings, duplicates=duplicates)
    manifest.write_text(json.dumps(written, indent=1))
    return _collection(root, written)


def _remove_class_folders(root: Path, settings: dict) -> None:
    """Delete the class folders an earlier call wrote, so that no view of other
    settings stays behind."""
    for photo in settings["photos"]:
        for name in _tiles(Image.new("L", (1, 1)), settings["grid"]):
            shutil.rmtree(root / f"{photo}_{name}", ignore_errors=True)


def _collection(root: Path, written: dict) -> PhotoCollection:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    pairs = [tuple(pair) for pair in written["duplicates"]]
    credits = {photo: PHOTOS[photo] for photo in written["settings"]["photos"]}
    return PhotoCollection(root, classes, pairs, credits)


def load_photo(photo: str) -> Image.Image:
    """One of the ``PHOTOS``, whole, as ``skimage.data`` ships it.

    Args:
        photo: Its name, a key of ``PHOTOS``.

    Returns:
        The photo as a PIL image.
    """
    if photo not in PHOTOS:
        raise ValueError(f"Unknown photo {photo!r}: choose from {sorted(PHOTOS)}.")
    import skimage.data

    return Image.fromarray(getattr(skimage.data, photo)())


def _tiles(image: Image.Image, grid: int) -> Dict[str, Image.Image]:
    w, h = image.size
    return {
        f"{r}{c}": image.crop(
            (c * w // grid, r * h // grid, (c + 1) * w // grid, (r + 1) * h // grid)
        )
        for r in range(grid)
        for c in range(grid)
    }


def _random_view(tile: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = tile.size
    scale, aspect = np.sqrt(rng.uniform(0.5, 1.0)), rng.uniform(0.8, 1.25)
    cw = min(w, int(w * scale * np.sqrt(aspect)))
    ch = min(h, int(h * scale / np.sqrt(aspect)))
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    view = tile.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.7, 1.3))
    side = int(rng.integers(48, 320))
    view = view.resize((side, max(8, side * view.height // view.width)))
    return view.convert("L") if rng.random() < 0.2 else view


def _save_view(view: Image.Image, stem: Path, rng: np.random.Generator) -> Path:
    if rng.random() < 0.5:
        path = stem.with_suffix(".jpg")
        view.save(path, quality=int(rng.integers(30, 95)))
    else:
        path = stem.with_suffix(".png")
        view.save(path)
    return path


def photo_transforms(train: bool, size: int = 48) -> T.Compose:
    """The chapter's image transforms: any size in, ``size x size`` normalised out.

    Validation resizes the short side to ``size`` and crops the centre, so that no
    photo is squashed; training crops a random part instead, flips and changes
    colours, so that the model meets many views of each thing.

    Args:
        train: Training augmentations, or the fixed validation transform.
        size: Side of the square the model sees.

    Returns:
        A torchvision transform from a PIL image to a ``[3, size, size]`` tensor.
    """
    if train:
        first = [
            T.RandomResizedCrop(size, scale=(0.4, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.3, 0.3, 0.3),
        ]
    else:
        first = [T.Resize(size, antialias=True), T.CenterCrop(size)]
    return T.Compose([*first, T.ToTensor(), T.Normalize(*MEAN_STD)])
