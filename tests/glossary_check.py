"""Checks that the chapters and the glossary agree on which chapter teaches which term.

The convention (README.md, "House style"):

- where a chapter teaches a term, it writes it as a bold link to the term's glossary entry,
  ``[**shortlist**](../book/glossary.md#term-Shortlist)``; the anchor is ``term-`` plus the term
  as Sphinx turns it into an id (``anchor`` below), and the link text may differ from the term
  (``[**re-ranks**](../book/glossary.md#term-Re-ranking)``);
- any other link from a chapter to the glossary is a plain reminder, ``[CMC@1](...#term-CMC-k)``,
  and must name an entry too;
- every glossary entry ends with the chapters that teach it, as links in one parenthesis:
  ``([chapter 01](../notebooks/01_training.ipynb),
  [chapter 02](../notebooks/02_validation.ipynb))``;
- bold without a link is a paragraph lead or emphasis, so it must not be a glossary term as it is.

``problems`` checks all of it and returns one sentence per problem; ``read_chapters`` reads every
``notebooks/NN_*.ipynb`` present, so a new chapter is covered without a change here.
tests/test_glossary.py runs it on the book, and on small broken books to show that it can fail.
"""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "glossary.md"
TARGET = "../book/glossary.md"

# a Markdown link, whose text may hold one level of brackets
LINK = re.compile(r"\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<url>[^)\s]*)\)")
# bold within one paragraph
BOLD = re.compile(r"\*\*(?=\S)(?P<text>(?:(?!\n\s*\n).)+?)(?<=\S)\*\*", re.DOTALL)
CHAPTER_LINK = re.compile(r"\[chapter (?P<number>\d\d)\]\(\.\./notebooks/(?P<file>[^)]+)\)")
# the parenthesis of chapter links that ends an entry
TAUGHT_IN = re.compile(
    r"\((?P<links>\[chapter \d\d\]\([^)]*\)(?:,\s+\[chapter \d\d\]\([^)]*\))*)\)\.?\s*$"
)


@dataclass
class Entry:
    """One entry of the glossary: its terms (one per line) and its definition."""

    terms: list[str]
    body: str


@dataclass
class GlossaryLink:
    """A link from a chapter to the glossary."""

    chapter: str
    text: str
    anchor: str | None
    bold: bool
    bold_outside: bool


def anchor(term: str) -> str:
    """The id Sphinx gives a glossary term (sphinx.util.nodes.make_id with the prefix "term").

    Args:
        term: The term as written in the glossary; backticks are markup and vanish.

    Returns:
        ``term-`` and the term: non-ASCII letters reduced to ASCII, each run of characters other
        than letters, digits, ``.`` and ``_`` replaced by one ``-``, a trailing ``-`` dropped.
    """
    text = term.replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-zA-Z0-9._]+", "-", " ".join(f"term-{text}".split()))
    return re.sub(r"^[-0-9._]+|-+$", "", text)


def parse_glossary(text: str) -> list[Entry]:
    """The entries of the ``{glossary}`` block of a MyST page.

    Args:
        text: The page. Inside the block an unindented line is a term, consecutive terms share one
            entry, and the indented lines after them are its definition.

    Returns:
        The entries in page order.
    """
    match = re.search(r"^```\{glossary\}[^\n]*\n(?P<block>.*?)(?:^```|\Z)", text, re.DOTALL | re.M)
    assert match, "the glossary page has no ```{glossary} block"
    entries: list[Entry] = []
    in_body = False
    for line in match["block"].splitlines():
        if not line.strip() or line.startswith(":"):  # blank, or an option such as :sorted:
            continue
        if line[0].isspace():
            assert entries, f"a definition before any term: {line!r}"
            entries[-1].body += line.strip() + "\n"
            in_body = True
        elif entries and not in_body:
            entries[-1].terms.append(line.strip())
        else:
            entries.append(Entry(terms=[line.strip()], body=""))
            in_body = False
    return entries


def without_code(markdown: str) -> str:
    """Markdown without its fenced code blocks; a MyST directive's content (```{note}) stays."""
    kept, fence = [], None  # fence: the open code block's backticks
    directives = []  # the backticks of the open directives
    for line in markdown.splitlines():
        ticks = re.match(r"\s*(`{3,})(.*)", line)
        if fence:
            if ticks and ticks[1] == fence and not ticks[2].strip():
                fence = None
            continue
        if ticks and directives and ticks[1] == directives[-1] and not ticks[2].strip():
            directives.pop()
        elif ticks and ticks[2].startswith("{"):
            directives.append(ticks[1])
        elif ticks:
            fence = ticks[1]
            continue
        kept.append(line)
    return "\n".join(kept)


