"""Let a chapter link to one glossary entry, ``[**shortlist**](../book/glossary.md#term-Shortlist)``
(the convention: README.md, "House style").

Sphinx gives every term of a ``{glossary}`` block an id of its own, ``term-`` followed by the
term with each run of characters other than letters, digits, ``.`` and ``_`` turned into one
``-`` (``sphinx.util.nodes.make_id``: ``mAP@k`` becomes ``term-mAP-k``). MyST, though, checks the
``#fragment`` of a link to another document only against that document's heading anchors: it
warns "local id not found" for a term's id, and the build, run with warnings as errors, fails.
This registers each term's id as an anchor of its page, after the page is read, so that such a
link resolves without a warning, while a link to a term that does not exist still warns.
tests/glossary_check.py checks the convention itself (which chapter teaches which entry).
"""

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx


def _register_terms(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    slugs = None
    for glossary in doctree.findall(addnodes.glossary):
        for term in glossary.findall(nodes.term):
            if slugs is None:
                slugs = env.metadata[env.docname].setdefault("myst_slugs", {})
            for node_id in term["ids"]:
                # the shape MyST keeps for a heading: (line, id, the link's implicit text)
                slugs.setdefault(node_id, (term.line or 0, node_id, term.astext()))


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", _register_terms)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
