"""Link each ``h.name`` in a chapter's code cells to that helper on the reference page.

A reader who meets ``h.train_extractor(...)`` in a chapter goes to its docstring, and from
there (viewcode's [source]) to its code, in one click. After the HTML is written, every
chapter page's highlighted code is searched for ``h.<name>`` and ``h.exercises.<name>``;
each name that the reference page documents (book/reference.md, autodoc) becomes a link to
its entry. Names it does not document stay plain text. Only the HTML changes: the notebooks,
and so Colab, are untouched.
"""

import html
import importlib
import re
from pathlib import Path

from sphinx.application import Sphinx

CHAPTERS = "notebooks/"
SPAN = r'<span class="n">{}</span>'
DOT = r'<span class="o">\.</span>'
# h.name or h.exercises.name, as Pygments highlights them
PATTERN = re.compile(
    SPAN.format("h")
    + DOT
    + r"(?:(?P<sub>"
    + SPAN.format("exercises")
    + DOT
    + r"))?"
    + r'<span class="n">(?P<name>\w+)</span>'
)


def _target(package, name: str, objects) -> str:
    """The documented full name of ``package.name``, or "" if the reference lacks it."""
    obj = getattr(package, name, None)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or qualname is None:
        return ""
    full = f"{module}.{qualname}"
    return full if full in objects else ""


def link_helpers(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    objects = app.env.get_domain("py").objects
    packages = {
        "": importlib.import_module("oml_helpers"),
        "exercises": importlib.import_module("oml_helpers.exercises"),
    }
    out = Path(app.outdir)
    for docname in sorted(app.env.found_docs):
        if not docname.startswith(CHAPTERS):
            continue
        page = out / f"{docname}.html"
        if not page.is_file():
            continue

        def link(match: re.Match) -> str:
            package = packages["exercises" if match.group("sub") else ""]
            full = _target(package, match.group("name"), objects)
            if not full:
                return match.group(0)
            target_doc, node_id = objects[full].docname, objects[full].node_id
            uri = app.builder.get_relative_uri(docname, target_doc)
            name_span = SPAN.format(match.group("name"))
            head = match.group(0)[: -len(name_span)]
            title = html.escape(f"{full} on the reference page")
            return (
                f'{head}<a class="helper-link" href="{uri}#{node_id}" title="{title}">'
                f"{name_span}</a>"
            )

        text = page.read_text(encoding="utf-8")
        page.write_text(PATTERN.sub(link, text), encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", link_helpers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
