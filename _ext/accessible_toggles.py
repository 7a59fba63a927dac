"""Give the "show solution" toggles an accessible name that matches their visible text.

myst-nb renders a hidden cell (tag ``hide-cell``: the book's exercise solutions) as
``<details><summary aria-label="Toggle hidden content">`` around a visible "Show ..." label. The
aria-label replaces the visible words for screen readers, which axe-core reports as a serious
``label-content-name-mismatch`` (tests/test_browser.py). Without the aria-label, the summary's
accessible name is its visible text. Everything else is rendered as myst-nb does.
"""

from html import escape

from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput


def _visit(self, node):
    self.body.append(f'<details class="admonition hide {" ".join(node["classes"])}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n')
    self.body.append("</summary>\n")


def setup(app):
    app.add_node(HideCodeCellNode, override=True, html=(_visit, depart_HideCellInput))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
