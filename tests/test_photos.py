"""make_photo_collection, load_photo and photo_transforms: chapter 08's photo folder."""

import json

import pytest
import torch
from PIL import Image

import oml_helpers as h


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    collection = h.make_photo_collection(
        root, photos=["coffee", "camera"], grid=2, n_views=3, n_duplicates=2
    )
    return collection


def test_one_folder_per_tile_with_mixed_files(small):
    assert small.classes == sorted(
        f"{p}_{r}{c}" for p in ("coffee", "camera") for r in "01" for c in "01"
    )
    files = [p for c in small.classes for p in (small.root / c).iterdir()]
    assert len(files) == 8 * 3 + 2  # views and planted copies
    formats, modes, widths = set(), set(), set()
    for path in files:
        with Image.open(path) as image:
            formats.add(image.format)
            modes.add(image.mode)
            widths.add(image.width)
    assert formats == {"JPEG", "PNG"}
    assert {"RGB", "L"} <= modes  # camera is greyscale, coffee colour
    assert len(widths) > 5


def test_planted_copies_exist_next_to_their_originals(small):
    assert len(small.duplicates) == 2
    for original, copy in small.duplicates:
        assert copy.endswith("_copy.jpg") and copy.split("/")[0] == original.split("/")[0]
        with Image.open(small.root / original) as a, Image.open(small.root / copy) as b:
            assert b.width < a.width


def test_same_call_rewrites_nothing_and_is_deterministic(small, tmp_path):
    stamp = (small.root / "collection.json").stat().st_mtime_ns
    again = h.make_photo_collection(
        small.root, photos=["coffee", "camera"], grid=2, n_views=3, n_duplicates=2
    )
    assert (small.root / "collection.json").stat().st_mtime_ns == stamp
    assert again == small
    other = h.make_photo_collection(
        tmp_path, photos=["coffee", "camera"], grid=2, n_views=3, n_duplicates=2
    )
    for c in small.classes:
        for path in (small.root / c).iterdir():
            assert path.read_bytes() == (tmp_path / c / path.name).read_bytes()
    assert other.duplicates == small.duplicates


def test_other_settings_rewrite(small, tmp_path):
    h.make_photo_collection(tmp_path, photos=["coffee"], grid=1, n_views=2, n_duplicates=0)
    h.make_photo_collection(tmp_path, photos=["coffee"], grid=1, n_views=3, n_duplicates=0)
    written = json.loads((tmp_path / "collection.json").read_text())
    assert written["settings"]["n_views"] == 3
    assert len(list((tmp_path / "coffee_00").iterdir())) == 3


def test_fewer_views_or_tiles_leave_nothing_of_the_earlier_collection(tmp_path):
    h.make_photo_collection(tmp_path, photos=["coffee"], grid=2, n_views=4, n_duplicates=0)
    again = h.make_photo_collection(tmp_path, photos=["coffee"], grid=1, n_views=2, n_duplicates=0)
    assert again.classes == ["coffee_00"]
    assert len(list((tmp_path / "coffee_00").iterdir())) == 2  # views 2 and 3 are gone
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["coffee_00"]


def test_the_collection_reads_as_oml_dataframe(small):
    df = h.folder_to_dataframe(small.root, [c for c in small.classes if "camera" in c])
    h.check_dataframe(df, small.root)
    assert df["label"].nunique() == 8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(photos=["lena"]), "Unknown or no photos"),
        (dict(photos=[]), "Unknown or no photos"),
        (dict(grid=0), "grid >= 1"),
        (dict(n_views=1), "n_views >= 2"),
        (dict(n_duplicates=-1), "n_duplicates >= 0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        h.make_photo_collection(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_every_listed_photo_loads(small):
    assert small.credits == {"coffee": "Rachel Michetti; CC0", "camera": "Lav Varshney; CC0"}
    for name in h.photos.PHOTOS:
        image = h.load_photo(name)
        assert min(image.size) >= 150
    with pytest.raises(ValueError, match="Unknown photo 'lena'"):
        h.load_photo("lena")


@pytest.mark.parametrize("train", [True, False])
def test_transforms_bring_any_size_to_one(train):
    transform = h.photo_transforms(train=train, size=32)
    for size, mode in [((300, 40), "RGB"), ((17, 90), "RGB"), ((64, 64), "L")]:
        x = transform(Image.new(mode, size, 200).convert("RGB"))
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_validation_transform_crops_instead_of_squashing():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 50, 100))  # a white band on the left quarter
    x = h.photo_transforms(train=False, size=20)(image)
    # the centre crop leaves the band out; a squash would keep a quarter of it
    assert x.max() < 0
