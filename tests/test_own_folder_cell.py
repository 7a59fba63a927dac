"""Chapter 08's "your own folder" cell (Colab-only, so nbval skips it) still runs: here on a
small photo collection, with one epoch."""

from pathlib import Path

import nbformat

import oml_helpers as h

CHAPTER = Path(__file__).resolve().parent.parent / "notebooks" / "08_your_own_images.ipynb"


def _cell(cell_id: str) -> str:
    cells = nbformat.read(CHAPTER, as_version=4).cells
    return next(c.source for c in cells if c.id == cell_id)


def test_own_folder_cell_runs_on_a_small_collection(tmp_path, capsys):
    collection = h.make_photo_collection(
        tmp_path, photos=["coffee", "camera", "chelsea"], grid=3, n_views=4, n_duplicates=0
    )
    validation = [c for c in collection.classes if c.startswith("chelsea")]
    names = {"h": h, "collection": collection, "validation_classes": validation}
    exec(_cell("c01").replace("h.silence_known_warnings()", ""), names)
    exec(_cell("c11").split("\n\n\ntrain_set")[0], names)  # the chapter's datasets()
    names.update(collection=collection, validation_classes=validation)
    template = _cell("c37t")
    assert template.startswith("# NBVAL_SKIP") and "epochs=20" in template
    exec(template.replace("epochs=20", "epochs=1"), names)
    printed = capsys.readouterr().out
    assert "'cmc/1': (" in printed and "'map/5': (" in printed
