"""Tests of oml_helpers.data: the digits dataset, the dataframe check and the split."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from oml.const import IS_GALLERY_COLUMN, IS_QUERY_COLUMN, LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN
from oml_helpers import (
    DatasetFormatError,
    check_dataframe,
    default_data_root,
    make_digits_dataset,
    split_dataframe,
)
from oml_helpers.data import REQUIRED_COLUMNS

COLUMNS = [LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN]


@pytest.fixture(scope="module")
def sklearn_digits():
    return load_digits()


@pytest.fixture(scope="module")
def second_root(tmp_path_factory):
    """Another copy of the default dataset, written by a separate call: ``(root, returned_df)``."""
    root = tmp_path_factory.mktemp("digits_again")
    return root, make_digits_dataset(root)


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _mtimes(root):
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in _files(root)}


# ---------------------------------------------------------------------------------------
# make_digits_dataset


def test_returned_dataframe_has_columns_and_dtypes(second_root):
    _, df = second_root
    assert list(df.columns) == COLUMNS
    assert pd.api.types.is_integer_dtype(df[LABELS_COLUMN])
    assert all(isinstance(p, str) for p in df[PATHS_COLUMN])
    assert set(df[SPLIT_COLUMN]) == {"train", "validation"}
    train = df[df[SPLIT_COLUMN] == "train"]
    val = df[df[SPLIT_COLUMN] == "validation"]
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        assert train[column].isna().all(), f"training rows must leave {column} empty"
        assert (
            val[column].map(lambda v: v is True or v is np.True_).all()
        ), f"every validation row is a {column}"


def test_one_row_per_sklearn_digit(second_root, sklearn_digits):
    _, df = second_root
    assert len(df) == len(sklearn_digits.target)
    assert df[PATHS_COLUMN].is_unique
    # images/<digit>/<index>.png: the folder is the label and the index points at the sklearn image
    for path, label in zip(df[PATHS_COLUMN], df[LABELS_COLUMN]):
        folder, name = path.split("/")[1:]
        assert int(folder) == label == sklearn_digits.target[int(name[:-4])]


def test_csv_on_disk_matches_returned_dataframe(second_root):
    root, df = second_root
    from_csv = pd.read_csv(root / "df.csv")
    assert list(from_csv.columns) == COLUMNS
    pd.testing.assert_series_equal(from_csv[LABELS_COLUMN], df[LABELS_COLUMN])
    pd.testing.assert_series_equal(from_csv[PATHS_COLUMN], df[PATHS_COLUMN])
    pd.testing.assert_series_equal(from_csv[SPLIT_COLUMN], df[SPLIT_COLUMN])
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        assert (from_csv[column].isna() == df[column].isna()).all()


def test_default_split_is_open_set(digits_df):
    train_labels = set(digits_df.loc[digits_df[SPLIT_COLUMN] == "train", LABELS_COLUMN])
    val_labels = set(digits_df.loc[digits_df[SPLIT_COLUMN] == "validation", LABELS_COLUMN])
    assert train_labels == {0, 1, 2, 3, 4}
    assert val_labels == {5, 6, 7, 8, 9}
    assert not train_labels & val_labels


@pytest.mark.parametrize("train_digits", [(7, 2, 9), [1, 1, 3], range(9)])
def test_custom_train_digits(tmp_path, train_digits):
    df = make_digits_dataset(tmp_path, train_digits=train_digits)
    expected_train = set(train_digits)
    train_labels = set(df.loc[df[SPLIT_COLUMN] == "train", LABELS_COLUMN])
    val_labels = set(df.loc[df[SPLIT_COLUMN] == "validation", LABELS_COLUMN])
    assert train_labels == expected_train
    assert val_labels == set(range(10)) - expected_train
    check_dataframe(df, tmp_path)


def test_every_path_is_an_image_of_the_requested_size(digits_root, digits_df):
    for path in digits_df[PATHS_COLUMN]:
        file = digits_root / path
        assert file.is_file(), file
        with Image.open(file) as image:
            assert image.format == "PNG"
            assert image.size == (64, 64)
            assert image.mode == "L"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """The dataset written at 8x8, the size of the originals."""
    root = tmp_path_factory.mktemp("digits_8px")
    make_digits_dataset(root, image_size=8)
    return root


def test_8px_images_hold_the_sklearn_pixels(tiny_root, sklearn_digits):
    df = pd.read_csv(tiny_root / "df.csv")
    for index in (0, 1, 500, len(df) - 1):
        path = df[PATHS_COLUMN][index]
        sk_index = int(path.split("/")[-1][:-4])
        expected = np.round(sklearn_digits.images[sk_index] * 255 / 16).astype(
            np.uint8
        )  # values 0..16 -> 0..255
        with Image.open(tiny_root / path) as image:
            assert image.size == (8, 8)
            np.testing.assert_array_equal(np.asarray(image), expected)


def test_other_image_size_on_the_same_root_rewrites_the_images(tiny_root):
    df = make_digits_dataset(tiny_root, image_size=12)
    for path in df[PATHS_COLUMN].iloc[::300]:
        with Image.open(tiny_root / path) as image:
            assert image.size == (12, 12)


def test_deterministic_across_roots(digits_root, second_root, sklearn_digits):
    root, _ = second_root
    files_a = [p.relative_to(digits_root) for p in _files(digits_root)]
    files_b = [p.relative_to(root) for p in _files(root)]
    assert files_a == files_b
    assert len(files_a) == len(sklearn_digits.target) + 1  # the images and df.csv
    for relative in files_a:
        assert (digits_root / relative).read_bytes() == (root / relative).read_bytes(), relative


def test_second_call_rewrites_no_image(second_root):
    root, first_df = second_root
    before = _mtimes(root)
    df = make_digits_dataset(root)
    after = _mtimes(root)
    pd.testing.assert_frame_equal(df, first_df)
    changed = sorted(p for p in before if p.endswith(".png") and after[p] != before[p])
    assert changed == []
    assert set(after) == set(before)


def test_second_call_rewrites_nothing_not_even_the_csv(second_root):
    """The docstring promises that a call on a root already holding the dataset rewrites nothing."""
    root, _ = second_root
    csv = root / "df.csv"
    content = csv.read_bytes()
    before = csv.stat().st_mtime_ns
    make_digits_dataset(root)
    assert csv.read_bytes() == content
    assert (
        csv.stat().st_mtime_ns == before
    ), "df.csv was rewritten although its content did not change"


def test_written_dataset_passes_check(digits_root, digits_df):
    check_dataframe(digits_df, digits_root)


@pytest.mark.parametrize(
    "train_digits",
    [(3,), (4, 4), tuple(range(10)), (0, 10), (-1, 2), ()],
    ids=["one-digit", "one-distinct-digit", "all-ten", "ten", "negative", "none"],
)
def test_bad_train_digits_raise(tmp_path, train_digits):
    with pytest.raises(
        ValueError, match=r"train_digits=.*between 2 and 9 distinct digits in 0\.\.9"
    ):
        make_digits_dataset(tmp_path, train_digits=train_digits)
    assert list(tmp_path.iterdir()) == [], "nothing may be written before the arguments are checked"


@pytest.mark.parametrize("image_size", [7, 1, 0, -64])
def test_too_small_image_size_raises(tmp_path, image_size):
    with pytest.raises(ValueError, match=rf"image_size={image_size} is smaller than the 8x8"):
        make_digits_dataset(tmp_path, image_size=image_size)
    assert list(tmp_path.iterdir()) == []


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("OML_BOOK_DATA", raising=False)
    assert str(default_data_root()) == "data"
    monkeypatch.setenv("OML_BOOK_DATA", str(tmp_path / "somewhere"))
    assert default_data_root() == tmp_path / "somewhere"
    assert not (tmp_path / "somewhere").exists()


# ---------------------------------------------------------------------------------------
# check_dataframe


def test_check_accepts_dataframe_csv_and_csv_path(digits_root, second_root):
    root, returned_df = second_root
    check_dataframe(returned_df, root)  # as returned, with None in the training rows
    check_dataframe(
        pd.read_csv(digits_root / "df.csv"), digits_root
    )  # read back: NaN instead of None
    check_dataframe(digits_root / "df.csv", digits_root)  # a Path
    check_dataframe(str(digits_root / "df.csv"), str(digits_root))  # a str


def test_check_accepts_absolute_paths_without_root(digits_root, digits_df):
    digits_df[PATHS_COLUMN] = [str(digits_root / p) for p in digits_df[PATHS_COLUMN]]
    check_dataframe(digits_df)


def test_check_does_not_modify_its_input(digits_root, digits_df):
    original = digits_df.copy(deep=True)
    check_dataframe(digits_df, digits_root)
    pd.testing.assert_frame_equal(digits_df, original)
    # nor when it fails (on the last check, so that every step ran)
    digits_df.loc[0, PATHS_COLUMN] = "images/0/missing.png"
    broken = digits_df.copy(deep=True)
    with pytest.raises(DatasetFormatError):
        check_dataframe(digits_df, digits_root)
    pd.testing.assert_frame_equal(digits_df, broken)


def test_check_accepts_query_only_and_gallery_only_rows(digits_root, digits_df):
    val = digits_df.index[digits_df[SPLIT_COLUMN] == "validation"]
    digits_df[IS_QUERY_COLUMN] = digits_df[IS_QUERY_COLUMN].astype(object)
    digits_df[IS_GALLERY_COLUMN] = digits_df[IS_GALLERY_COLUMN].astype(object)
    # alternate: even rows are queries only, odd rows gallery items only; every label keeps both
    # kinds
    digits_df.loc[val[::2], IS_GALLERY_COLUMN] = False
    digits_df.loc[val[1::2], IS_QUERY_COLUMN] = False
    check_dataframe(digits_df, digits_root)


def test_format_error_is_a_value_error():
    assert issubclass(DatasetFormatError, ValueError)


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_column(digits_root, digits_df, column):
    with pytest.raises(DatasetFormatError, match=rf"Missing column\(s\) \['{column}'\]"):
        check_dataframe(digits_df.drop(columns=[column]), digits_root)


def test_float_labels(digits_root, digits_df):
    digits_df[LABELS_COLUMN] = digits_df[LABELS_COLUMN].astype(float)
    with pytest.raises(
        DatasetFormatError, match=r"'label' must hold integers, found dtype float64"
    ):
        check_dataframe(digits_df, digits_root)


def test_string_labels(digits_root, digits_df):
    digits_df[LABELS_COLUMN] = "digit_" + digits_df[LABELS_COLUMN].astype(str)
    with pytest.raises(
        DatasetFormatError, match=r"'label' must hold integers.*'digit_0'.*factorize"
    ):
        check_dataframe(digits_df, digits_root)


def test_bad_split_value(digits_root, digits_df):
    digits_df.loc[3, SPLIT_COLUMN] = "test"
    with pytest.raises(
        DatasetFormatError, match=r"'split' has \['test'\]; only 'train' and 'validation'"
    ):
        check_dataframe(digits_df, digits_root)


@pytest.mark.parametrize("column", [IS_QUERY_COLUMN, IS_GALLERY_COLUMN])
def test_training_row_with_query_or_gallery_flag(digits_root, digits_df, column):
    train_index = digits_df.index[digits_df[SPLIT_COLUMN] == "train"][2]
    digits_df[column] = digits_df[column].astype(object)
    digits_df.loc[train_index, column] = True
    with pytest.raises(
        DatasetFormatError,
        match=rf"1 training row\(s\) have a value in '{column}' \(first at index {train_index}\)",
    ):
        check_dataframe(digits_df, digits_root)


def test_training_label_with_a_single_image(digits_root, digits_df):
    train_index = digits_df.index[digits_df[SPLIT_COLUMN] == "train"][0]
    digits_df.loc[train_index, LABELS_COLUMN] = 42
    with pytest.raises(
        DatasetFormatError, match=r"Training label\(s\) \[42\] have a single image.*BalanceSampler"
    ):
        check_dataframe(digits_df, digits_root)


def test_validation_row_with_empty_is_query(digits_root, digits_df):
    val_index = digits_df.index[digits_df[SPLIT_COLUMN] == "validation"][5]
    digits_df.loc[val_index, IS_QUERY_COLUMN] = np.nan
    with pytest.raises(
        DatasetFormatError, match=r"'is_query' must be True or False on every validation row.*nan"
    ):
        check_dataframe(digits_df, digits_root)


def test_validation_flags_as_strings(digits_root, digits_df):
    val = digits_df[SPLIT_COLUMN] == "validation"
    digits_df[IS_GALLERY_COLUMN] = digits_df[IS_GALLERY_COLUMN].astype(object)
    digits_df.loc[val, IS_GALLERY_COLUMN] = "True"
    with pytest.raises(DatasetFormatError, match=r"'is_gallery' must be True or False.*\"'True'\""):
        check_dataframe(digits_df, digits_root)


def test_validation_row_neither_query_nor_gallery(digits_root, digits_df):
    val_index = digits_df.index[digits_df[SPLIT_COLUMN] == "validation"][7]
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        digits_df[column] = digits_df[column].astype(object)
        digits_df.loc[val_index, column] = False
    with pytest.raises(
        DatasetFormatError,
        match=(
            r"1 validation row\(s\) are neither query nor gallery "
            rf"\(first at index {val_index}\)"
        ),
    ):
        check_dataframe(digits_df, digits_root)


def test_query_whose_label_has_a_single_image(digits_root, digits_df):
    val_index = digits_df.index[digits_df[SPLIT_COLUMN] == "validation"][3]
    digits_df.loc[val_index, LABELS_COLUMN] = (
        99  # query and gallery at once: its only match is itself
    )
    with pytest.raises(
        DatasetFormatError, match=rf"Query row\(s\) \[{val_index}\] have no other gallery image"
    ):
        check_dataframe(digits_df, digits_root)


def test_queries_whose_label_has_no_gallery_at_all(digits_root, digits_df):
    val_rows = digits_df.index[digits_df[SPLIT_COLUMN] == "validation"][:2]
    digits_df[IS_GALLERY_COLUMN] = digits_df[IS_GALLERY_COLUMN].astype(object)
    digits_df.loc[val_rows, LABELS_COLUMN] = 77
    digits_df.loc[val_rows, IS_GALLERY_COLUMN] = False  # two queries of label 77, nothing to find
    expected = str(list(val_rows)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(
        DatasetFormatError, match=rf"Query row\(s\) {expected} have no other gallery image"
    ):
        check_dataframe(digits_df, digits_root)


def test_missing_image_file(digits_root, digits_df):
    digits_df.loc[10, PATHS_COLUMN] = "images/0/not_there.png"
    with pytest.raises(
        DatasetFormatError,
        match=r"1 image file\(s\) do not exist, e\.g\. \['images/0/not_there\.png'\]",
    ):
        check_dataframe(digits_df, digits_root)


def test_relative_paths_without_root_hint(digits_df, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that the relative paths cannot resolve by chance
    with pytest.raises(
        DatasetFormatError, match=r"1797 in all.*Paths are relative: pass dataset_root"
    ):
        check_dataframe(digits_df)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_dataset_root_not_a_folder(digits_root, digits_df, kind):
    root = digits_root / "nowhere" if kind == "missing" else digits_root / "df.csv"
    with pytest.raises(DatasetFormatError, match=rf"dataset_root {root} is not a folder"):
        check_dataframe(digits_df, root)


@pytest.mark.parametrize(
    "make_empty", [lambda df: df.iloc[0:0], lambda df: pd.DataFrame()], ids=["no-rows", "bare"]
)
def test_empty_dataframe(digits_root, digits_df, make_empty):
    with pytest.raises(DatasetFormatError, match="The dataframe has no rows"):
        check_dataframe(make_empty(digits_df), digits_root)


@pytest.mark.parametrize(
    "value, type_name", [([1, 2], "list"), ({"label": [1]}, "dict"), (None, "NoneType")]
)
def test_not_a_dataframe(value, type_name):
    with pytest.raises(
        DatasetFormatError, match=rf"Expected a pandas DataFrame or a \.csv path, got {type_name}"
    ):
        check_dataframe(value)


def test_nonexistent_csv_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DatasetFormatError, match=rf"No dataframe file at {path}"):
        check_dataframe(path)
    with pytest.raises(DatasetFormatError, match="No dataframe file at"):
        check_dataframe(str(tmp_path))  # a folder is not a csv file either


def test_oml_own_check_is_wrapped(digits_root, digits_df):
    digits_df["x_1"] = 0  # a bounding-box column without the other three: only OML's check knows
    with pytest.raises(DatasetFormatError, match="OML's format check failed") as info:
        check_dataframe(digits_df, digits_root)
    assert isinstance(info.value.__cause__, AssertionError)


# ---------------------------------------------------------------------------------------
# split_dataframe


def test_split_dataframe(digits_df):
    original = digits_df.copy(deep=True)
    train, val = split_dataframe(digits_df)
    pd.testing.assert_frame_equal(digits_df, original)
    assert (train[SPLIT_COLUMN] == "train").all()
    assert (val[SPLIT_COLUMN] == "validation").all()
    assert len(train) + len(val) == len(digits_df)
    assert list(train.index) == list(range(len(train)))
    assert list(val.index) == list(range(len(val)))
    # the rows keep their content and order
    is_train = digits_df[SPLIT_COLUMN] == "train"
    pd.testing.assert_frame_equal(train, digits_df[is_train].reset_index(drop=True))
    pd.testing.assert_frame_equal(val, digits_df[~is_train].reset_index(drop=True))


def test_split_dataframe_returns_copies(digits_df):
    train, val = split_dataframe(digits_df)
    train.loc[0, LABELS_COLUMN] = -5
    val.loc[0, LABELS_COLUMN] = -6
    assert (digits_df[LABELS_COLUMN] >= 0).all()


def test_split_dataframe_with_one_split_only(digits_df):
    only_train = digits_df[digits_df[SPLIT_COLUMN] == "train"]
    train, val = split_dataframe(only_train)
    assert len(train) == len(only_train)
    assert val.empty
    assert list(val.columns) == list(digits_df.columns)
