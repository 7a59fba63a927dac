"""Drop repeated <script> tags from each page.

With Sphinx 7.4, sphinx-thebe's and sphinx-togglebutton's inline configuration scripts reach every
page twice (once with filename None, once with "", which Sphinx's own check sees as different); the
second ``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been
declared" in the browser console (tests/test_browser.py checks for console errors). Keeping the
first of identical script entries changes nothing else.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # Sphinx compares filenames, and the two copies differ there: None and "" (inline scripts)
        key = (
            getattr(script, "filename", script) or "",
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
