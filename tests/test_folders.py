"""folder_to_dataframe and split_queries: a folder of class folders as OML's dataframe."""

import os
import warnings

import pandas as pd
import pytest
from PIL import Image

import oml_helpers as h
from oml_helpers.data import DatasetFormatError


def _image(path, size=(20, 12), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=128).save(path)


def _folder(root, classes):
    """root/<class>/<i>.png for each (class, n_images)."""
    for name, n in classes.items():
        for i in range(n):
            _image(root / name / f"{i}.png")
    return root


def test_labels_splits_and_queries(tmp_path):
    root = _folder(tmp_path / "photos", {"b": 4, "a": 3, "c": 5})
    df = h.folder_to_dataframe(root, ["c"], n_queries=2)
    h.check_dataframe(df, root)
    # labels follow the sorted folder names
    assert dict(zip(df.class_name, df.label)) == {"a": 0, "b": 1, "c": 2}
    assert set(df[df.split == "validation"].class_name) == {"c"}
    train = df[df.split == "train"]
    assert train.is_query.isna().all() and train.is_gallery.isna().all()
    val = df[df.split == "validation"]
    assert val.is_query.sum() == 2 and val.is_gallery.sum() == 3
    assert not (val.is_query.astype(bool) & val.is_gallery.astype(bool)).any()
    assert all((root / p).exists() for p in df.path)


def test_queries_leave_one_gallery_image(tmp_path):
    root = _folder(tmp_path / "p", {"a": 3, "b": 2})
    df = h.folder_to_dataframe(root, ["b"], n_queries=5)
    val = df[df.split == "validation"]
    assert val.is_query.sum() == 1 and val.is_gallery.sum() == 1


def test_same_seed_same_queries(tmp_path):
    root = _folder(tmp_path / "p", {"a": 3, "b": 8})
    first = h.folder_to_dataframe(root, ["b"], seed=1)
    assert first.equals(h.folder_to_dataframe(root, ["b"], seed=1))


def test_mixed_formats_and_modes_are_read(tmp_path):
    root = tmp_path / "p"
    _image(root / "a" / "x.jpg", (300, 80), "L")
    _image(root / "a" / "y.PNG", (10, 50), "RGBA")
    _image(root / "b" / "z.jpeg", (64, 64))
    _image(root / "b" / "w.webp", (64, 30))
    df = h.folder_to_dataframe(root, ["b"])
    assert sorted(df.path) == ["a/x.jpg", "a/y.PNG", "b/w.webp", "b/z.jpeg"]


def test_not_an_image_is_left_out_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "b": 2})
    (root / "a" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match=r"not images by their extension: 'notes.txt'"):
        df = h.folder_to_dataframe(root, ["b"])
    assert "a/notes.txt" not in set(df.path)


def test_unreadable_image_is_left_out_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"a": 3, "b": 2})
    (root / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    truncated = (root / "a" / "0.png").read_bytes()[:40]
    (root / "a" / "cut.png").write_bytes(truncated)
    with pytest.warns(UserWarning, match=r"cannot be read: 'broken.jpg .*cut.png"):
        df = h.folder_to_dataframe(root, ["b"])
    assert not set(df.path) & {"a/broken.jpg", "a/cut.png"}


def test_cut_off_jpeg_is_left_out_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "b": 2})
    big = Image.effect_noise((200, 200), 64).convert("RGB")
    big.save(root / "a" / "whole.jpg", quality=90)
    data = (root / "a" / "whole.jpg").read_bytes()
    (root / "a" / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"cannot be read: 'cut.jpg \(OSError\)'"):
        df = h.folder_to_dataframe(root, ["b"])
    assert "a/whole.jpg" in set(df.path) and "a/cut.jpg" not in set(df.path)


def test_empty_class_folder_is_left_out_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "b": 2})
    (root / "empty").mkdir()
    with pytest.warns(UserWarning, match=r"Left out class 'empty': its folder holds no"):
        df = h.folder_to_dataframe(root, ["b"])
    assert "empty" not in set(df.class_name)


