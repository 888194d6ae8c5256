"""The shop widget in a real browser: what a shopper does with it, on the demo shop page served
by the real dev server, with the mouse, with the keyboard alone, on a phone, and on a theme
whose global CSS tries to restyle everything. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from shared.models import Product
from shared.money import format_price
from shared.store import open_store
from tests.browser.conftest import BOUTIQUE, PHONE, Servers, ShopPage

pytestmark = pytest.mark.browser

OpenShop = Callable[..., ShopPage]
QUESTION = "Avez-vous des sandales en cuir ?"

# Records the SSE events the widget reads, in order, by teeing the fetch response it gets.
RECORD_SSE = """
window.__sse = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  if ((response.headers.get("Content-Type") || "").includes("text/event-stream")) {
    const [mine, theirs] = response.body.tee();
    (async () => {
      const reader = mine.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (const m of buffer.matchAll(/^event: (\\w+)$/gm)) window.__sse.push(m[1]);
        buffer = buffer.slice(buffer.lastIndexOf("\\n\\n") + 2);
      }
    })();
    return new Response(theirs, response);
  }
  return response;
};
"""

# Records each state of the last reply bubble (class, text, cards shown) as it changes.
RECORD_REPLY = """() => {
  const log = document.querySelector("comptoir-chat").shadowRoot.querySelector(".log");
  window.__states = [];
  new MutationObserver(() => {
    const replies = log.querySelectorAll(".msg.assistant");
    const last = replies[replies.length - 1];
    const state = [last.className, last.textContent, log.querySelectorAll(".card").length];
    const previous = JSON.stringify(window.__states.at(-1));
    if (previous !== JSON.stringify(state)) window.__states.push(state);
  }).observe(log, { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def _product(servers: Servers, shop: str, product_id: str) -> Product:
    doc = open_store(servers.dev.env["STORE_URL"]).get(shop, "products", product_id)
    assert doc is not None
    return Product.from_doc(doc)


def _styles(page: Page, selectors: list[str]) -> dict[str, dict[str, str]]:
    """Computed styles of elements inside the widget's shadow root that a theme could touch."""
    return dict(
        page.evaluate(
            """(selectors) => {
              const root = document.querySelector("comptoir-chat").shadowRoot;
              const props = ["font-size", "font-family", "font-weight", "font-style",
                "line-height", "letter-spacing", "text-transform", "text-align", "text-shadow",
                "color", "background-color", "box-sizing", "width", "height", "padding",
                "margin", "border-top-width", "border-radius", "display", "visibility",
                "cursor", "list-style-type", "text-decoration-line"];
              return Object.fromEntries(selectors.map((s) => {
                const style = getComputedStyle(root.querySelector(s));
                return [s, Object.fromEntries(props.map((p) => [p, style.getPropertyValue(p)]))];
              }));
            }""",
            selectors,
        )
    )


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return dict(box)


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# --- the demo shop page --------------------------------------------------------------------------


def test_a_question_streams_a_reply_with_a_product_card_and_survives_a_reload(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop()
    shop.context.add_init_script(RECORD_SSE)
    shop.goto(servers.dev.url + "/")
    page = shop.page
    expect(shop.page.locator("comptoir-chat .badge")).to_have_text("1")  # the unseen greeting
    expect(shop.launcher).to_have_attribute("aria-expanded", "false")
    shop.shot("closed")

    shop.open()
    expect(shop.panel).to_have_attribute("role", "dialog")
    expect(shop.panel).to_have_accessible_name("Maison Teranga")
    expect(shop.page.locator("comptoir-chat .badge")).to_be_hidden()
    assert shop.focused() == "TEXTAREA"
    shop.ask(QUESTION)

    card = page.locator("comptoir-chat .card").first
    expect(card).to_be_visible()
    # The reply streamed: at least one delta was read before the final event.
    events = page.evaluate("window.__sse")
    assert events[-1] == "done" and "delta" in events[:-1], events
    reply = shop.replies.last
    product = _product(servers, "demo", "sandales-en-cuir")
    expect(reply).to_contain_text(product.title)
    expect(reply.locator("li strong").first).to_have_text(product.title)  # markdown rendered
    expect(reply).not_to_contain_text("**")
    expect(card.locator(".title")).to_have_text(product.title)
    expect(card.locator(".title")).to_have_attribute("href", product.url)
    expect(card.locator(".price")).to_have_text(format_price(product.price, product.currency))
    expect(card.locator("img")).to_be_visible()
    expect(card.locator(".add")).to_have_count(0)  # not a Shopify store: no cart button
    expect(page.locator("comptoir-chat [aria-live=polite]")).to_contain_text(product.title)
    session = page.evaluate("localStorage.getItem('comptoir:demo:session')")
    assert session
    shop.shot("answered")

    # Another page of the shop (here: the same page again): the conversation comes back.
    page.reload()
    expect(shop.launcher).to_be_visible()
    expect(shop.page.locator("comptoir-chat .badge")).to_be_hidden()  # greeting already seen
    shop.open()
    restored = page.locator("comptoir-chat .past .msg")
    expect(restored).to_have_count(2)
    expect(restored.first).to_have_text(QUESTION)
    expect(restored.last).to_contain_text(product.title)
    # The reply's cards come back under it, as they were shown.
    again = page.locator("comptoir-chat .past .msg.assistant + .cards .card").first
    expect(again.locator(".title")).to_have_text(product.title)
    expect(again.locator(".title")).to_have_attribute("href", product.url)
    expect(again.locator(".price")).to_have_text(format_price(product.price, product.currency))
    expect(again.locator("img")).to_be_visible()
    shop.shot("restored")


def test_the_keyboard_alone_is_enough(servers: Servers, open_shop: OpenShop) -> None:
    shop = open_shop(servers.dev.url + "/")
    page = shop.page
    for _ in range(40):  # Tab through the page until the launcher (last in tab order)
        page.keyboard.press("Tab")
        if shop.focused() == "BUTTON.launch":
            break
    else:
        pytest.fail("Tab never reached the launcher")
    page.keyboard.press("Enter")
    expect(shop.panel).to_be_visible()
    assert shop.focused() == "TEXTAREA"  # focus moved into the dialog

    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator("comptoir-chat .card")).to_have_count(3)
    assert shop.focused() == "TEXTAREA"  # still there for the next question

    page.keyboard.press("Shift+Tab")  # back into the conversation: a card is reachable
    page.keyboard.press("Shift+Tab")
    assert shop.focused() in ("A.title", "DIV.log")
    shop.shot("keyboard")
    page.keyboard.press("Escape")
    expect(shop.panel).to_be_hidden()
    assert shop.focused() == "BUTTON.launch"  # and back out to where it came from
    expect(shop.launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")  # reopen: the conversation is still there
    expect(shop.panel).to_be_visible()
    expect(shop.mine).to_have_text([QUESTION])
    page.keyboard.press("Escape")
    assert shop.focused() == "BUTTON.launch"


def test_on_a_phone_the_panel_is_full_screen(servers: Servers, open_shop: OpenShop) -> None:
    shop = open_shop(servers.dev.url + "/", viewport=PHONE, mobile=True)
    page = shop.page
    launcher, buy = _box(shop.launcher), _box(page.locator("#sticky-buy .buy"))
    assert not _overlaps(launcher, buy), "the launcher covers the theme's sticky Buy button"
    assert launcher["x"] + launcher["width"] <= PHONE["width"]
    shop.shot("closed")

    shop.launcher.tap()
    expect(shop.panel).to_be_visible()
    assert _box(shop.panel) == {"x": 0, "y": 0, **PHONE}
    shop.ask(QUESTION)
    expect(page.locator("comptoir-chat .card")).to_have_count(3)
    shop.shot("open")

    # Full screen, Tab stays inside the panel: from the send button it wraps to Close.
    page.locator("comptoir-chat .send").focus()
    page.keyboard.press("Tab")
    assert shop.focused() == "BUTTON.close"
    page.locator("comptoir-chat .close").tap()
    expect(shop.panel).to_be_hidden()


def test_a_heavy_theme_cannot_restyle_the_widget(servers: Servers, open_shop: OpenShop) -> None:
    selectors = [".launch", ".badge", ".panel", ".name", ".close", ".msg.assistant",
                 ".msg.assistant p", ".log", "textarea", ".send", ".send svg"]  # fmt: skip
    seen: list[dict[str, dict[str, str]]] = []
    for path in ("/", "/heavy-theme.html"):
        shop = open_shop(servers.dev.url + path)
        # Above the theme's own max-z-index layers: the launcher is what a click there hits.
        top = shop.page.evaluate(
            """() => {
              const box = document.querySelector("comptoir-chat").shadowRoot
                .querySelector(".launch").getBoundingClientRect();
              return document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2)
                .tagName;
            }"""
        )
        assert top == "COMPTOIR-CHAT"
        badge = _styles(shop.page, [".badge"])  # before opening: the panel hides it
        shop.open()
        styles = {**_styles(shop.page, selectors), **badge}
        seen.append(styles)
        shop.shot("open")
    plain, heavy = seen
    for selector in selectors:
        assert heavy[selector] == plain[selector], selector
    assert plain[".launch"]["font-family"].startswith("system-ui")
    assert plain[".launch"]["width"] == "56px"
    assert plain["textarea"]["font-size"] == "16px"


def test_the_widget_leaves_the_page_alone(servers: Servers, open_shop: OpenShop) -> None:
    """No layout shift, no global name, no style or element added to the page but its host,
    and the theme's sticky Buy button stays uncovered."""
    snapshot = """() => ({
      keys: Object.keys(window).sort(),
      body: document.body.outerHTML,
      head: document.head.outerHTML,
      sheets: document.styleSheets.length + document.adoptedStyleSheets.length,
      buy: JSON.stringify(document.querySelector("#sticky-buy").getBoundingClientRect()),
      font: getComputedStyle(document.body).font,
    })"""
    bare = open_shop()
    bare.page.route(  # the same page without the widget
        "**/dist/widget.js", lambda route: route.fulfill(body="", content_type="text/javascript")
    )
    bare.page.goto(servers.dev.url + "/")
    without = bare.page.evaluate(snapshot)

    shop = open_shop(servers.dev.url + "/")
    page = shop.page
    page.wait_for_load_state("load")
    page.wait_for_timeout(400)  # the launcher's re-check after load has run
    assert page.evaluate("window.__shifts") == []  # cumulative layout shift: exactly 0
    assert page.evaluate("document.documentElement.lastElementChild.tagName") == "COMPTOIR-CHAT"
    assert page.evaluate("document.querySelectorAll('comptoir-chat').length") == 1
    buy = _box(page.locator("#sticky-buy .buy"))
    assert not _overlaps(_box(shop.launcher), buy), "the launcher covers the sticky Buy button"
    expect(page.locator("#sticky-buy .buy")).to_be_visible()
    page.locator("#sticky-buy .buy").click()  # nothing of ours in the way of the theme's button

    shop.open()
    shop.ask(QUESTION)
    expect(page.locator("comptoir-chat .card")).to_have_count(3)
    assert page.evaluate(snapshot) == without
    assert page.evaluate("window.__shifts") == []

    # A theme that shows a taller sticky bar later (after a scroll, say): the launcher moves
    # above it, by a transform, which is no layout shift either.
    shop.launcher.click()  # closed again
    expect(shop.panel).to_be_hidden()
    page.evaluate(
        """() => {
          const bar = document.createElement("aside");
          bar.id = "late-bar";
          bar.textContent = "Offre : -10 % aujourd'hui";
          bar.style.cssText = "position:fixed;left:0;right:0;bottom:0;height:160px;z-index:30;"
            + "background:#ffe9c7";
          document.body.append(bar);
          dispatchEvent(new Event("scroll"));
        }"""
    )
    buy = _box(page.locator("#late-bar"))
    page.wait_for_function(
        """(barTop) => {
          const root = document.querySelector("comptoir-chat").shadowRoot;
          return root.querySelector(".launch").getBoundingClientRect().bottom <= barTop;
        }""",
        arg=buy["y"],
    )
    assert page.evaluate("window.__shifts") == []


def test_the_tags_optional_attributes_side_colour_and_language(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop(servers.side.url + "/left.html")
    launcher = _box(shop.launcher)
    assert launcher["x"] == 20  # data-position="left"
    expect(shop.launcher).to_have_css("background-color", "rgb(245, 197, 24)")  # data-color
    expect(shop.launcher).to_have_css("color", "rgb(31, 29, 26)")  # dark on a light colour
    expect(shop.launcher).to_have_accessible_name("Open chat with Atelier")  # data-lang="en"
    shop.open()
    assert _box(shop.panel)["x"] == 20
    expect(shop.field).to_have_attribute("placeholder", "Type your message…")
    expect(shop.replies.first).to_have_text("Hello! How can I help you?")

    # A colour that tries to inject CSS is refused: the default colour, the widget intact.
    bad = open_shop(servers.side.url + "/bad-color.html")
    expect(bad.launcher).to_have_css("background-color", "rgb(43, 33, 24)")
    expect(bad.launcher).to_have_css("color", "rgb(255, 255, 255)")


def test_card_prices_are_written_in_the_replys_language(
    servers: Servers, open_shop: OpenShop
) -> None:
    """The demo page's panel is French (data-lang="fr"); an English question gets its card's
    price written the English way, as its reply writes it, a French one the French way; both
    again after a reload."""
    shop = open_shop(servers.dev.url + "/")
    shop.open()
    product = _product(servers, "demo", "sandales-en-cuir")
    french, english = (format_price(product.price, product.currency, lang) for lang in ("fr", "en"))
    assert french != english
    prices = shop.page.locator("comptoir-chat .cards .card:first-child .price")
    shop.ask("How much are the leather sandals?")
    expect(prices).to_have_count(1)
    expect(shop.replies.last).to_contain_text(english)
    expect(prices.first).to_have_text(english)
    shop.ask(QUESTION)
    expect(prices).to_have_count(2)
    expect(shop.replies.last).to_contain_text(french)
    expect(prices.last).to_have_text(french)

    shop.page.reload()
    shop.open()
    expect(shop.page.locator("comptoir-chat .past .msg")).to_have_count(4)
    expect(prices).to_have_text([english, french])


# --- streaming, errors -------------------------------------------------------------------------


def test_streamed_text_grows_and_a_replace_event_corrects_it(
    servers: Servers, open_shop: OpenShop
) -> None:
    side = servers.side
    final = "Bonjour et bienvenue ! Voici nos **sandales**."
    card = {"id": "s", "title": "Sandales", "price": 19.99, "currency": "EUR",
            "url": "https://shop.example/s", "image": "https://cdn.example/s.jpg",
            "variant_id": None}  # fmt: skip
    side.script = [
        (0.4, "delta", {"text": "Bonjour"}),
        (0.4, "delta", {"text": " et bienvnue"}),
        (0.4, "replace", {"text": "Bonjour et bienvenue !"}),
        (0.4, "done", {"session_id": "s-1", "reply": final, "products": [card], "lead": None}),
    ]
    shop = open_shop(side.url + "/stream.html")
    shop.open()
    page = shop.page
    page.evaluate(RECORD_REPLY)
    shop.ask("Bonjour")
    page.keyboard.press("Escape")  # closed while it answers: the reply counts as unread
    badge = page.locator("comptoir-chat .badge")
    expect(badge).to_have_text("1")
    expect(shop.launcher).to_have_accessible_name(re.compile(r"1 nouveau message$"))
    shop.open()
    expect(badge).to_be_hidden()
    expect(page.locator("comptoir-chat .card .price")).to_have_text("19,99 €")
    reply = shop.replies.last
    expect(reply.locator("strong")).to_have_text("sandales")
    states = page.evaluate("window.__states")
    assert states[states.index(["msg assistant typing", "", 0]) :] == [
        ["msg assistant typing", "", 0],  # the typing indicator until the first delta
        ["msg assistant", "Bonjour", 0],  # shown as it arrives
        ["msg assistant", "Bonjour et bienvnue", 0],
        ["msg assistant", "Bonjour et bienvenue !", 0],  # replaced, not appended
        ["msg assistant", "Bonjour et bienvenue ! Voici nos sandales.", 1],  # done: + card
    ]
    assert page.evaluate("localStorage.getItem('comptoir:demo:session')") == "s-1"
    assert side.received[-1] == {"message": "Bonjour", "session_id": None, "shop": "demo"}


def test_replies_are_rendered_as_text_never_as_html(servers: Servers, open_shop: OpenShop) -> None:
    reply = (
        "<img src=x onerror=alert(1)> **gras** [lien](javascript:alert(1)) "
        "[catalogue](https://shop.example/c) et https://shop.example/a.\n- un\n- deux"
    )
    evil = {"id": "x", "title": "<b>X</b>", "price": 1000, "currency": "XOF",
            "url": "javascript:alert(1)", "image": "data:image/svg+xml,<svg/>",
            "variant_id": None}  # fmt: skip
    answer = {"session_id": "s-2", "reply": reply, "products": [evil], "lead": None}
    shop = open_shop(servers.dev.url + "/")
    shop.page.route("**/chat", lambda route: route.fulfill(json=answer))  # JSON, not SSE
    shop.open()
    shop.ask("Bonjour")
    bubble = shop.replies.last
    expect(bubble).to_contain_text("<img src=x onerror=alert(1)> gras [lien](javascript:alert(1))")
    expect(bubble.locator("img")).to_have_count(0)
    expect(bubble.locator("strong")).to_have_text("gras")
    links = bubble.locator("a")
    expect(links).to_have_count(2)
    expect(links.first).to_have_attribute("href", "https://shop.example/c")
    expect(links.last).to_have_attribute("href", "https://shop.example/a")  # not the full stop
    expect(links.last).to_have_attribute("rel", "noopener noreferrer")
    expect(bubble.locator("li")).to_have_text(["un", "deux"])
    card = shop.page.locator("comptoir-chat .card")
    expect(card.locator(".title")).to_have_text("<b>X</b>")
    expect(card.locator("a")).to_have_count(0)  # a javascript: URL is never a link
    expect(card.locator("img")).to_have_count(0)  # nor a data: image


def test_json_replies_work_when_the_api_does_not_stream(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop(servers.dev.url + "/")

    def without_sse(route: Route) -> None:
        headers = {**route.request.headers, "accept": "application/json"}
        route.continue_(headers=headers)

    shop.page.route("**/chat", without_sse)
    shop.open()
    shop.ask(QUESTION)
    expect(shop.page.locator("comptoir-chat .card")).to_have_count(3)
    expect(shop.replies.last).to_contain_text("Sandales en cuir artisanales")


def test_rate_limited_shows_a_notice_and_keeps_the_message(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop(servers.dev.url + "/")
    shop.allow_errors(r"status of 429")
    error = {"error": {"code": "rate_limited", "message": "too many messages, wait a moment"}}
    shop.page.route(
        "**/chat",
        lambda route: route.fulfill(status=429, json=error, headers={"Retry-After": "42"}),
    )
    shop.open()
    shop.ask(QUESTION)
    note = shop.page.locator("comptoir-chat .note")
    expect(note).to_have_text("Trop de messages d'un coup. Réessayez dans 42 s.")
    expect(note).to_have_attribute("role", "status")
    expect(shop.mine).to_have_text([QUESTION])
    expect(shop.mine.first).to_have_class(re.compile(r"\bfailed\b"))
    expect(shop.page.locator("comptoir-chat .fail button")).to_have_text("Réessayer")


def test_a_failed_send_keeps_the_text_and_retry_sends_it(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop(servers.dev.url + "/")
    shop.allow_errors(r"net::ERR_(FAILED|INTERNET_DISCONNECTED)")
    attempts: list[str] = []

    def flaky(route: Route) -> None:
        attempts.append(route.request.post_data or "")
        if len(attempts) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    shop.page.route("**/chat", flaky)
    shop.open()
    shop.ask(QUESTION)
    retry = shop.page.locator("comptoir-chat .fail button")
    expect(retry).to_be_visible()
    expect(shop.page.locator("comptoir-chat .note")).to_contain_text("Connexion impossible")
    expect(shop.mine).to_have_text([QUESTION])
    shop.shot("failed")
    retry.click()
    expect(shop.page.locator("comptoir-chat .card")).to_have_count(3)
    expect(shop.mine).to_have_text([QUESTION])  # the same message, not a second copy
    expect(shop.mine.first).not_to_have_class(re.compile(r"\bfailed\b"))
    expect(shop.page.locator("comptoir-chat .note")).to_be_hidden()
    assert [json.loads(a)["message"] for a in attempts] == [QUESTION, QUESTION]


# --- another origin, a Shopify store -------------------------------------------------------------


def test_on_a_shopify_store_of_another_origin_add_to_cart_posts_the_variant(
    servers: Servers, open_shop: OpenShop
) -> None:
    """The page's origin differs from the API's (CORS), its CSP allows only the widget's and
    the API's origin (no style-src at all), and Shopify's cart API gets the card's variant."""
    posted: list[dict[str, Any]] = []

    def cart_add(route: Route) -> None:
        posted.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(json={"items": [{"id": 44001, "quantity": 1}]})

    shop = open_shop(shopify=True)
    shop.page.route("**/cart/add.js", cart_add)
    shop.goto(servers.side.url + "/cross-origin.html")
    shop.open()
    shop.ask(QUESTION)
    card = shop.page.locator("comptoir-chat .card").first
    expect(card.locator(".title")).to_have_text("Sandales en cuir tressé")
    product = _product(servers, BOUTIQUE, "sandales-cuir-tresse")
    assert product.price == Decimal("18500")
    expect(card.locator(".price")).to_have_text(format_price(product.price, "XOF"))
    add = card.locator(".add")
    expect(add).to_have_text("Ajouter au panier")
    add.click()
    expect(add).to_have_text("Ajouté · voir le panier")
    assert posted == [{"items": [{"id": 44001, "quantity": 1}]}]
    shop.shot("added")
