"""The Colab badge and set-up cell: right targets, inert outside Colab, and working inside a
Colab-like runtime."""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from oml_helpers import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _sync_module():
    spec = importlib.util.spec_from_file_location(
        "sync_notebooks", ROOT / "scripts" / "sync_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell(path: Path, cell_id: str) -> nbformat.NotebookNode:
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.id == cell_id]
    assert len(cells) == 1, f"{path.name} has {len(cells)} cells with id {cell_id}"
    return cells[0]


def test_notebooks_are_in_sync_with_config():
    sync = _sync_module()
    for path in NOTEBOOKS:
        expected = [(c.id, c.source) for c in sync.synced_cells(path)]
        actual = [(c.id, c.source) for c in nbformat.read(path, as_version=4).cells]
        assert (
            actual == expected
        ), f"{path.name} is out of date: run python scripts/sync_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_badge_opens_this_notebook(path):
    sync = _sync_module()
    repo = sync.repository()
    badge = _cell(path, sync.BADGE_ID).source
    slug = repo["url"].removeprefix("https://github.com/")
    blob = f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}"
    # the badge opens the student edition; a second, worded link the full notebook with solutions
    assert badge.startswith(
        f"[![Open the student edition in Colab]({sync.BADGE_IMAGE})]"
        f"({blob}/student/notebooks/{path.name})"
    ), badge
    full = f"({blob}/notebooks/{path.name})"
    assert f"[Open the full notebook, with the solutions, in Colab]{full}" in badge
    setup = _cell(path, sync.SETUP_ID)
    assert f'"{repo["url"]}"' in setup.source and f'"{repo["branch"]}"' in setup.source
    assert setup.metadata.get("tags") == sync.SETUP_TAGS, "the set-up cell is left out of the HTML"


