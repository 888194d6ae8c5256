"""The shop widget's weight and speed.

Weight: gzipped bytes (level 9) of what a shop page loads before the shopper opens the chat
(the loader) and in all (loader + panel), against the budgets (12 KB / 20 KB) and against
Chatwoot's widget (about 170 KiB of JS) as a reference.

Speed, in Debian's headless chromium against the real dev server on loopback (a fresh browser
context per run, so nothing is cached; median of ``--runs``): the time from DOMContentLoaded to
the launcher being painted, the main-thread time the widget adds to the page's load (script,
style and layout, from Chrome's own counters: the page with the widget minus the page with an
empty widget.js), the first open (fetch and build the panel), and the host page's cumulative
layout shift.

    .venv/bin/python bench/widget.py [--runs 7]

Prints Markdown for bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.build import DIST, built_widget  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from tests.loopback import dev_server  # noqa: E402

BEFORE_OPEN_BUDGET = 12_000
TOTAL_BUDGET = 20_000
CHATWOOT_BYTES = 170 * 1024  # Chatwoot's widget JS, as the issue quotes it

# Installed before the page's own scripts: layout shifts, and when the launcher is painted (the
# frame after the one in which it first became visible).
PROBE = """
window.__bench = { shifts: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__bench.shifts += entry.value;
}).observe({ type: "layout-shift", buffered: true });
new MutationObserver((records, observer) => {
  const host = document.querySelector("comptoir-chat");
  if (!host) return;
  observer.disconnect();
  window.__bench.inserted = performance.now();
  const launcher = host.shadowRoot.querySelector(".launch");
  (function poll() {
    if (getComputedStyle(launcher).visibility !== "visible") return requestAnimationFrame(poll);
    requestAnimationFrame(() => (window.__bench.painted = performance.now()));
  })();
}).observe(document, { childList: true, subtree: true });
"""
OPEN = """async () => {
  const root = document.querySelector("comptoir-chat").shadowRoot;
  const started = performance.now();
  root.querySelector(".launch").click();
  for (;;) {
    await new Promise(requestAnimationFrame);
    const panel = root.querySelector(".panel");
    if (panel && !panel.hidden && root.activeElement?.tagName === "TEXTAREA")
      return performance.now() - started;
  }
}"""


def sizes() -> dict[str, int]:
    manifest = built_widget()

    def gz(name: str) -> int:
        return len(gzip.compress((DIST / name).read_bytes(), compresslevel=9))

    return {
        "loader": gz(manifest["loader"]),
        "panel": gz(manifest["panel"]),
        "loader_raw": (DIST / manifest["loader"]).stat().st_size,
        "panel_raw": (DIST / manifest["panel"]).stat().st_size,
    }


@contextmanager
def served() -> Iterator[str]:
    """The dev server with the demo shop, on a temporary store; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp:
        settings = {"DEFAULT_SHOP": "demo", "LOG_LEVEL": "WARNING"}
        with dev_server(Path(tmp), settings) as server:
            yield server.url


# Chrome's cumulative main-thread counters (seconds), from the DevTools protocol.
COUNTERS = ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration")


def measure(url: str, runs: int) -> tuple[dict[str, list[float]], str]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {"to_launcher": [], "main_thread": [], "open": [], "cls": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        version = browser.version
        for run in range(runs + 1):  # the first run warms the server and the browser up
            busy: dict[bool, float] = {}
            for with_widget in (False, True):
                context = browser.new_context(
                    locale="fr-FR", viewport={"width": 1280, "height": 800}
                )
                context.add_init_script(PROBE)
                page = context.new_page()
                if not with_widget:
                    page.route(
                        "**/dist/widget.js",
                        lambda route: route.fulfill(body="", content_type="text/javascript"),
                    )
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(url + "/", wait_until="load")
                if with_widget:
                    page.wait_for_function("window.__bench.painted !== undefined")
                page.wait_for_timeout(300)  # the launcher's after-load check has run too
                metrics = {
                    m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                }
                busy[with_widget] = sum(metrics[name] for name in COUNTERS) * 1000
                if with_widget and run > 0:
                    probe: dict[str, Any] = page.evaluate("window.__bench")
                    dcl = page.evaluate(
                        "performance.getEntriesByType('navigation')[0].domContentLoadedEventStart"
                    )
                    results["to_launcher"].append(probe["painted"] - dcl)
                    results["cls"].append(probe["shifts"])
                    results["main_thread"].append(busy[True] - busy[False])
                    results["open"].append(page.evaluate(OPEN))
                context.close()
        browser.close()
    return results, version


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    size = sizes()
    with served() as url:
        results, version = measure(url, args.runs)
    median = {k: statistics.median(v) for k, v in results.items()}
    total = size["loader"] + size["panel"]

    def kb(n: int) -> str:
        return f"{n:,} B ({n / 1024:.1f} KiB)"

    print("## Shop widget (`bench/widget.py`)\n")
    print(
        f"Built by `node web/build.mjs` (esbuild, minified); gzip level 9. Machine: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, chromium {version} "
        f"(headless), dev server on loopback; median of {args.runs} runs, each in a fresh "
        "browser context (nothing cached).\n"
    )
    print("| what | gzipped | minified | budget (gzipped) |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| loader `widget.js` (all a page loads before the chat opens) | {kb(size['loader'])} "
        f"| {size['loader_raw']:,} B | {BEFORE_OPEN_BUDGET:,} B |"
    )
    print(
        f"| panel `panel.<hash>.js` (on first open) | {kb(size['panel'])} "
        f"| {size['panel_raw']:,} B | |"
    )
    print(
        f"| total | {kb(total)} | {size['loader_raw'] + size['panel_raw']:,} B "
        f"| {TOTAL_BUDGET:,} B |"
    )
    print(
        f"| Chatwoot's widget (reference) | about {kb(CHATWOOT_BYTES)} | | "
        f"ours: {CHATWOOT_BYTES / total:.0f}x less in all, "
        f"{CHATWOOT_BYTES / size['loader']:.0f}x less before opening |"
    )
    print()
    print("| timing (ms, median) | value |")
    print("| --- | ---: |")
    print(f"| DOMContentLoaded → launcher painted | {median['to_launcher']:.1f} |")
    print(
        "| main-thread time the widget adds to the page's load (script + style + layout) "
        f"| {median['main_thread']:.1f} |"
    )
    print(
        f"| click → panel open, field focused (first open: fetch + build) | {median['open']:.1f} |"
    )
    print(f"| host page's cumulative layout shift (max of runs) | {max(results['cls']):g} |")
    over = size["loader"] > BEFORE_OPEN_BUDGET or total > TOTAL_BUDGET
    if over or max(results["cls"]) > 0:
        sys.exit("over budget or the page shifted")


if __name__ == "__main__":
    main()
