"""The book's shipped models: fresh for their recipe, reproducible by it, and refused when damaged
or foreign.

Retraining takes about half a minute per model on two CPU cores; the test command runs these tests
with other kernels than the ones the files were made with (scripts/test.sh), so a pass also shows
that the recipe gives the same model, within the stated tolerance, on another kind of CPU.
"""

import ast
import os
import subprocess
import sys
import warnings

import pytest
import torch

from oml_helpers import CheckpointError, SmallCNN, StaleModelWarning, save_extractor
from oml_helpers import book_models
from oml_helpers.book_models import (
    RECIPES,
    RETRAIN_COMMAND,
    book_model_info,
    compare_metrics,
    evaluate_book_model,
    load_book_model,
    recipe_fingerprint,
    save_book_model,
    train_book_model,
)

NAMES = sorted(RECIPES)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_was_made_by_the_current_recipe(name):
    info = book_model_info(name)
    assert info["fingerprint"] == recipe_fingerprint(name), (
        f"oml_helpers/weights/{RECIPES[name].file} was made by another version of the {name} "
        "recipe (its code, arguments or OML's version changed). Regenerate it: "
        f"{RETRAIN_COMMAND} {name}"
        + (" (retrain digits first: siamese starts from it)" if name == "siamese" else "")
    )
    assert info["recipe"] == name and info["retrain"] == f"{RETRAIN_COMMAND} {name}"


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_gives_its_recorded_metrics(name, digits_root):
    model = load_book_model(name)
    assert not model.training
    measured = evaluate_book_model(name, model, digits_root)
    assert compare_metrics(book_model_info(name)["metrics"], measured, tolerance=1e-3) == []


@pytest.mark.parametrize("name", NAMES)
def test_retrained_model_lies_within_tolerance_of_the_shipped_one(name, digits_root):
    retrained = train_book_model(name, digits_root)
    measured = evaluate_book_model(name, retrained, digits_root)
    shipped = book_model_info(name)["metrics"]
    far = compare_metrics(shipped, measured, RECIPES[name].tolerance)
    assert far == [], f"retraining the {name} model no longer reproduces the shipped one: {far}"


def test_shipped_digits_model_gives_the_same_metrics_with_the_oldest_kernels(digits_root):
    """Inference with a fixed model does not depend on the CPU: SSE4.1-only kernels give the same
    metrics."""
    code = (
        "import json, oml_helpers as h; from oml_helpers.book_models import evaluate_book_model; "
        "print(json.dumps(evaluate_book_model('digits', h.load_book_model('digits'), "
        f"{str(digits_root)!r})))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert compare_metrics(book_model_info("digits")["metrics"], measured, tolerance=1e-4) == []


def test_fingerprint_ignores_docstrings_comments_and_layout(tmp_path, monkeypatch):
    one = tmp_path / "one.py"
    two = tmp_path / "two.py"
    one.write_text('def f(x):\n    """Doc."""\n    return x + 1  # add one\n')
    two.write_text("def f(x):\n\n    return (x +\n            1)\n")
    three = tmp_path / "three.py"
    three.write_text("def f(x):\n    return x + 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import one as m1  # noqa: E402
    import three as m3  # noqa: E402
    import two as m2  # noqa: E402

    code = book_models._code_without_docs
    assert code(m1.f) == code(m2.f)
    assert code(m1.f) != code(m3.f)


def test_fingerprint_changes_with_the_arguments_and_passes_on_to_the_siamese(monkeypatch):
    before = {name: recipe_fingerprint(name) for name in NAMES}
    changed = book_models.Recipe(
        **{**vars(RECIPES["digits"]), "arguments": {**RECIPES["digits"].arguments, "epochs": 1}}
    )
    monkeypatch.setitem(RECIPES, "digits", changed)
    assert recipe_fingerprint("digits") != before["digits"]
    assert (
        recipe_fingerprint("siamese") != before["siamese"]
    ), "the siamese model starts from the digits model"


def test_unknown_name_lists_the_models():
    with pytest.raises(KeyError, match="digits"):
        load_book_model("resnet")


def _shipped_bytes(name="digits"):
    return (book_models.WEIGHTS / RECIPES[name].file).read_bytes()


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"not a torch file" * 20, lambda b: b""],
    ids=["truncated", "garbage", "empty"],
)
def test_damaged_file_gets_a_clear_error_naming_the_fix(tmp_path, damage):
    path = tmp_path / "digits.pt"
    path.write_bytes(damage(_shipped_bytes()))
    with pytest.raises(
        CheckpointError, match=f"regenerate the book's digits model: {RETRAIN_COMMAND} digits"
    ):
        load_book_model("digits", path)


