"""Every OML 4.0 block of the migration page runs (tests/migration_runner.py): the offline
ones in full, the online ones up to their download. Meta-tests: broken pages fail."""

import matplotlib
import pytest
import torch
from migration_runner import NO_NETWORK, PAGE, Block, parse, run

matplotlib.use("Agg")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # zoo weights already cached on this machine would make an online block run
    import oml.utils.io

    monkeypatch.setattr(oml.utils.io, "CKPT_SAVE_ROOT", tmp_path / "checkpoints")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # under a loaded CPU, two threads ran the page 2-3x slower
    yield tmp_path
    torch.set_num_threads(threads)


def test_the_pages_4_0_blocks_run(in_tmp):
    blocks = parse(PAGE.read_text())
    kinds = [b.kind for b in blocks]
    assert kinds.count("online") >= 2 and kinds.count("run") >= 10, kinds
    run(blocks, {})
    assert (in_tmp / "model.ckpt").is_file()


def test_every_2_x_block_has_a_4_0_block_after_it():
    kinds = [b.kind for b in parse(PAGE.read_text())]
    for k, kind in enumerate(kinds):
        if kind == "2.x":
            assert k + 1 < len(kinds) and kinds[k + 1] != "2.x", f"block {k}: no 4.0 side"


def page(*blocks: str) -> str:
    return "\n\n".join(f"% migration: {kind}\n```python\n{code}\n```" for kind, code in blocks)


def test_an_unmarked_or_wrongly_marked_block_is_refused():
    with pytest.raises(ValueError, match="line 1: a python block needs a marker"):
        parse("```python\nx = 1\n```")
    with pytest.raises(ValueError, match="needs a marker"):
        parse("% migration: offline\n```python\nx = 1\n```")


def test_parse_finds_kind_line_and_code():
    blocks = parse("text\n\n" + page(("2.x", "a = 1"), ("run", "b = 2\nc = 3")))
    assert blocks == [Block("2.x", 5, "a = 1"), Block("run", 10, "b = 2\nc = 3")]


def test_a_renamed_argument_in_a_run_block_fails(in_tmp):
    """The page's datasets block with a 2.x-style argument name (``transforms=``)."""
    blocks = parse(PAGE.read_text())
    k = next(k for k, b in enumerate(blocks) if "ImageLabeledDataset(" in b.code)
    broken = blocks[k].code.replace("transform=transform", "transforms=transform")
    assert broken != blocks[k].code
    first = [b for b in blocks[:k] if b.kind == "run"]
    with pytest.raises(TypeError, match="transforms"):
        run([*first, Block("run", blocks[k].line, broken)], {})


def test_a_2_x_block_is_not_run():
    run(parse(page(("2.x", "raise RuntimeError('2.x code ran')"))), {})


def test_an_online_block_must_fail_at_a_download():
    """Passes on a download, fails on a block that runs, fails elsewhere, or raises itself."""
    download = "import urllib.request\nurllib.request.urlopen('http://example.com')"
    run(parse(page(("online", download))), {})
    with pytest.raises(AssertionError, match="ran with the network cut"):
        run(parse(page(("online", "x = 1"))), {})
    with pytest.raises(AssertionError, match="not at a download"):
        run(parse(page(("online", "import oml.utils\noml.utils.nope()"))), {})
    with pytest.raises(AssertionError, match="not raised inside a call"):
        run(parse(page(("online", f"raise OSError({NO_NETWORK!r})"))), {})


def test_the_page_online_blocks_are_oml_downloads():
    online = [b.code for b in parse(PAGE.read_text()) if b.kind == "online"]
    assert any("get_mock_images_dataset(" in code for code in online)
    assert any("from_pretrained(" in code for code in online)
