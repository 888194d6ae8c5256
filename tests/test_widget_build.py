"""The shop widget's build: the size budget holds (gzip level 9), the loader points at the
panel it was built with, and no source uses HTML parsing or code evaluation (CSP, XSS)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.build import DIST, WEB, built_widget

BEFORE_OPEN_BUDGET = 12_000  # gzipped bytes loaded before the shopper opens the panel
TOTAL_BUDGET = 20_000  # gzipped bytes in all
VOICE_BUDGET = 6_000  # gzipped bytes of the voice module, fetched only when a call starts
SOURCES = sorted((WEB / "src").glob("*.js"))
FORBIDDEN = {
    "innerHTML": re.compile(r"innerHTML"),
    "outerHTML": re.compile(r"outerHTML"),
    "insertAdjacentHTML": re.compile(r"insertAdjacentHTML"),
    "document.write": re.compile(r"document\.write"),
    "eval(": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"new\s+Function\b"),
    "string timer": re.compile(r"set(Timeout|Interval)\(\s*[\"'`]"),
    "style attribute": re.compile(r"setAttribute\(\s*[\"']style|\.style\.cssText|\.style\s*=[^=]"),
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return built_widget()


def _gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def test_the_size_budget_holds(manifest: dict[str, Any]) -> None:
    loader = _gzipped(DIST / manifest["loader"])
    panel = _gzipped(DIST / manifest["panel"])
    assert loader <= BEFORE_OPEN_BUDGET, f"loader: {loader} B gzipped"
    assert loader + panel <= TOTAL_BUDGET, f"loader + panel: {loader + panel} B gzipped"
    voice = _gzipped(DIST / manifest["voice"])
    assert voice <= VOICE_BUDGET, f"voice: {voice} B gzipped"
    assert manifest["budget_gzip"]["voice"] == VOICE_BUDGET
    for name, entry in manifest["files"].items():
        assert entry["bytes"] == (DIST / name).stat().st_size, name


def test_the_loaders_name_the_panel_they_were_built_with(manifest: dict[str, Any]) -> None:
    panel = manifest["panel"]
    assert re.fullmatch(r"panel\.[0-9a-f]{10}\.js", panel)
    assert f'"{panel}"' in (DIST / "widget.js").read_text(encoding="utf-8")
    # web/widget.js serves the old /widget.js path: the panel is under dist/ from there.
    assert f'"dist/{panel}"' in (WEB / "widget.js").read_text(encoding="utf-8")
    # The panel names the voice module it was built with, relative to itself.
    assert re.fullmatch(r"voice\.[0-9a-f]{10}\.js", manifest["voice"])
    assert f'"{manifest["voice"]}"' in (DIST / panel).read_text(encoding="utf-8")
    files = manifest["files"]
    assert files[manifest["panel"]]["cache_control"] == "public, max-age=31536000, immutable"
    assert files[manifest["voice"]]["cache_control"] == "public, max-age=31536000, immutable"
    assert files[manifest["loader"]]["cache_control"] == "public, max-age=300"
    assert {e["content_type"] for e in files.values()} == {"text/javascript; charset=utf-8"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_source_parses_html_or_evaluates_code(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    found = [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert found == [], f"{source.name} uses {found}"


def test_the_built_files_evaluate_no_code(manifest: dict[str, Any]) -> None:
    for path in [*(DIST / name for name in manifest["files"]), WEB / "widget.js"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\beval\s*\(|new\s+Function\b|innerHTML", text), path.name
