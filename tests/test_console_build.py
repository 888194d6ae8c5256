"""The operator console's build (``node web/build.mjs`` -> ``web/dist/admin``): its page names
the hashed script and stylesheet it was built with, holds a strict CSP and no inline script or
style, the whole stays under its gzip budget, its sources never parse HTML or evaluate code, and
the dev server serves it at /admin/."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, get_args

import pytest

from shared.devserver import static_response
from shared.models import Channel
from tests.browser.build import DIST, WEB, built_widget
from tests.test_widget_build import FORBIDDEN

CONSOLE_BUDGET = 25_000  # gzipped bytes: page, script and stylesheet
SOURCES = sorted((WEB / "admin").glob("*.js"))


@pytest.fixture(scope="module")
def admin() -> dict[str, Any]:
    entry: dict[str, Any] = built_widget()["admin"]
    return entry


class _Page(HTMLParser):
    """What the page's head holds: its tags with their attributes, and any inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def _page(admin: dict[str, Any]) -> _Page:
    page = _Page()
    page.feed((DIST / admin["index"]).read_text(encoding="utf-8"))
    return page


def test_the_page_names_the_hashed_files_it_was_built_with(admin: dict[str, Any]) -> None:
    assert re.fullmatch(r"admin/console\.[0-9a-f]{10}\.js", admin["script"])
    assert re.fullmatch(r"admin/console\.[0-9a-f]{10}\.css", admin["style"])
    tags = _page(admin).tags
    scripts = [a["src"] for t, a in tags if t == "script"]
    styles = [a["href"] for t, a in tags if t == "link" and a.get("rel") == "stylesheet"]
    assert scripts == [admin["script"].removeprefix("admin/")]
    assert styles == [admin["style"].removeprefix("admin/")]
    files = admin["files"]
    assert files[admin["script"]]["cache_control"] == "public, max-age=31536000, immutable"
    assert files[admin["index"]]["cache_control"] == "public, max-age=300"
    for name, entry in files.items():
        assert entry["bytes"] == (DIST / name).stat().st_size, name


def test_a_strict_csp_and_no_inline_script_or_style(admin: dict[str, Any]) -> None:
    page = _page(admin)
    csp = [
        a["content"]
        for t, a in page.tags
        if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(csp) == 1
    directives = dict(d.strip().split(" ", 1) for d in str(csp[0]).split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in str(csp[0])
    assert page.inline == []
    assert all(t != "style" and "style" not in a for t, a in page.tags)
    assert all(not name.startswith("on") for _, a in page.tags for name in a)


def test_the_console_holds_its_gzip_budget(admin: dict[str, Any]) -> None:
    assert admin["budget_gzip"] == CONSOLE_BUDGET
    total = sum(
        len(gzip.compress((DIST / name).read_bytes(), compresslevel=9)) for name in admin["files"]
    )
    assert total <= CONSOLE_BUDGET, f"console: {total} B gzipped"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_console_source_parses_html_or_evaluates_code(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert found == [], f"{source.name} uses {found}"
    # Storage keeps the language choice only: never the session's CSRF token.
    stored = re.findall(r"(?:localStorage|sessionStorage)\.setItem\(\s*([^,]+),", text)
    assert set(stored) <= {'"comptoir-lang"'}, stored


def test_the_dev_server_serves_the_built_console_at_admin(admin: dict[str, Any]) -> None:
    redirect = static_response("/admin")
    assert (redirect.status, redirect.headers["Location"]) == (308, "/admin/")
    index = static_response("/admin/")
    assert index.status == 200
    assert index.headers["Content-Type"].startswith("text/html")
    assert index.body == (DIST / admin["index"]).read_bytes()
    script = static_response("/" + admin["script"])
    assert (script.status, script.body) == (200, (DIST / admin["script"]).read_bytes())
    # The sources are not what is served, nor anything outside the build.
    assert static_response("/admin/console.js").status == 404
    assert static_response("/admin/../../README.md").status == 404


def test_the_inbox_filters_by_every_channel_the_server_has() -> None:
    """A channel added to ``shared.models.Channel`` is one the operator can filter on."""
    found = re.search(r"const CHANNELS = \[([^\]]*)\]", (WEB / "admin" / "inbox.js").read_text())
    assert found is not None
    assert re.findall(r'"([a-z]+)"', found.group(1)) == list(get_args(Channel))
