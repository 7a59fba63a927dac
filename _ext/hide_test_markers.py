"""Leave the test harness's markers out of the rendered code cells.

nbval reads comment lines such as ``# NBVAL_IGNORE_OUTPUT`` (the output of this cell depends on the
CPU, so it is not compared) and ``# NBVAL_SKIP`` (the cell needs the internet) from the first line
of a code cell. They are for the test command, not for readers, who saw them as unexplained noise.
This removes such lines from every code block of the HTML; the notebooks themselves keep them, and
book/how_to_use.md says what they mean for readers of the .ipynb files.
"""

import re

from docutils import nodes

MARKER = re.compile(r"^[ \t]*# NBVAL_[A-Z_]+[ \t]*\n?", re.MULTILINE)


def _strip(app, doctree):
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if "# NBVAL_" not in text:
            continue
        stripped = MARKER.sub("", text)
        block.children = [nodes.Text(stripped)]
        block.rawsource = stripped


def setup(app):
    app.connect("doctree-read", _strip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
