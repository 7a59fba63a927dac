"""The chapters and the glossary agree on which chapter teaches which term.

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

``problems`` checks all of it and returns one sentence per problem. It reads every
``notebooks/NN_*.ipynb`` present, so a new chapter is covered without a change here.
"""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

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
    """The bold phrases of some markdown that are not links (code blocks left out)."""
    text = LINK.sub(" link ", without_code(markdown))
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


# ---------------------------------------------------------------- the book itself


def test_the_chapters_and_the_glossary_agree():
    chapters = read_chapters()
    assert chapters, "no chapters found"
    found = problems(GLOSSARY.read_text(), chapters)
    assert not found, "\n".join(found)


def test_every_chapter_teaches_some_term():
    for name, markdown in read_chapters().items():
        assert any(
            link.bold for link in glossary_links(name, markdown)
        ), f"{name} bold-links no glossary term: where it teaches a term, link it"


def test_anchor_is_the_id_sphinx_gives():
    """The rule above against Sphinx's own, on the glossary's terms and some odd ones."""
    make_id = pytest.importorskip("sphinx.util.nodes")._make_id
    terms = [t for e in parse_glossary(GLOSSARY.read_text()) for t in e.terms]
    odd = ["mAP@k", "FMR / FNMR", "`top_n`", "Callback (Lightning)", "Épée", "3 steps", "a.b_c"]
    for term in terms + odd:
        assert anchor(term) == make_id(f"term-{term.replace('`', '')}"), term
    assert anchor("mAP@k") == "term-mAP-k"
    assert anchor("FMR / FNMR") == "term-FMR-FNMR"
    assert anchor("`top_n`") == "term-top_n"
    assert anchor("Callback (Lightning)") == "term-Callback-Lightning"


# ---------------------------------------------------------------- the checker can fail

GLOSSARY_SMALL = """# Glossary

```{glossary}
Shortlist
  The rows ranked in float64 ([chapter 05](../notebooks/05_store.ipynb)).

mAP@k
  Mean average precision ([chapter 02](../notebooks/02_metrics.ipynb)).

Pooled precision
Pooled recall
  Over all queries ([chapter 02](../notebooks/02_metrics.ipynb),
  [chapter 05](../notebooks/05_store.ipynb)).
```
"""

GOOD = {
    "02_metrics.ipynb": (
        "**Why a metric.** [**mAP@k**](../book/glossary.md#term-mAP-k) and\n"
        "[**pooled precision**](../book/glossary.md#term-Pooled-precision)."
    ),
    "05_store.ipynb": (
        "The [**shortlist**](../book/glossary.md#term-Shortlist), its\n"
        "[**recall**](../book/glossary.md#term-Pooled-recall) and a reminder of\n"
        "[mAP@5](../book/glossary.md#term-mAP-k)."
    ),
}


def _with(name: str, old: str, new: str) -> dict[str, str]:
    changed = dict(GOOD)
    assert old in changed[name]
    changed[name] = changed[name].replace(old, new)
    return changed


def test_checker_passes_a_consistent_book():
    assert problems(GLOSSARY_SMALL, GOOD) == []


def test_checker_fails_a_link_to_a_missing_entry():
    chapters = _with("05_store.ipynb", "#term-Shortlist", "#term-Short-list")
    found = problems(GLOSSARY_SMALL, chapters)
    assert any("#term-Short-list) names no glossary entry" in p for p in found), found
    assert any("'Shortlist' is taught by no chapter" in p for p in found), found


def test_checker_fails_a_reminder_to_a_missing_entry_and_a_bare_page_link():
    chapters = _with("05_store.ipynb", "#term-mAP-k)", "#term-MAP)")
    assert any(
        "#term-MAP) names no glossary entry" in p for p in problems(GLOSSARY_SMALL, chapters)
    )
    chapters = _with("05_store.ipynb", "glossary.md#term-mAP-k", "glossary.md")
    assert any("names no entry" in p for p in problems(GLOSSARY_SMALL, chapters))


def test_checker_fails_an_entry_no_chapter_teaches():
    end = GLOSSARY_SMALL.rindex("```")
    glossary = GLOSSARY_SMALL[:end] + (
        "\nMargin\n  The m ([chapter 02](../notebooks/02_metrics.ipynb)).\n```\n"
    )
    found = problems(glossary, GOOD)
    assert any("'Margin' is taught by no chapter" in p for p in found), found
    assert any("'Margin' names chapter 02, which has no bold link" in p for p in found), found


