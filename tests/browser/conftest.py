"""Browser tests: Debian's chromium, driven by Playwright, against the real dev server.

One dev server (``python -m shared serve``, SQLite in a temp dir seeded by ``seed-demo``) and
one browser for the whole session; a fresh browser context (empty localStorage) per page.
A second loopback server, on another port and so another origin, serves the pages that prove
CORS and a strict CSP, and a scripted slow SSE stream.

Chromium comes from Debian (``apt-get install -y chromium``), never from ``playwright
install``. Without it the tests are skipped locally and fail on CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.browser.build import built_widget
from tests.loopback import DevServer, dev_server, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DATA = Path(__file__).parent / "data"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BOUTIQUE = "boutique"  # a shop imported from Shopify's products.json: numeric variant ids
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 667}

# Product images point at Shopify's CDN, unreachable here: answer them with a placeholder.
PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="10" fill="#c89566"/><circle cx="5" cy="5" r="3" fill="#8a5a35"/>'
    b"</svg>"
)
IMAGES = re.compile(r"^https://cdn\.(shopify\.com|example)/")

# Collected before the page's scripts run: layout shifts, and the page's own global names.
INIT_SCRIPT = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__shifts.push(entry.value);
}).observe({ type: "layout-shift", buffered: true });
"""


# --- the other origin ----------------------------------------------------------------------------


@dataclass
class SideServer:
    """Pages on a second origin, and a scripted, slow SSE ``POST /chat`` for stream tests."""

    url: str
    pages: dict[str, bytes] = field(default_factory=dict)
    # (seconds to wait, event name, data) for each event of the next streamed reply
    script: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