def test_foreign_files_are_refused(tmp_path):
    plain = save_extractor(
        SmallCNN(), tmp_path / "plain.pt"
    )  # the right architecture, not the book's file
    with pytest.raises(CheckpointError, match="not the book's digits model file"):
        load_book_model("digits", plain)
    other = tmp_path / "siamese.pt"
    other.write_bytes(_shipped_bytes("siamese"))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_book_model("digits", other)
    code = tmp_path / "code.pt"
    torch.save({"weights": SmallCNN().state_dict(), "run": print}, code)
    with pytest.raises(CheckpointError, match="weights_only=True refuses it"):
        load_book_model("digits", code)


def test_stale_file_loads_with_a_warning_naming_the_command(tmp_path, monkeypatch):
    path = save_book_model(
        "digits", load_book_model("digits").cpu(), {"cmc/1": 0.0}, tmp_path / "stale.pt"
    )
    monkeypatch.setattr(book_models, "recipe_fingerprint", lambda name: "0000000000000000")
    with pytest.warns(StaleModelWarning, match=f"{RETRAIN_COMMAND} digits"):
        load_book_model("digits", path)


def test_fresh_file_loads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleModelWarning)
        load_book_model("digits")


def test_compare_metrics():
    assert compare_metrics({"a": 0.5}, {"a": 0.53}, 0.04) == []
    assert "a: shipped 0.500, retrained 0.550" in compare_metrics({"a": 0.5}, {"a": 0.55}, 0.04)[0]
    assert "different metrics" in compare_metrics({"a": 0.5}, {"b": 0.5}, 0.04)[0]


@pytest.mark.skipif(
    not os.environ.get("ATEN_CPU_CAPABILITY"), reason="run by scripts/test.sh, which sets it"
)
def test_the_test_command_runs_other_kernels_than_the_native_ones():
    assert torch.backends.cpu.get_cpu_capability() == os.environ["ATEN_CPU_CAPABILITY"].upper()


def test_chapter_07_trains_the_siamese_model_as_the_shipped_one_was_trained():
    """Chapter 07 says the book ships a model "trained by exactly this call": keep the two the
    same."""
    import nbformat

    from oml_helpers.book_models import SIAMESE

    path = os.path.join(os.path.dirname(__file__), "..", "notebooks", "07_reranking.ipynb")
    cells = [
        c.source
        for c in nbformat.read(path, as_version=4).cells
        # the book's model is the one built by make_siamese; the plain ConcatSiamese
        # the chapter trains beside it for comparison is not shipped
        if c.cell_type == "code"
        and "h.train_siamese(" in c.source
        and "h.make_siamese(" in c.source
    ]
    assert len(cells) == 1, "chapter 07 trains the book's pairwise model in one cell"
    calls = {}
    for node in ast.walk(ast.parse(cells[0])):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            calls[node.func.attr] = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            calls[node.func.attr]["args"] = [
                ast.literal_eval(a) for a in node.args if isinstance(a, ast.Constant)
            ]
    args = SIAMESE.arguments
    assert calls["seed_everything"]["args"] == [args["seed"]]
    assert list(calls["make_siamese"]["hidden"]) == args["hidden"]
    trained = {k: v for k, v in calls["train_siamese"].items() if k != "args"}
    expected = {k: args[k] for k in ("epochs", "lr", "n_labels", "n_instances")}
    assert (
        trained == expected
    ), f"chapter 07 trains with {trained}, the shipped model with {expected}"