def test_repository_setting_is_validated(tmp_path, monkeypatch):
    sync = _sync_module()
    (tmp_path / "_config.yml").write_text("repository:\n  url: not-a-url\n")
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="repository.url"):
        sync.repository()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_setup_cell_does_nothing_outside_colab(path, tmp_path):
    cell_file = tmp_path / "cell.py"
    cell_file.write_text(_cell(path, _sync_module().SETUP_ID).source)
    result = subprocess.run(
        [sys.executable, "-c", "exec(open('cell.py').read())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert [p.name for p in tmp_path.iterdir()] == ["cell.py"], "the cell wrote files outside Colab"


def test_in_colab_false_here():
    assert colab.in_colab() is False


def test_install_asks_pip_for_missing_packages_only(monkeypatch):
    installed = {name: version for name, version in colab.PINNED.items()}
    installed.update({"numpy": "2.1.3", "torch": "2.14.1", "torchvision": "0.29.2", "gdown": "5.0"})
    installed["pytorch-lightning"] = "2.6.0"  # Colab-like: another Lightning is there
    monkeypatch.setattr(colab, "_version", lambda name: installed.get(name, ""))
    monkeypatch.setattr(colab, "IMPORTS", ("json",))
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    report = colab.install(run=run)
    (cmd,) = calls
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "--quiet"] and "--no-deps" in cmd
    assert "pytorch-lightning==2.1.2" in cmd and "open-metric-learning==4.0.0" not in cmd
    assert not any(
        c.startswith("gdown") for c in cmd
    ), "an installed IF_MISSING package must be kept"
    assert not any(c.startswith(("numpy", "torch")) for c in cmd)
    assert any("no runtime restart needed" in line for line in report)


@pytest.mark.parametrize("has_pkg_resources", [True, False])
def test_setuptools_is_installed_only_where_pkg_resources_is_gone(monkeypatch, has_pkg_resources):
    monkeypatch.setattr(
        colab, "_version", lambda name: colab.PINNED.get(name) or colab.IF_MISSING.get(name, "")
    )
    monkeypatch.setattr(
        colab, "_has_module", lambda name: has_pkg_resources or name != "pkg_resources"
    )
    expected = [] if has_pkg_resources else [colab.SETUPTOOLS_WITH_PKG_RESOURCES]
    assert colab.packages_to_install() == expected


def test_install_reports_pip_failure_and_failed_imports(monkeypatch):
    monkeypatch.setattr(colab, "packages_to_install", lambda: ["open-metric-learning==4.0.0"])
    failing = lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: no such version")  # noqa: E731
    with pytest.raises(RuntimeError, match="no such version"):
        colab.install(run=failing)
    monkeypatch.setattr(colab, "packages_to_install", lambda: [])
    monkeypatch.setattr(colab, "IMPORTS", ("json", "no_such_module_xyz"))
    with pytest.raises(RuntimeError, match="no_such_module_xyz"):
        colab.install()


COLAB_LIKE = [  # what Colab ships that matters here: numpy 2 and its own torch
    "numpy==2.1.3",
    "torch==2.14.1",
    "torchvision==0.29.2",
    "pandas==2.2.3",
    "scikit-learn==1.5.2",
    "matplotlib==3.9.2",
    "pillow==10.4.0",
    "requests",
    "tqdm",
    "PyYAML",
    "packaging",
    "typing-extensions",
    "filelock",
    "fsspec",
    "setuptools<81",
]


def _colab_preinstalled() -> Path:
    """Site-packages holding COLAB_LIKE, built once (about 2 minutes, 5 GB) and kept in the user's
    cache.

    It plays the part of Colab's own preinstalled packages, which live outside the environment that
    the set-up installs into. Each test run makes a fresh venv that sees them (a ``.pth`` file), so
    what the set-up installs lands in the fresh venv and the cached packages stay as they are.
    """
    key = hashlib.sha256("\n".join([sys.version, *COLAB_LIKE]).encode()).hexdigest()[:12]
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "oml-book"
        / f"colab-like-{key}"
    )
    if not (cache / "complete").is_file():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        pip = subprocess.run(
            [
                str(cache / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *COLAB_LIKE,
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert pip.returncode == 0, pip.stderr[-3000:]
        (cache / "complete").write_text("\n".join(COLAB_LIKE))
    return _site_packages(cache)


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    assert len(found) == 1, f"expected one site-packages in {venv}, found {found}"
    return found[0]


@pytest.mark.skipif(
    os.environ.get("OML_BOOK_SKIP_COLAB_SIM") == "1", reason="OML_BOOK_SKIP_COLAB_SIM=1"
)
def test_setup_cell_inside_a_colab_like_runtime(tmp_path):
    """A fresh venv with numpy 2 and torch preinstalled, then the set-up cell, then the chapters'
    imports."""
    preinstalled = _colab_preinstalled()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (_site_packages(venv) / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")
    python = str(venv / "bin" / "python")

    book = tmp_path / "oml-book"  # stands for the clone the cell makes
    shutil.copytree(
        ROOT / "oml_helpers", book / "oml_helpers", ignore=shutil.ignore_patterns("__pycache__")
    )
    cell = _cell(NOTEBOOKS[0], _sync_module().SETUP_ID).source.replace(
        "/content/oml-book", str(book)
    )
    script = textwrap.dedent(
        """
        import sys, types
        sys.modules["google"] = types.ModuleType("google")
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        exec(compile(open(sys.argv[1]).read(), "colab-setup", "exec"))
        import numpy, torch
        import oml_helpers as h
        from oml.lightning import ExtractorModule
        from oml.losses import TripletLossWithMiner
        df = h.make_digits_dataset(sys.argv[2])
        train, val = h.make_datasets(df, sys.argv[2])
        model = h.SmallCNN()
        h.train_extractor(model, train, epochs=2)
        metrics, _ = h.retrieval_metrics(model, val)
        photos = h.make_photo_collection(
            sys.argv[2] + "_photos", photos=["coffee"], grid=1, n_views=2, n_duplicates=0
        )
        print("photos", photos.classes)
        print("numpy", numpy.__version__, "cmc/1", round(metrics["cmc/1"], 3))
        """
    )
    (tmp_path / "cell.py").write_text(cell)
    (tmp_path / "run.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [python, str(tmp_path / "run.py"), str(tmp_path / "cell.py"), str(tmp_path / "digits")],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no runtime restart needed" in result.stdout
    assert "numpy 2.1.3" in result.stdout, "the set-up changed Colab's numpy"
    assert "photos ['coffee_00']" in result.stdout, "chapter 08's photos (scikit-image) failed"
