"""The chapters and the glossary agree on which chapter teaches which term (the convention:
tests/glossary_check.py and README.md, "House style"), and the checker fails broken books."""

import pytest
from glossary_check import (
    GLOSSARY,
    anchor,
    bold_phrases,
    glossary_links,
    parse_glossary,
    problems,
    read_chapters,
    without_code,
)

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


def test_checker_passes_a_consistent_book():
    assert problems(GLOSSARY_SMALL, GOOD) == []


LINK_SHORTLIST = "[**shortlist**](../book/glossary.md#term-Shortlist)"
LINK_RECALL = "[**recall**](../book/glossary.md#term-Pooled-recall)"

# (chapter, text, replaced by, what the problems must say)
BROKEN_CHAPTERS = {
    "a link to a missing entry": (
        "05_store.ipynb",
        "#term-Shortlist",
        "#term-Short-list",
        ["#term-Short-list) names no glossary entry", "'Shortlist' is taught by no chapter"],
    ),
    "a reminder to a missing entry": (
        "05_store.ipynb",
        "#term-mAP-k)",
        "#term-MAP)",
        ["#term-MAP) names no glossary entry"],
    ),
    "a bare link to the glossary page": (
        "05_store.ipynb",
        "glossary.md#term-mAP-k",
        "glossary.md",
        ["[mAP@5](../book/glossary.md) names no entry"],
    ),
    "a plain link does not teach": (
        "05_store.ipynb",
        "[**shortlist**]",
        "[shortlist]",
        ["'Shortlist' is taught by no chapter"],
    ),
    "each term of an entry must be taught": (
        "05_store.ipynb",
        LINK_RECALL,
        "x",
        ["'Pooled recall' is taught by no chapter", "'Pooled precision' names chapter 05"],
    ),
    "a term in bold without a link": (
        "02_metrics.ipynb",
        "**Why a metric.**",
        "The **Shortlist** and **Why a metric.**",
        ["**Shortlist** is the glossary term 'Shortlist' in bold but no link"],
    ),
    "a term in bold across a line break": (
        "02_metrics.ipynb",
        "**Why a metric.**",
        "**Why\na metric.** **pooled\nrecall**",
        ["**pooled recall** is the glossary term 'Pooled recall'"],
    ),
    "bold outside the link": (
        "05_store.ipynb",
        LINK_SHORTLIST,
        "**[shortlist](../book/glossary.md#term-Shortlist)**",
        ["is bold outside the link"],
    ),
    "the {term} role": (
        "05_store.ipynb",
        "a reminder of",
        "a {term}`gallery <Gallery>` and a reminder of",
        ["05_store.ipynb uses the {term} role"],
    ),
}


@pytest.mark.parametrize("case", BROKEN_CHAPTERS)
def test_checker_fails_a_broken_chapter(case):
    name, old, new, expected = BROKEN_CHAPTERS[case]
    chapters = dict(GOOD)
    assert old in chapters[name]
    chapters[name] = chapters[name].replace(old, new)
    found = problems(GLOSSARY_SMALL, chapters)
    for text in expected:
        assert any(text in p for p in found), (text, found)


def test_checker_passes_leads_plurals_and_code_but_not_a_bold_term_between_code():
    chapters = dict(GOOD)
    chapters["02_metrics.ipynb"] += " **Why\na shortlist.** **Shortlists** `2 ** 3` `**Shortlist**`"
    assert problems(GLOSSARY_SMALL, chapters) == []
    chapters["02_metrics.ipynb"] += " `a` **`mAP@k`** `b`"
    [found] = problems(GLOSSARY_SMALL, chapters)
    assert "**`mAP@k`** is the glossary term 'mAP@k' in bold but no link" in found


ENTRY_02 = " ([chapter 02](../notebooks/02_metrics.ipynb)).\n"
# (text of the glossary, replaced by, what the problems must say)
BROKEN_GLOSSARIES = {
    "an entry no chapter teaches": (
        "\n```\n",
        "\nMargin\n  The m" + ENTRY_02 + "```\n",
        ["'Margin' is taught by no chapter", "'Margin' names chapter 02, which has no bold link"],
    ),
    "an entry that names the wrong chapter": (
        "float64 ([chapter 05](../notebooks/05_store.ipynb)).\n",
        "float64" + ENTRY_02,
        [
            "'Shortlist' names chapter 02, which has no",
            "'Shortlist' is taught (bold-linked) by chapter 05",
        ],
    ),
    "an entry without its chapters": (
        " ([chapter 05](../notebooks/05_store.ipynb)).\n",
        ".\n",
        ["'Shortlist' does not end with the chapters that teach it"],
    ),
    "an entry that links to another notebook": (
        "(../notebooks/05_store.ipynb)).\n",
        "(../notebooks/05_x.ipynb)).\n",
        ["links to 05_x.ipynb, which is not chapter 05's notebook"],
    ),
    "two terms with one id": (
        "Pooled recall\n",
        "Pooled (recall)\nPooled recall\n",
        ["both get the id 'term-Pooled-recall'"],
    ),
    "a term with markup": ("mAP@k\n", "*mAP@k*\n", ["'*mAP@k*': write terms as plain text"]),
}


@pytest.mark.parametrize("case", BROKEN_GLOSSARIES)
def test_checker_fails_a_broken_glossary(case):
    old, new, expected = BROKEN_GLOSSARIES[case]
    assert old in GLOSSARY_SMALL
    found = problems(GLOSSARY_SMALL.replace(old, new, 1), GOOD)
    for text in expected:
        assert any(text in p for p in found), (text, found)


def test_parse_glossary_reads_multi_term_entries_and_options():
    entries = parse_glossary(GLOSSARY_SMALL.replace("```{glossary}\n", "```{glossary}\n:sorted:\n"))
    assert [e.terms for e in entries] == [
        ["Shortlist"],
        ["mAP@k"],
        ["Pooled precision", "Pooled recall"],
    ]
    assert entries[2].body.startswith("Over all queries")
    unclosed = GLOSSARY_SMALL[: GLOSSARY_SMALL.rindex("```")]
    assert parse_glossary(unclosed) == entries


def test_code_blocks_are_left_out_and_directives_kept():
    markdown = "a\n```{note}\n**x**\n```\n```python\nprint(2 ** 3, 4 ** 5)\n```\nz **y**"
    assert bold_phrases(markdown) == ["x", "y"]
    assert without_code("````\n```\n**x**\n```\n````\nz") == "z"
