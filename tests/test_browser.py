"""The rendered book, tested in a real browser (headless Chromium driven by Playwright).

The book is built once from the committed outputs (or ``OML_BOOK_HTML`` names an existing build),
served by ``http.server`` on 127.0.0.1, and every HTML page found in the build is checked: no
console errors, every internal link and #anchor resolves, no horizontal scroll at phone width, the
dark theme is dark, and an axe-core scan finds no serious or critical violations. Chapter pages (the
pages whose source in ``_sources/`` is a notebook) are also checked for their figures (rendered, one
per ``image/png`` output, each with real alt text), their code cells (at desktop width no cell's
source scrolls sideways in its box) and their Colab link. The search page must find a term from a
chapter. Full-page screenshots of each chapter (desktop, phone, dark) go to
``artifacts/screenshots/`` (or ``$OML_BOOK_SCREENSHOTS``).

Chromium is Debian's (``scripts/setup_browser.sh`` installs it; ``$OML_BOOK_CHROMIUM`` overrides
the path), never Playwright's own download. Without it, or without the Playwright package, the whole
module is skipped with a message saying why; without axe-core (``npm ci`` in ``tests/browser``) the
accessibility scan is skipped.
"""

import atexit
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("OML_BOOK_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
SEARCH_TERM = "BalanceSampler"  # a class the chapters teach; the test checks that a chapter has it
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Off-host requests that may fail when the machine is offline. The only one the build makes is
# MathJax 3 from cdn.jsdelivr.net (Sphinx's default mathjax_path), on pages with math: offline the
# formulas stay as TeX source and every other part of the page renders. A failed request to any
# other external host, or to the local server, is an error.
OFF_HOST_MAY_FAIL = {"cdn.jsdelivr.net": "MathJax 3 (Sphinx's default mathjax_path), for math only"}

# axe-core violations of impact serious/critical that are accepted, each limited to the elements
# (matched on their HTML) the book cannot change: (rule id, regex on the element's HTML, reason).
AXE_ALLOWED = [
    (
        "label-content-name-mismatch",
        r'class="[^"]*\b(search-button__button|theme-switch-button)\b',
        "pydata-sphinx-theme 0.17.1's own header buttons: the search button is labelled "
        "'Search' but shows 'Search Ctrl+K', the colour-mode button is labelled "
        "'Color mode' around an icon",
    ),
]


def _find_chromium():
    for candidate in (os.environ.get("OML_BOOK_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


CHROMIUM = _find_chromium()
if CHROMIUM is None:
    pytest.skip(
        "browser tests skipped: Chromium is not installed (no `chromium` on PATH, "
        "$OML_BOOK_CHROMIUM unset); run `bash scripts/setup_browser.sh` as root to "
        "install Debian's chromium",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip(
        "browser tests skipped: the Python package playwright is not installed "
        "(pip install -r requirements.txt)",
        allow_module_level=True,
    )
import nbformat  # noqa: E402
import yaml  # noqa: E402


# --- the build, discovered pages, the server
# --------------------------------------------------------


@functools.lru_cache(maxsize=None)
def html_dir() -> Path:
    """The built HTML: ``$OML_BOOK_HTML`` if set, else one build into a temporary folder."""
    if os.environ.get("OML_BOOK_HTML"):
        return Path(os.environ["OML_BOOK_HTML"]).resolve()
    out = Path(tempfile.mkdtemp(prefix="oml-book-browser-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "the book did not build:\n" + result.stdout[-3000:] + result.stderr[-3000:]
        )
    return out / "_build" / "html"


def _is_redirect(path: Path) -> bool:
    return 'http-equiv="refresh"' in path.read_text(errors="replace")[:2000].lower()


@functools.lru_cache(maxsize=None)
def pages() -> list:
    """Every HTML page of the build, relative POSIX paths (theme templates in _static and redirect
    stubs such as the root index.html excluded; test_redirects covers those)."""
    html = html_dir()
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if "_static" not in p.parts and not _is_redirect(p)
    )


@functools.lru_cache(maxsize=None)
def redirects() -> list:
    html = html_dir()
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if "_static" not in p.parts and _is_redirect(p)
    )


@functools.lru_cache(maxsize=None)
def chapters() -> dict:
    """{page: source notebook path relative to the book root} for pages built from notebooks."""
    sources = html_dir() / "_sources"
    return {
        src.relative_to(sources).with_suffix(".html").as_posix(): src.relative_to(
            sources
        ).as_posix()
        for src in sorted(sources.rglob("*.ipynb"))
    }


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", pages())
    if "chapter" in metafunc.fixturenames:
        metafunc.parametrize("chapter", sorted(chapters()))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """Base URL of an HTTP server on 127.0.0.1 (a free port) serving the built HTML."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir()))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Debian's, the flags keep it off the network)."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """``new_page(viewport=..., mode=...)``: a page in a fresh context (fresh localStorage)."""
    contexts = []

    def make(viewport=DESKTOP, mode=None):
        context = browser.new_context(viewport=viewport, color_scheme="light")
        if mode:  # the theme switcher stores the reader's choice here; the theme applies it on load
            context.add_init_script(f"localStorage.setItem('mode', {json.dumps(mode)})")
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _screenshot(page, chapter, variant):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = chapter.replace("/", "__").removesuffix(".html") + f"--{variant}.png"
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


# --- every page
# -------------------------------------------------------------------------------------


def test_pages_were_found():
    assert "search.html" in pages()
    assert chapters(), "no page of the build comes from a notebook"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.stem}.html" in chapters(), f"{nb.name} has no chapter page"


def test_no_console_errors(new_page, server, page):
    tab = new_page()
    problems, off_host = [], []
    host = urlsplit(server).netloc

    def on_console(msg):
        if msg.type == "error":
            url = msg.location.get("url", "")
            if (
                msg.text.startswith("Failed to load resource")
                and urlsplit(url).hostname in OFF_HOST_MAY_FAIL
            ):
                off_host.append(url)  # reported by the requestfailed handler below
            elif (
                msg.text.startswith("Failed to load resource")
                and urlsplit(url).path == "/favicon.ico"
            ):
                pass  # see on_response
            else:
                problems.append(f"console error: {msg.text} ({url})")

    def on_failed(request):
        if urlsplit(request.url).hostname in OFF_HOST_MAY_FAIL:
            off_host.append(request.url)
        else:
            problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(response):
        # /favicon.ico is the browser's own guess (no page links to it); its 404 is not the book's
        if urlsplit(response.url).path == "/favicon.ico":
            return
        if urlsplit(response.url).netloc == host and response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    tab.on("requestfailed", on_failed)
    tab.on("response", on_response)
    tab.goto(server + page, wait_until="networkidle")
    assert not problems, "\n".join(problems) + f"\n(allowed off-host failures: {off_host})"


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:  # name: old-style <a name> anchors
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def _fetch(url):
    """(HTTP status, set of element ids) of a local URL, fetched over HTTP."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, frozenset()
    ids = set()
    if urlsplit(url).path.endswith((".html", "/")):
        parser = _Ids()
        parser.feed(body.decode("utf-8", "replace"))
        ids = parser.ids
    return status, frozenset(ids)


def test_internal_links_resolve(new_page, server, page):
    tab = new_page()
    tab.goto(server + page)
    hrefs = tab.eval_on_selector_all(
        "a[href], link[rel=next][href], link[rel=prev][href]", "links => links.map(a => a.href)"
    )
    origin = urlsplit(server).netloc
    broken = []
    for href in sorted(set(hrefs)):
        if urlsplit(href).scheme not in ("http", "https") or urlsplit(href).netloc != origin:
            continue
        target, anchor = urldefrag(href)
        status, ids = _fetch(target)
        if status != 200:
            broken.append(f"{href}: HTTP {status}")
        elif anchor and urlsplit(target).path.endswith((".html", "/")) and anchor not in ids:
            broken.append(f"{href}: no element with id {anchor!r} on the target page")
    assert not broken, f"{page} has broken links:\n" + "\n".join(broken)


def test_phone_width_has_no_horizontal_scroll(new_page, server, page):
    """At 390 px the page must not scroll sideways; wide code and tables scroll in their own box."""
    tab = new_page(viewport=PHONE)
    tab.goto(server + page)
    widths = tab.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, "
        "client: document.documentElement.clientWidth})"
    )
    assert (
        widths["scroll"] <= widths["client"] + 2
    ), f"{page} scrolls sideways at phone width: {widths}"
    if page in chapters():
        _screenshot(tab, page, "phone")


def _luminance(css_colour):
    r, g, b = (int(v) for v in re.findall(r"[\d.]+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_dark_theme(new_page, server, page):
    """With the reader's choice "dark" stored, the theme turns the page dark with light text."""
    tab = new_page(mode="dark")
    tab.goto(server + page)
    colours = tab.evaluate(
        """() => {
            // the first paragraph of the page's own text, else its main area
            const text = ['article p', 'main p', 'main li', 'main']
                .map(s => document.querySelector(s)).find(e => e) || document.body;
            return {theme: document.documentElement.dataset.theme,
                    background: getComputedStyle(document.body).backgroundColor,
                    text: getComputedStyle(text).color, element: text.tagName};
        }"""
    )
    assert colours["theme"] == "dark", colours
    assert _luminance(colours["background"]) < 0.25, f"background not dark: {colours}"
    assert _luminance(colours["text"]) > 0.6, f"text not light: {colours}"
    if page in chapters():
        _screenshot(tab, page, "dark")


def test_accessibility(new_page, server, page):
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core is not installed ({AXE_JS} missing): run `npm ci` in tests/browser")
    tab = new_page()
    tab.goto(server + page)
    tab.add_script_tag(path=str(AXE_JS))
    violations = tab.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {node['target']}: {node['html'][:200]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"]
        if not any(
            rule == v["id"] and re.search(pattern, node["html"]) for rule, pattern, _ in AXE_ALLOWED
        )
    ]
    assert not serious, f"{page}:\n" + "\n".join(serious)


# --- chapter pages
# ----------------------------------------------------------------------------------


def test_chapter_shows_its_figures_with_alt_text(new_page, server, chapter):
    nb = nbformat.read(html_dir() / "_sources" / chapters()[chapter], as_version=4)
    n_figures = sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    tab = new_page()
    tab.goto(server + chapter)
    images = tab.eval_on_selector_all(
        ".cell_output img",
        """imgs => imgs.map(img => {
            const box = img.getBoundingClientRect();
            return {src: img.getAttribute('src'), alt: img.getAttribute('alt'),
                    natural: img.naturalWidth, width: box.width, height: box.height};
        })""",
    )
    assert (
        len(images) == n_figures
    ), f"{chapter} shows {len(images)} images, the notebook has {n_figures} figures"
    for image in images:
        assert image["natural"] > 0, f"{image['src']} did not load"
        assert (
            image["width"] > 0 and image["height"] > 0
        ), f"{image['src']} has no rendered size: {image}"
        alt = (image["alt"] or "").strip()
        name = PurePosixPath(image["src"]).name
        assert alt and name not in alt and not re.fullmatch(r"\S+\.(png|jpe?g|svg|gif)", alt), (
            f"{chapter}: figure {name} has no real alt text ({alt!r}); set the cell metadata "
            '"mystnb": {"image": {"alt": "..."}}'
        )
    _screenshot(tab, chapter, "desktop")


# Each input code box of a chapter (a cell's source; hidden ones opened first): the box's widths,
# the characters its text area holds (canvas-measured in the box's own font) and the first line
# wider than that area. Outputs are not measured: they scroll in their own box on purpose.
CODE_BOXES_JS = """() => {
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const canvas = document.createElement('canvas').getContext('2d');
    return [...document.querySelectorAll('.cell_input pre')].map((pre, index) => {
        const style = getComputedStyle(pre);
        canvas.font = style.font;
        const room = pre.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight);
        const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
        const line = lines.findIndex(l => canvas.measureText(l).width > room + 1);
        return {cell: index + 1, scroll: pre.scrollWidth, client: pre.clientWidth,
                holds: Math.floor(room / (canvas.measureText('0'.repeat(100)).width / 100)),
                line: line + 1, text: line < 0 ? null : lines[line]};
    });
}"""


def test_code_boxes_show_their_whole_width(new_page, server, chapter):
    """At desktop width no cell's source scrolls sideways: each code box shows its longest line."""
    tab = new_page()
    tab.goto(server + chapter)
    boxes = tab.evaluate(CODE_BOXES_JS)
    assert boxes, f"{chapter}: no input code box found (.cell_input pre): has the HTML changed?"
    wide = [b for b in boxes if b["scroll"] > b["client"] + 1]
    assert not wide, (
        f"{chapter}: {len(wide)} of {len(boxes)} code cells are wider than their box at "
        f"{DESKTOP['width']} px and scroll sideways. First: code cell {wide[0]['cell']}, line "
        f"{wide[0]['line']} ({len(wide[0]['text'] or '')} characters; the box holds "
        f"{wide[0]['holds']}): {wide[0]['text']!r}\n"
        + "\n".join(
            f"code cell {b['cell']}, line {b['line']} ({len(b['text'] or '')} of {b['holds']} "
            f"characters): {b['text']!r}"
            for b in wide[1:]
        )
    )


def _expected_colab_url(path: str) -> str:
    """The Colab address of ``path``, a file of the repository, from _config.yml's repository."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    owner_name = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    path = "/".join(p for p in (repo.get("path_to_book", "").strip("/"), path) if p)
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{owner_name}/blob/{repo.get('branch', 'main')}/{path}"


def test_colab_link_points_at_its_notebook(new_page, server, chapter):
    """The badge opens the chapter's student edition; a worded link and the rocket, the full one."""
    source = chapters()[chapter]
    student = f"student/notebooks/{PurePosixPath(source).name}"
    for path in (source, student):
        assert (ROOT / path).is_file(), f"a Colab link would point at {path}, not in the repository"
    tab = new_page()
    tab.goto(server + chapter)
    links = tab.eval_on_selector_all(
        "a[href*='colab.research.google.com']",
        "as => as.map(a => ({href: a.href, text: a.textContent.trim(),"
        " inPage: !!a.closest('article'),"
        " alt: [...a.querySelectorAll('img')].map(i => i.alt).join(' ')}))",
    )
    full_url, student_url = _expected_colab_url(source), _expected_colab_url(student)
    assert {a["href"] for a in links} == {full_url, student_url}, f"{chapter}: Colab links {links}"
    in_page = [a for a in links if a["inPage"]]
    badges = [a for a in in_page if a["alt"]]
    assert [b["href"] for b in badges] == [student_url], f"{chapter}: badge links {badges}"
    assert "student edition" in badges[0]["alt"], f"{chapter}: the badge's alt {badges[0]['alt']!r}"
    worded = [a for a in in_page if "with the solutions" in a["text"]]
    assert [w["href"] for w in worded] == [full_url], f"{chapter}: no link to {source}: {links}"
    rocket = {a["href"] for a in links if not a["inPage"]}  # the launch button, in the header
    assert rocket <= {full_url}, f"{chapter}: the launch button should open {source}: {rocket}"


def test_redirects(new_page, server):
    """Redirect stubs (the root index.html) lead to a real page of the book."""
    for stub in redirects():
        tab = new_page()
        tab.goto(server + stub)
        tab.wait_for_function("() => !!document.querySelector('main')", timeout=10000)
        assert urlsplit(tab.url).path.lstrip("/") in pages(), f"{stub} led to {tab.url}"


# --- search
# -----------------------------------------------------------------------------------------


def test_search_finds_a_chapter(new_page, server):
    having_term = {
        chapter
        for chapter, source in chapters().items()
        if SEARCH_TERM in (html_dir() / "_sources" / source).read_text()
    }
    assert having_term, f"no chapter mentions {SEARCH_TERM}; pick another search term"
    tab = new_page()
    tab.goto(server + f"search.html?q={SEARCH_TERM}")
    tab.wait_for_selector("#search-results ul.search li a", timeout=15000)
    tab.wait_for_selector("#search-results p.search-summary", timeout=15000)  # written when done
    found = tab.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    found_pages = {urlsplit(href).path.lstrip("/") for href in found}
    assert (
        found_pages & having_term
    ), f"searching {SEARCH_TERM!r} listed {sorted(found_pages)}, not {having_term}"
