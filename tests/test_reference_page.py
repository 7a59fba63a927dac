"""The book's reference page (book/reference.md) documents every public helper.

Sphinx's autodoc renders the page from ``.. automodule:: ... :members:`` directives; a member
without a docstring, or defined in a module the page does not list, would silently be missing.
"""

import inspect
import re
from pathlib import Path

import oml_helpers as h

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "book" / "reference.md").read_text()
LISTED = set(re.findall(r"^\.\. automodule:: (\S+)$", PAGE, flags=re.MULTILINE))


def test_every_module_of_the_package_is_on_the_page():
    package = ROOT / "oml_helpers"
    modules = {
        "oml_helpers." + ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.name != "__init__.py"
    }
    assert modules - LISTED == set(), "add these modules to book/reference.md"
    assert LISTED - modules == set(), "book/reference.md lists modules that do not exist"


def test_every_public_name_has_a_docstring_in_a_listed_module():
    missing = []
    for name in h.__all__:
        obj = getattr(h, name)
        if inspect.ismodule(obj):  # h.exercises: its checkers are listed one by one below
            continue
        if obj.__module__ not in LISTED or not inspect.getdoc(obj):
            missing.append(f"{name} ({obj.__module__})")
    for name in h.exercises.__all__:
        obj = getattr(h.exercises, name)
        if not callable(obj):  # constants the exercises share (RIGHT, DIAGNOSES, ...)
            continue
        if obj.__module__ not in LISTED or not inspect.getdoc(obj):
            missing.append(f"exercises.{name} ({obj.__module__})")
    assert missing == []
