"""Saving and loading extractor weights: round trips, Lightning checkpoints, and every kind of
bad file."""

import hashlib
import os
import random

import pytest
import torch

from oml_helpers import (
    CheckpointError,
    SmallCNN,
    best_checkpoint,
    load_extractor,
    read_checkpoint,
    save_extractor,
)


def _model(seed: int = 0, **kwargs) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(**kwargs)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_keeps_weights_and_meta_and_leaves_the_file_alone(tmp_path):
    source, target = _model(0), _model(1)
    path = save_extractor(
        source,
        tmp_path / "sub" / "w.pt",
        meta={"epoch": 3, "scores": {"map@5": 0.9}, "tags": ["a"]},
    )
    before = _digest(path)
    assert not _same_weights(source, target)
    meta = load_extractor(path, target)
    assert meta == {"epoch": 3, "scores": {"map@5": 0.9}, "tags": ["a"]}
    assert _same_weights(source, target)
    assert _digest(path) == before
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]  # no temporary file left behind


def test_lightning_checkpoint_prefix_is_stripped(tmp_path):
    source, target = _model(0), _model(1)
    ckpt = {
        "pytorch-lightning_version": "2.1.2",
        "epoch": 4,
        "global_step": 8,
        "state_dict": {f"model.{k}": v for k, v in source.state_dict().items()},
    }
    torch.save(ckpt, tmp_path / "x.ckpt")
    assert load_extractor(tmp_path / "x.ckpt", target) == {"epoch": 4, "global_step": 8}
    assert _same_weights(source, target)


def test_plain_state_dict_loads(tmp_path):
    source, target = _model(0), _model(1)
    torch.save(source.state_dict(), tmp_path / "sd.pt")
    assert load_extractor(tmp_path / "sd.pt", target) == {}
    assert _same_weights(source, target)


def test_other_architecture_names_the_mismatch_and_keeps_the_model(tmp_path):
    path = save_extractor(_model(0), tmp_path / "w.pt")
    small = _model(1, feat_dim=32)
    untouched = {k: v.clone() for k, v in small.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"shape mismatch.*head\.weight \(64, 64\) vs \(32, 64\)"
    ):
        load_extractor(path, small)
    assert all(torch.equal(untouched[k], v) for k, v in small.state_dict().items())

    with pytest.raises(CheckpointError, match=r"missing weight.*unexpected backbone") as error:
        load_extractor(path, torch.nn.Linear(2, 2))
    assert "saved from a SmallCNN" in str(error.value)


def test_missing_empty_truncated_and_corrupted_files(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint file"):
        load_extractor(tmp_path / "absent.pt", _model())
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_extractor(tmp_path / "empty.pt", _model())
    data = save_extractor(_model(), tmp_path / "w.pt").read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupted|corrupted"):
            load_extractor(tmp_path / "cut.pt", _model())
    for junk in (
        random.Random(0).randbytes(300),
        b"not a checkpoint" * 10,
        b"\x80\x02}q\x00(X\x01",
    ):
        (tmp_path / "junk.pt").write_bytes(junk)
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            read_checkpoint(tmp_path / "junk.pt")


def test_not_a_checkpoint(tmp_path):
    torch.save({"lr": 0.1, "epochs": 3}, tmp_path / "settings.pt")
    with pytest.raises(CheckpointError, match=r"not a model checkpoint.*\['epochs', 'lr'\]"):
        load_extractor(tmp_path / "settings.pt", _model())
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a model checkpoint.*list"):
        load_extractor(tmp_path / "list.pt", _model())


class _MakesADirectory:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": {}, "x": _MakesADirectory(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only=True refuses it"):
        load_extractor(tmp_path / "evil.pt", _model())
    assert not marker.exists()
    torch.load(
        tmp_path / "evil.pt", weights_only=False
    )  # the danger is real: the unsafe load runs it
    assert marker.is_dir()


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = save_extractor(_model(0), tmp_path / "w.pt", meta={"v": 1})
    before = _digest(path)

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_extractor(_model(1), path)
    assert _digest(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="meta\\['t'\\] is a Tensor"):
        save_extractor(_model(), tmp_path / "w.pt", meta={"t": torch.tensor(1.0)})
    with pytest.raises(TypeError, match="non-string key"):
        save_extractor(_model(), tmp_path / "w.pt", meta={1: "a"})
    with pytest.raises(TypeError, match="torch.nn.Module"):
        save_extractor({"weight": torch.zeros(1)}, tmp_path / "w.pt")
    assert not (tmp_path / "w.pt").exists()


def _fake_lightning_ckpt(path, monitor, best, step, current=0.5):
    """A file shaped like ModelCheckpoint's: its state records ``best`` (a path) as the best so
    far."""
    state = {"monitor": monitor, "best_model_path": best, "current_score": torch.tensor(current)}
    torch.save(
        {
            "pytorch-lightning_version": "2.1.2",
            "global_step": step,
            "state_dict": {},
            "callbacks": {f"ModelCheckpoint{{'monitor': '{monitor}'}}": state},
        },
        path,
    )


def test_best_checkpoint_reads_the_newest_state_not_the_file_names(tmp_path):
    # A template whose names sort after "last": last.ckpt (step 12) and the best file (step 10)
    # store the same current_score, the latest top-k save's; the old helper returned last.ckpt.
    best = "runs/elsewhere/map5=0.934.ckpt"  # relative to the run's working directory
    _fake_lightning_ckpt(
        tmp_path / "map5=0.934.ckpt", "OVERALL/map/5", best, step=10, current=0.934
    )
    _fake_lightning_ckpt(tmp_path / "last.ckpt", "OVERALL/map/5", best, step=12, current=0.934)
    assert best_checkpoint(tmp_path, "OVERALL/map/5") == tmp_path / "map5=0.934.ckpt"


def test_best_checkpoint_follows_a_resumed_run(tmp_path):
    # an older file still in the folder recorded itself; the newest state names a later file
    _fake_lightning_ckpt(
        tmp_path / "z-epoch01.ckpt", "OVERALL/map/5", "x/z-epoch01.ckpt", step=2, current=0.99
    )
    _fake_lightning_ckpt(tmp_path / "a-epoch09.ckpt", "OVERALL/map/5", "x/a-epoch09.ckpt", step=18)
    _fake_lightning_ckpt(tmp_path / "last.ckpt", "OVERALL/map/5", "x/a-epoch09.ckpt", step=22)
    assert best_checkpoint(tmp_path, "OVERALL/map/5").name == "a-epoch09.ckpt"


def test_best_checkpoint_bad_input(tmp_path):
    _fake_lightning_ckpt(tmp_path / "last.ckpt", "OVERALL/map/5", "runs/gone.ckpt", step=4)
    with pytest.raises(CheckpointError, match=r"records runs/gone.ckpt.*gone.ckpt is not in"):
        best_checkpoint(tmp_path, "OVERALL/map/5")
    with pytest.raises(CheckpointError, match=r"scored on 'loss'; monitored: \['OVERALL/map/5'\]"):
        best_checkpoint(tmp_path, "loss")
    with pytest.raises(CheckpointError, match="No folder"):
        best_checkpoint(tmp_path / "nope", "OVERALL/map/5")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="monitored: none"):
        best_checkpoint(empty, "x")


def test_saved_file_is_readable_by_others_under_the_usual_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = save_extractor(_model(), tmp_path / "w.pt")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