def test_class_with_one_image_is_left_out_with_a_warning(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "b": 2, "single": 1})
    with pytest.warns(UserWarning, match=r"Left out class 'single': it has one image"):
        df = h.folder_to_dataframe(root, ["b"])
    assert "single" not in set(df.class_name)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="holds no class folder with two"):
        h.folder_to_dataframe(tmp_path / "empty", ["a"])
    # class folders whose files are all unusable are no better
    (tmp_path / "empty" / "a").mkdir()
    (tmp_path / "empty" / "a" / "x.txt").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetFormatError, match="subfolder of its own"):
            h.folder_to_dataframe(tmp_path / "empty", ["a"])


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        h.folder_to_dataframe(tmp_path / "nowhere", ["a"])


def test_class_name_with_a_line_break_is_an_error(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "bad\nname": 2})
    with pytest.raises(DatasetFormatError, match=r"'bad\\nname'.*rename it"):
        h.folder_to_dataframe(root, ["a"])


@pytest.mark.skipif(os.name != "posix", reason="needs byte file names")
def test_class_name_that_is_not_utf8_is_an_error(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2})
    bad = os.path.join(os.fsencode(root), b"caf\xe9")  # Latin-1, not UTF-8
    os.mkdir(bad)
    for i in range(2):
        Image.new("RGB", (8, 8)).save(os.fsdecode(os.path.join(bad, b"%d.png" % i)))
    with pytest.raises(DatasetFormatError, match="not valid UTF-8.*rename it"):
        h.folder_to_dataframe(root, ["a"])


def test_unknown_or_all_validation_classes_are_errors(tmp_path):
    root = _folder(tmp_path / "p", {"a": 2, "b": 2})
    with pytest.raises(DatasetFormatError, match=r"Validation classes 'zebra'"):
        h.folder_to_dataframe(root, ["zebra"])
    with pytest.raises(DatasetFormatError, match="Both splits need classes"):
        h.folder_to_dataframe(root, ["a", "b"])
    with pytest.raises(DatasetFormatError, match="Both splits need classes"):
        h.folder_to_dataframe(root, [])
    with pytest.raises(ValueError, match="n_queries"):
        h.folder_to_dataframe(root, ["a"], n_queries=0)


def test_a_single_class_name_is_not_read_letter_by_letter(tmp_path):
    root = _folder(tmp_path / "p", {"ab": 3, "b": 2})
    df = h.folder_to_dataframe(root, "ab")
    assert set(df[df.split == "validation"].class_name) == {"ab"}


def test_split_queries_keeps_the_gallery_on_both_sides(tmp_path):
    root = _folder(tmp_path / "p", {"a": 6, "b": 6, "c": 6})
    df = h.folder_to_dataframe(root, ["b", "c"], n_queries=4)
    val = df[df.split == "validation"].reset_index(drop=True)
    tune, test = h.split_queries(val, share=0.5)
    gallery = set(val[val.is_gallery.astype(bool)].path)
    for part in (tune, test):
        assert set(part[part.is_gallery.astype(bool)].path) == gallery
        assert part[part.is_query.astype(bool)].class_name.value_counts().to_dict() == {
            "b": 2,
            "c": 2,
        }
    queries = lambda part: set(part[part.is_query.astype(bool)].path)  # noqa: E731
    assert not queries(tune) & queries(test)
    assert queries(tune) | queries(test) == set(val[val.is_query.astype(bool)].path)


def test_split_queries_bad_input():
    df = pd.DataFrame({"label": [0, 0], "is_query": [True, False],
                       "is_gallery": [False, True]})  # fmt: skip
    with pytest.raises(ValueError, match="share"):
        h.split_queries(df, share=1.0)
    with pytest.raises(DatasetFormatError, match="at least two queries"):
        h.split_queries(df)