def _side_handler(side: SideServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: simple SSE

        def do_GET(self) -> None:
            body = side.pages.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            side.received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for delay, name, data in side.script:
                time.sleep(delay)
                payload = json.dumps(data, ensure_ascii=False)
                self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
                self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Handler


def _page(title: str, script_src: str, api: str, shop: str, csp: str, extra: str = "") -> bytes:
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<link rel="icon" href="data:,"><title>{title}</title></head>
<body><h1>{title}</h1><p>Une page d'une autre origine que l'API.</p>
<script src="{script_src}" data-api="{api}" data-shop="{shop}" data-title="{title}" {extra}
 defer></script>
</body></html>""".encode()


# --- session fixtures ----------------------------------------------------------------------------


@dataclass
class Servers:
    dev: DevServer
    side: SideServer


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    built_widget()
    # Another origin for pages that embed the widget; its pages are filled in below, once the
    # dev server's address is known.
    side = SideServer("")
    with serving(_side_handler(side), "side-server") as httpd:
        side.url = httpd.root
        settings = {
            "DEFAULT_SHOP": "demo",
            "ALLOWED_ORIGINS": side.url,  # same-origin pages need no CORS; the side page does
            "RATE_LIMIT_PER_MINUTE": "1000",
            "CLIENT_RATE_LIMIT_PER_MINUTE": "1000",
            "LOG_LEVEL": "WARNING",
        }
        boutique = (
            "import-catalog", str(DATA / "boutique_products.json"), "--shop", BOUTIQUE,
            "--name", "Boutique Teranga", "--currency", "XOF",
        )  # fmt: skip
        data = tmp_path_factory.mktemp("browser-dev")
        printed = data / "stdout.txt"  # what `make dev` prints: the console's sign-in link
        with dev_server(data, settings, setup=[("seed-demo",), boutique], stdout=printed) as dev:
            _side_pages(side, dev.url)
            yield Servers(dev, side)


def _side_pages(side: SideServer, dev_url: str) -> None:
    # The widget and the API on the dev server's origin; only they are allowed by the CSP.
    # No style-src at all: the widget styles itself through constructable stylesheets.
    side.pages["/cross-origin.html"] = _page(
        "Boutique Teranga",
        f"{dev_url}/dist/widget.js",
        dev_url,
        BOUTIQUE,
        f"default-src 'none'; script-src {dev_url}; connect-src {dev_url} 'self'; "
        "img-src https: data:",
    )
    side.pages["/stream.html"] = _page(
        "Flux lent",
        f"{dev_url}/dist/widget.js",
        "",
        "demo",
        f"default-src 'none'; script-src {dev_url}; connect-src 'self'; img-src https: data:",
    )
    # The optional attributes: left side, a light brand colour, English; and the old loader
    # path /widget.js (it finds its panel under dist/).
    side.pages["/left.html"] = _page(
        "Atelier",
        f"{dev_url}/widget.js",
        dev_url,
        "demo",
        f"default-src 'none'; script-src {dev_url}; connect-src {dev_url}; img-src data:",
        'data-position="left" data-color="#f5c518" data-lang="en"',
    )
    side.pages["/bad-color.html"] = _page(
        "Atelier",
        f"{dev_url}/dist/widget.js",
        dev_url,
        "demo",
        f"default-src 'none'; script-src {dev_url}; connect-src {dev_url}; img-src data:",
        'data-color="red;}:host{display:none}"',
    )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """One Playwright for the session: its sync API allows one per thread, so every module's
    browser is launched from it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    running = sync_playwright().start()
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def chromium(playwright: Playwright, *extra_flags: str) -> Iterator[Browser]:
    """Debian's chromium with the common flags and ``extra_flags``."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_FLAGS, *extra_flags]
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    with chromium(playwright) as launched:
        yield launched


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical violations on the page as it is (open shadow roots
    included). Evaluated through the browser's debugging protocol, which no page CSP blocks."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    checked, found = page.evaluate(
        """async () => {
             const results = await axe.run(document);
             return [results.passes.length,
                     results.violations.map(v => ({ id: v.id, impact: v.impact,
                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")) }))];
           }"""
    )
    assert checked > 0, "axe-core checked nothing"
    return [v for v in found if v["impact"] in ("serious", "critical")]


# --- one page of a shop --------------------------------------------------------------------------


@dataclass
class ShopPage:
    """A page with the widget, and what the widget test needs to drive and read it."""

    page: Page
    context: BrowserContext
    errors: list[str]
    allowed_errors: list[re.Pattern[str]]
    shot: Callable[[str], None]

    @property
    def launcher(self) -> Locator:
        return self.page.locator("comptoir-chat .launch")

    @property
    def panel(self) -> Locator:
        return self.page.locator("comptoir-chat .panel")

    @property
    def field(self) -> Locator:
        return self.page.locator("comptoir-chat .panel textarea")

    @property
    def replies(self) -> Locator:
        return self.page.locator("comptoir-chat .msg.assistant")

    @property
    def mine(self) -> Locator:
        return self.page.locator("comptoir-chat .msg.user")

    def goto(self, url: str) -> None:
        self.page.goto(url)
        expect(self.launcher).to_be_visible()

    def open(self) -> None:
        self.launcher.click()
        expect(self.panel).to_be_visible()

    def ask(self, text: str) -> None:
        self.field.fill(text)
        self.field.press("Enter")

    def focused(self) -> str:
        """The focused element through shadow roots, with its first class: 'BUTTON.launch'."""
        return str(
            self.page.evaluate(
                """() => {
                  let node = document.activeElement;
                  while (node && node.shadowRoot && node.shadowRoot.activeElement)
                    node = node.shadowRoot.activeElement;
                  if (!node) return "";
                  return node.tagName + (node.classList[0] ? "." + node.classList[0] : "");
                }"""
            )
        )

    def allow_errors(self, *patterns: str) -> None:
        """Console errors this test causes on purpose (a refused request is logged)."""
        self.allowed_errors.extend(re.compile(p) for p in patterns)


@pytest.fixture
def open_shop(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ShopPage]]:
    """Open a page in a fresh context: ``open_shop(url, viewport=..., shopify=False)``."""
    opened: list[ShopPage] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w-]+", "_", request.node.name)

    def open_page(
        url: str | None = None,
        *,
        viewport: ViewportSize = DESKTOP,
        shopify: bool = False,
        mobile: bool = False,
    ) -> ShopPage:
        context = browser.new_context(
            locale="fr-FR", viewport=viewport, is_mobile=mobile, has_touch=mobile
        )
        context.route(
            IMAGES, lambda route: route.fulfill(body=PLACEHOLDER, content_type="image/svg+xml")
        )
        context.add_init_script(INIT_SCRIPT)
        if shopify:  # what a Shopify storefront defines before the theme's scripts
            context.add_init_script(
                "window.Shopify = { shop: 'boutique.myshopify.com', routes: { root: '/' } };"
            )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        number = len(opened) + 1

        def shot(label: str) -> None:
            page.screenshot(path=ARTIFACTS / f"{name}-{number}-{label}.png")

        shop = ShopPage(page, context, errors, [], shot)
        opened.append(shop)
        if url is not None:
            shop.goto(url)
        return shop

    yield open_page
    try:
        for shop in opened:
            if not shop.page.is_closed():
                shop.shot("end")
            unexpected = [
                e for e in shop.errors if not any(p.search(e) for p in shop.allowed_errors)
            ]
            assert unexpected == [], f"console errors: {unexpected}"
    finally:
        for shop in opened:
            shop.context.close()
