"""Chapter 08's two "your own folder" cells (Colab-only, so nbval skips them) still run: here
on a small photo collection, with two training steps."""

import ast
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest

import oml_helpers as h

CHAPTER = Path(__file__).resolve().parent.parent / "notebooks" / "08_your_own_images.ipynb"


def _cell(cell_id: str) -> str:
    cells = nbformat.read(CHAPTER, as_version=4).cells
    return next(c.source for c in cells if c.id == cell_id)


def _functions(cell_id: str) -> str:
    """The function definitions of a chapter cell, without its other statements."""
    source = _cell(cell_id)
    return "\n\n".join(
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef)
    )


def test_own_folder_cells_run_on_a_small_collection(tmp_path, capsys):
    collection = h.make_photo_collection(
        tmp_path, photos=["coffee", "camera", "chelsea"], grid=3, n_views=4, n_duplicates=0
    )
    validation = [c for c in collection.classes if c.startswith("chelsea")]
    names = {"h": h, "collection": collection, "validation_classes": validation}
    chapter_set_up = _cell("c01").replace("h.silence_known_warnings()", "")
    # the deterministic mode would stay on for the rest of the test session
    deterministic = "torch.use_deterministic_algorithms(not torch.cuda.is_available())"
    assert deterministic in chapter_set_up
    exec(chapter_set_up.replace(deterministic, ""), names)
    for cell_id in ("c11", "c23", "c28"):  # datasets(), embed(), all_pairs()
        exec(_functions(cell_id), names)
    names.update(collection=collection, validation_classes=validation, DATA_ROOT=tmp_path)
    template = _cell("c37t")
    assert template.startswith("# NBVAL_SKIP") and "MY_STEPS = 180" in template
    exec(template.replace("MY_STEPS = 180", "MY_STEPS = 2"), names)
    printed = capsys.readouterr().out
    # 18 training classes in batches of 8: 2 steps per epoch, so one epoch
    assert "training: 1 epochs x 2 steps" in printed
    assert "'cmc/1': (" in printed and "'map/5': (" in printed
    # step 2 drew the ten closest pairs: two images each, titled with paths in the folder
    pairs_fig = names["pairs_fig"]
    drawn = [ax for ax in pairs_fig.axes if ax.images]
    assert len(drawn) == 20
    titles = [ax.get_title().split("\n")[0] for ax in drawn]
    assert all((collection.root / title).is_file() for title in titles)
    assert all(ax.get_title().split("\n")[1].startswith("d=") for ax in drawn[1::2])
    plt.close("all")
    steps_5_6 = _cell("c37u")
    assert steps_5_6.startswith("# NBVAL_SKIP")
    exec(steps_5_6, names)
    printed = capsys.readouterr().out
    assert "gallery images in my_gallery.db" in printed
    assert "on the test queries FMR 0." in printed and ", FNMR " in printed
    with h.EmbeddingStore.open(tmp_path / "my_gallery.db") as store:
        assert len(store) == len(names["my_gallery"]) > 0


def _chapter_names(collection, validation, tmp_path) -> dict:
    """The names the own-folder cells use, from the chapter's set-up and helper cells."""
    names = {"h": h, "collection": collection, "validation_classes": validation}
    chapter_set_up = _cell("c01").replace("h.silence_known_warnings()", "")
    deterministic = "torch.use_deterministic_algorithms(not torch.cuda.is_available())"
    exec(chapter_set_up.replace(deterministic, ""), names)
    for cell_id in ("c11", "c23", "c28"):
        exec(_functions(cell_id), names)
    names.update(collection=collection, validation_classes=validation, DATA_ROOT=tmp_path)
    return names


def test_own_folder_cell_stops_with_one_training_class(tmp_path):
    collection = h.make_photo_collection(
        tmp_path, photos=["coffee"], grid=2, n_views=3, n_duplicates=0
    )
    validation = collection.classes[1:]  # one class left to train on
    names = _chapter_names(collection, validation, tmp_path)
    with pytest.raises(ValueError, match="1 training class: training needs at least two"):
        exec(_cell("c37t").replace("MY_STEPS = 180", "MY_STEPS = 2"), names)


def test_own_folder_cell_stops_when_no_query_is_left_to_test(tmp_path):
    # two views per class: one query per validation class, and it goes to tuning
    collection = h.make_photo_collection(
        tmp_path, photos=["coffee", "camera"], grid=2, n_views=2, n_duplicates=0
    )
    validation = [c for c in collection.classes if c.startswith("camera")]
    names = _chapter_names(collection, validation, tmp_path)
    exec(_cell("c37t").replace("MY_STEPS = 180", "MY_STEPS = 2"), names)
    with pytest.raises(ValueError, match="No query is left to test the threshold on"):
        exec(_cell("c37u"), names)