def chapter_markdown(path: Path) -> str:
    """The markdown cells of a notebook, joined."""
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def read_chapters(folder: Path = ROOT / "notebooks") -> dict[str, str]:
    """Every chapter's markdown, by its file name."""
    return {p.name: chapter_markdown(p) for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


def glossary_links(chapter: str, markdown: str) -> list[GlossaryLink]:
    """The links of one chapter's markdown to the glossary page."""
    links = []
    text = without_code(markdown)
    for m in LINK.finditer(text):
        url, _, fragment = m["url"].partition("#")
        if url != TARGET:
            continue
        inner = m["text"]
        bold = len(inner) > 4 and inner.startswith("**") and inner.endswith("**")
        links.append(
            GlossaryLink(
                chapter=chapter,
                text=inner[2:-2] if bold else inner,
                anchor=fragment or None,
                bold=bold,
                bold_outside=text[: m.start()].endswith("**") and text[m.end() :].startswith("**"),
            )
        )
    return links


def bold_phrases(markdown: str) -> list[str]:
    """The bold phrases of some markdown that are not links (code left out)."""
    text = LINK.sub(" link ", without_code(markdown))
    # a code span that holds ** (`2 ** 3`) is no bold; one inside bold (**`top_n`**) stays
    text = re.sub(r"(`+)(.+?)\1", lambda m: " code " if "**" in m[2] else m[0], text)
    return [" ".join(m["text"].split()) for m in BOLD.finditer(text)]


def _normal(phrase: str) -> str:
    return " ".join(phrase.replace("`", "").split()).lower()


def problems(glossary: str, chapters: dict[str, str]) -> list[str]:
    """Everything in which the glossary and the chapters disagree, one sentence each.

    Args:
        glossary: The glossary page (book/glossary.md).
        chapters: Each chapter's markdown, by the notebook's file name
            (``05_embedding_store.ipynb``).

    Returns:
        The problems found; empty when they agree.
    """
    found: list[str] = []
    entries = parse_glossary(glossary)
    by_anchor: dict[str, Entry] = {}
    for entry in entries:
        for term in entry.terms:
            if "`" in term.strip("`") or re.search(r"[*\[\]$]", term):
                found.append(f"glossary term {term!r}: write terms as plain text or one `code`")
            key = anchor(term)
            if key in by_anchor:
                found.append(
                    f"glossary terms {term!r} and {by_anchor[key].terms[0]!r} both get the id "
                    f"{key!r}; Sphinx would number the second: rename one"
                )
            by_anchor[key] = entry
    numbers = {name[:2]: name for name in chapters}

    # which chapters teach (bold-link) each anchor
    taught: dict[str, set[str]] = {}
    for name, markdown in chapters.items():
        for link in glossary_links(name, markdown):
            where = f"{name}: the link [{link.text}]({TARGET}"
            if link.anchor is None:
                found.append(
                    f"{where}) names no entry: link to the term, {TARGET}#{anchor('Term')}"
                )
                continue
            if link.anchor not in by_anchor:
                found.append(
                    f"{where}#{link.anchor}) names no glossary entry: add the entry, or link to "
                    f"one of the glossary's ids (term- and the term, as Sphinx writes it)"
                )
                continue
            if link.bold_outside:
                found.append(
                    f"{where}#{link.anchor}) is bold outside the link: write "
                    f"[**{link.text}**]({TARGET}#{link.anchor})"
                )
            if link.bold:
                taught.setdefault(link.anchor, set()).add(name[:2])
        if "{term}`" in markdown:
            found.append(
                f"{name} uses the {{term}} role, which Colab shows as raw text: write a link, "
                f"[text]({TARGET}#{anchor('Term')})"
            )
        for phrase in bold_phrases(markdown):
            for entry in entries:
                for term in entry.terms:
                    if _normal(phrase) == _normal(term):
                        found.append(
                            f"{name}: **{phrase}** is the glossary term {term!r} in bold but no "
                            f"link: write [**{phrase}**]({TARGET}#{anchor(term)}) where the "
                            f"chapter teaches it, else drop the bold"
                        )

    for entry in entries:
        for term in entry.terms:
            if anchor(term) not in taught:
                found.append(
                    f"glossary term {term!r} is taught by no chapter: make one chapter's "
                    f"first explanation of it [**{term.strip('`')}**]({TARGET}#{anchor(term)})"
                )
        m = TAUGHT_IN.search(entry.body)
        if not m:
            found.append(
                f"glossary entry {entry.terms[0]!r} does not end with the chapters that teach it, "
                f"such as ([chapter 05](../notebooks/05_embedding_store.ipynb))"
            )
            continue
        named = set()
        for link in CHAPTER_LINK.finditer(m["links"]):
            named.add(link["number"])
            if numbers.get(link["number"]) != link["file"]:
                found.append(
                    f"glossary entry {entry.terms[0]!r}: [chapter {link['number']}] links to "
                    f"{link['file']}, which is not chapter {link['number']}'s notebook"
                )
        teaching = set().union(*(taught.get(anchor(t), set()) for t in entry.terms))
        for number in sorted(named - teaching):
            found.append(
                f"glossary entry {entry.terms[0]!r} names chapter {number}, which has no bold link "
                f"to it"
            )
        for number in sorted(teaching - named):
            found.append(
                f"glossary entry {entry.terms[0]!r} is taught (bold-linked) by chapter {number}, "
                f"which the entry does not name"
            )
    return found