def test_checker_fails_a_plain_link_where_a_chapter_teaches():
    # a plain link does not teach: the only teaching of Shortlist is gone
    chapters = _with("05_store.ipynb", "[**shortlist**]", "[shortlist]")
    found = problems(GLOSSARY_SMALL, chapters)
    assert any("'Shortlist' is taught by no chapter" in p for p in found), found


def test_checker_fails_each_term_of_an_entry_taught_nowhere():
    chapters = _with("05_store.ipynb", "[**recall**](../book/glossary.md#term-Pooled-recall)", "x")
    found = problems(GLOSSARY_SMALL, chapters)
    assert any("'Pooled recall' is taught by no chapter" in p for p in found), found
    assert any("'Pooled precision' names chapter 05, which has no bold" in p for p in found), found


def test_checker_fails_an_entry_that_names_the_wrong_chapters():
    glossary = GLOSSARY_SMALL.replace(
        "float64 ([chapter 05](../notebooks/05_store.ipynb))",
        "float64 ([chapter 02](../notebooks/02_metrics.ipynb))",
    )
    found = problems(glossary, GOOD)
    assert any("'Shortlist' names chapter 02, which has no bold link" in p for p in found), found
    assert any("'Shortlist' is taught (bold-linked) by chapter 05" in p for p in found), found


def test_checker_fails_an_entry_without_its_chapters_or_with_a_wrong_file():
    glossary = GLOSSARY_SMALL.replace(" ([chapter 05](../notebooks/05_store.ipynb)).\n", ".\n", 1)
    found = problems(glossary, GOOD)
    assert any("'Shortlist' does not end with the chapters" in p for p in found), found
    glossary = GLOSSARY_SMALL.replace(
        "(../notebooks/05_store.ipynb)).\n", "(../notebooks/05_x.ipynb)).\n", 1
    )
    found = problems(glossary, GOOD)
    assert any("links to 05_x.ipynb, which is not chapter 05's notebook" in p for p in found), found


def test_checker_fails_a_term_in_bold_without_a_link():
    chapters = _with(
        "02_metrics.ipynb", "**Why a metric.**", "The **Shortlist** and **Why a metric.**"
    )
    found = problems(GLOSSARY_SMALL, chapters)
    assert any(
        "**Shortlist** is the glossary term 'Shortlist' in bold but no link" in p for p in found
    )
    # a lead in bold that is not a term passes, and so does bold across a line break
    chapters = _with(
        "02_metrics.ipynb", "**Why a metric.**", "**Why\na metric.** **pooled\nrecall**"
    )
    found = problems(GLOSSARY_SMALL, chapters)
    assert len(found) == 1 and "**pooled recall** is the glossary term" in found[0], found


def test_checker_fails_bold_outside_the_link_and_clashing_ids():
    chapters = _with(
        "05_store.ipynb",
        "[**shortlist**](../book/glossary.md#term-Shortlist)",
        "**[shortlist](../book/glossary.md#term-Shortlist)**",
    )
    found = problems(GLOSSARY_SMALL, chapters)
    assert any("is bold outside the link" in p for p in found), found
    glossary = GLOSSARY_SMALL.replace("Pooled recall\n", "Pooled (recall)\nPooled recall\n")
    found = problems(glossary, GOOD)
    assert any("both get the id 'term-Pooled-recall'" in p for p in found), found


def test_parse_glossary_reads_multi_term_entries_and_options():
    entries = parse_glossary(GLOSSARY_SMALL.replace("```{glossary}\n", "```{glossary}\n:sorted:\n"))
    assert [e.terms for e in entries] == [
        ["Shortlist"],
        ["mAP@k"],
        ["Pooled precision", "Pooled recall"],
    ]
    assert entries[2].body.startswith("Over all queries")


def test_checker_fails_the_term_role():
    chapters = _with(
        "05_store.ipynb", "a reminder of", "a {term}`gallery <Gallery>` and a reminder of"
    )
    found = problems(GLOSSARY_SMALL, chapters)
    assert any("05_store.ipynb uses the {term} role" in p for p in found), found


def test_code_blocks_are_left_out_and_directives_kept():
    markdown = "a\n```{note}\n**x**\n```\n```python\nprint(2 ** 3, 4 ** 5)\n```\nz **y**"
    assert bold_phrases(markdown) == ["x", "y"]
    assert without_code("````\n```\n**x**\n```\n````\nz") == "z"
