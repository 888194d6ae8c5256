"""The operator console in Debian's chromium, against the stand-in of the console API
(``console_standin.py``: PLAN's contract, in memory) until the auth, inbox, live and shop areas
are merged: sign-in by link, the inbox and a conversation, a live badge, a reply with the CSRF
header, settings errors next to their field, an order move, French and English, a phone, the
keyboard, and axe-core on every screen. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, serious_violations
from tests.browser.console_standin import CSRF, EMAIL, LINK_TOKEN, PASSWORD, Standin, standin

pytestmark = pytest.mark.browser

SCREENS = ["inbox", "inbox/c-awa", "orders", "orders/o-1", "customers", "customers/cus-c-awa",
           "settings", "catalog", "campaigns", "jobs", "health", "audit"]  # fmt: skip


@dataclass
class Console:
    page: Page
    server: Standin
    errors: list[str]
    shot: Callable[[str], None]
    allowed_errors: list[str]

    def open(self, screen: str = "inbox") -> None:
        self.page.goto(f"{self.server.url}/admin/#{screen}")

    def sign_in_by_link(self) -> None:
        self.page.goto(f"{self.server.url}/admin/#link={LINK_TOKEN}")
        expect(self.page.locator("nav a[data-section=inbox]")).to_be_visible()

    def axe(self) -> list[dict[str, object]]:
        """axe-core's serious and critical violations on the page as it is."""
        return serious_violations(self.page)


@pytest.fixture
def console(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Console]]:
    """``console(locale="fr-FR", viewport=DESKTOP, sse=True)``: a fresh context on a fresh
    stand-in; no console error may be logged (a CSP violation is one)."""
    opened: list[tuple[Console, BrowserContext]] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w-]+", "_", request.node.name)
    servers = []

    def open_console(
        locale: str = "fr-FR", viewport: ViewportSize = DESKTOP, sse: bool = True
    ) -> Console:
        manager = standin()
        server = manager.__enter__()
        servers.append(manager)
        server.sse = sse
        context = browser.new_context(locale=locale, viewport=viewport)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        number = len(opened) + 1

        def shot(label: str) -> None:
            page.screenshot(path=ARTIFACTS / f"console-{name}-{number}-{label}.png")

        # The refused calls a test makes on purpose log a failed resource load.
        made = Console(page, server, errors, shot, ["status of 40"])
        opened.append((made, context))
        return made

    yield open_console
    try:
        for made, _ in opened:
            made.shot("end")
            unexpected = [e for e in made.errors if not any(a in e for a in made.allowed_errors)]
            assert unexpected == [], f"console errors: {unexpected}"
    finally:
        for _, context in opened:
            context.close()
        for manager in servers:
            manager.__exit__(None, None, None)


def test_a_link_signs_in_and_leaves_no_token_in_the_url_or_storage(
    console: Callable[..., Console],
) -> None:
    c = console()
    c.sign_in_by_link()
    assert "link=" not in c.page.url and LINK_TOKEN not in c.page.url
    # about:blank and the console: the link's own entry was replaced, not kept behind it.
    assert c.page.evaluate("history.length") == 2
    stored = c.page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    assert CSRF not in stored and LINK_TOKEN not in stored
    expect(c.page.locator(".top .who")).to_have_text(EMAIL)
    c.shot("inbox")


def test_a_wrong_link_shows_the_sign_in_form_and_a_password_signs_in(
    console: Callable[..., Console],
) -> None:
    c = console()
    c.page.goto(f"{c.server.url}/admin/#link=used-already")
    expect(c.page.get_by_role("alert")).to_contain_text("lien de connexion")
    c.page.get_by_label("E-mail").fill(EMAIL)
    c.page.get_by_label("Mot de passe").fill(PASSWORD)
    c.page.get_by_role("button", name="Se connecter").click()
    expect(c.page.get_by_role("heading", name="Conversations")).to_be_visible()
    assert c.axe() == []


def test_the_inbox_shows_a_conversation_and_a_reply_sends_the_csrf_header(
    console: Callable[..., Console],
) -> None:
    c = console()
    c.sign_in_by_link()
    items = c.page.locator("ul.conversations > li")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Awa Diop")
    expect(items.first.locator(".badge.human")).to_be_visible()
    items.first.get_by_role("link").click()
    log = c.page.get_by_role("log")
    expect(log).to_contain_text("Je regarde votre taille.")
    expect(log.locator(".msg.operator .who")).to_contain_text(EMAIL)
    expect(log.locator(".card")).to_contain_text("Sandales en cuir")
    expect(c.page.locator(".order")).to_contain_text("o-1")
    assert any(w.path == "conversations/c-awa/read" for w in c.server.writes)
    c.shot("conversation")

    reply = c.page.get_by_label("Répondre")
    reply.fill("Nous avons la pointure 39.")
    reply.press("Control+Enter")
    expect(log).to_contain_text("Nous avons la pointure 39.")
    expect(reply).to_have_value("")
    sent = [w for w in c.server.writes if w.path == "conversations/c-awa/reply"]
    assert [w.body for w in sent] == [{"text": "Nous avons la pointure 39."}]
    assert sent[0].headers["x-csrf-token"] == CSRF
    # Every write carried the token, and none was refused.
    assert {w.headers.get("x-csrf-token") for w in c.server.writes} == {CSRF}

    c.page.get_by_role("button", name="Rendre la main à l'assistant").click()
    expect(c.page.get_by_role("button", name="Prendre la main")).to_be_visible()
    assert c.server.conversations["c-awa"]["state"] == "bot"


def test_the_whatsapp_window_notice_names_the_template(console: Callable[..., Console]) -> None:
    c = console(locale="en-GB")
    c.sign_in_by_link()
    c.open("inbox/c-moussa")
    expect(c.page.get_by_role("note")).to_contain_text("relance_24h")
    expect(c.page.get_by_role("note")).to_contain_text("24-hour window is closed")


@pytest.mark.parametrize("sse", [True, False], ids=["event-stream", "long-poll"])
def test_a_handoff_arriving_updates_the_badges_and_list_live(
    console: Callable[..., Console], sse: bool
) -> None:
    c = console(sse=sse)
    if not sse:  # chromium logs the refused stream before the console falls back
        c.allowed_errors.append("EventSource's response has a MIME type")
    c.sign_in_by_link()
    human = c.page.locator("nav .badge.human")
    expect(human).to_have_text("1")
    c.page.wait_for_timeout(300)  # the event stream is open
    if not sse:  # the stream was refused: the console long-polls
        for _ in range(50):
            if c.server.polls:
                break
            c.page.wait_for_timeout(100)
        assert c.server.polls, "the console never fell back to long-polling"
    c.server.customer_writes("Fatou Sow", "Je voudrais parler à quelqu'un")
    expect(human).to_have_text("2", timeout=8000)
    expect(c.page.locator("ul.conversations")).to_contain_text("Fatou Sow")
    expect(c.page.locator("#announce")).to_have_text("Nouveau message dans une conversation")
    # The open conversation updates live too, and what the operator types stays.
    c.open("inbox/c-3")
    c.page.get_by_label("Répondre").fill("en cours")
    c.server.messages["c-3"].append(
        {**c.server.messages["c-3"][0], "id": "m-new", "text": "Vous êtes là ?"}
    )
    c.server.emit("message_in", "c-3", channel="web")
    expect(c.page.get_by_role("log")).to_contain_text("Vous êtes là ?", timeout=8000)
    expect(c.page.get_by_label("Répondre")).to_have_value("en cours")
    c.shot("live")


def test_settings_check_fields_and_show_the_servers_400_next_to_its_field(
    console: Callable[..., Console],
) -> None:
    c = console(locale="en-US")
    c.sign_in_by_link()
    c.open("settings")
    monday = c.page.get_by_label("Monday")
    expect(monday).to_have_value("09:00-18:00")
    monday.fill("9h-18h")
    c.page.get_by_role("button", name="Save").click()
    expect(c.page.locator(f"#{monday.get_attribute('id')}-error")).to_have_text(
        "Expected HH:MM-HH:MM."
    )
    assert not any(w.path == "shop" for w in c.server.writes)  # refused before sending

    monday.fill("09:00-13:00, 15:00-19:00")
    model = c.page.get_by_label("LLM model")
    model.fill("gpt-unknown")
    c.page.get_by_role("button", name="Save").click()
    model_error = c.page.locator(f"#{model.get_attribute('id')}-error")
    expect(model_error).to_have_text("no such model for this provider")
    expect(model).to_have_attribute("aria-invalid", "")
    c.shot("settings-error")

    model.fill("")
    c.page.get_by_label("Offer").fill("Livraison offerte dès 2 articles")
    web_search = c.page.get_by_label("Web search")
    expect(web_search).not_to_be_checked()
    web_search.check()
    voice_notes = c.page.get_by_label("Answer voice notes with a voice note")
    expect(voice_notes).to_be_checked()
    voice_notes.uncheck()
    c.page.get_by_label("Speech speed (0.5 to 2)").fill("1.25")
    voice = c.page.get_by_label("Live voice calls")
    expect(voice).not_to_be_checked()
    voice.check()
    c.page.get_by_role("button", name="Save").click()
    expect(c.page.locator("form.settings .status")).to_have_text("Saved.")
    assert c.server.shop["offer"] == "Livraison offerte dès 2 articles"
    assert c.server.shop["business_hours"] == {"mon": ["09:00-13:00", "15:00-19:00"]}
    assert c.server.shop["web_search"] is True
    assert c.server.shop["voice_notes"] == {"enabled": False, "voice": "", "speed": 1.25}
    assert c.server.shop["voice"] == {"enabled": True}
    expect(model_error).to_be_hidden()


def test_an_order_moves_to_an_allowed_status(console: Callable[..., Console]) -> None:
    c = console()
    c.sign_in_by_link()
    c.open("orders")
    row = c.page.locator("tbody tr", has_text="o-1")
    expect(row).to_contain_text("payée")
    row.get_by_role("link", name="Changer").click()
    move_to = c.page.get_by_label("Passer à")
    expect(move_to.locator("option")).to_have_count(2)  # paid: delivered or cancelled
    move_to.select_option("fulfilled")
    c.page.locator("form.move").get_by_role("button", name="Changer").click()
    expect(row).to_contain_text("livrée")
    assert c.server.orders["o-1"]["status"] == "fulfilled"
    expect(c.page.locator(".detail")).to_contain_text("Cette commande est terminée.")


def test_french_and_english_follow_the_browser_and_the_switch(
    console: Callable[..., Console],
) -> None:
    english = console(locale="en-US")
    english.sign_in_by_link()
    expect(english.page.get_by_role("heading", name="Inbox")).to_be_visible()
    assert english.page.evaluate("document.documentElement.lang") == "en"
    french = console(locale="fr-FR")
    french.sign_in_by_link()
    expect(french.page.get_by_role("heading", name="Conversations")).to_be_visible()
    french.page.get_by_label("Langue").select_option("en")
    expect(french.page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(french.page.locator("nav")).to_contain_text("Orders")
    french.page.reload()  # the choice is kept (a preference, not a secret)
    expect(french.page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_on_a_phone_it_is_one_column(console: Callable[..., Console]) -> None:
    c = console(viewport=PHONE)
    c.sign_in_by_link()
    expect(c.page.locator("ul.conversations")).to_be_visible()
    c.page.locator("ul.conversations a").first.click()
    expect(c.page.get_by_role("log")).to_be_visible()
    expect(c.page.locator(".list-pane")).to_be_hidden()  # the conversation takes the screen
    expect(c.page.get_by_role("link", name="Retour")).to_be_visible()
    width = c.page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px"
    c.shot("phone-conversation")
    c.page.get_by_role("link", name="Retour").click()
    expect(c.page.locator("ul.conversations")).to_be_visible()
    for screen in ("orders", "settings"):
        c.open(screen)
        expect(c.page.locator("h1")).to_be_visible()
        assert c.page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], screen
    assert c.axe() == []


def test_keyboard_shortcuts(console: Callable[..., Console]) -> None:
    c = console()
    c.sign_in_by_link()
    keyboard = c.page.keyboard
    for keys, screen in (
        ("go", "orders"),
        ("gc", "customers"),
        ("gs", "settings"),
        ("gi", "inbox"),
    ):
        keyboard.press(keys[0])
        keyboard.press(keys[1])
        expect(c.page).to_have_url(re.compile(f"#{screen}$"))
    expect(c.page.get_by_role("heading", name="Conversations")).to_be_visible()
    keyboard.press("/")
    assert c.page.evaluate("document.activeElement.type") == "search"
    c.page.locator("ul.conversations a").first.click()
    expect(c.page.get_by_role("log")).to_be_visible()
    c.page.locator("body").click(position={"x": 1, "y": 700})
    keyboard.press("r")
    assert c.page.evaluate("document.activeElement.id") == "reply"
    c.page.locator("body").click(position={"x": 1, "y": 700})
    keyboard.press("?")
    expect(c.page.get_by_role("dialog")).to_be_visible()
    expect(c.page.get_by_role("dialog")).to_contain_text("aller aux commandes")
    assert c.axe() == []
    keyboard.press("Escape")
    expect(c.page.get_by_role("dialog")).to_be_hidden()
    # Tab reaches the navigation with a visible focus ring.
    keyboard.press("Tab")
    keyboard.press("Tab")
    outline = c.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_a_401_returns_to_sign_in(console: Callable[..., Console]) -> None:
    c = console()
    c.sign_in_by_link()
    c.server.signed_in = False  # the session expired or was revoked
    c.open("orders")
    expect(c.page.get_by_role("button", name="Se connecter")).to_be_visible()


def test_an_upload_shows_progress_and_the_report(console: Callable[..., Console]) -> None:
    c = console()
    c.sign_in_by_link()
    c.open("catalog")
    products = json.dumps([{"id": "x", "title": "Bol"}]).encode()
    c.page.get_by_label("Fichier (JSON ou CSV)").set_input_files(
        {"name": "catalogue.json", "mimeType": "application/json", "buffer": products}
    )
    c.page.get_by_role("button", name="Envoyer").click()
    expect(c.page.locator("pre.report")).to_contain_text('"imported": 3')
    assert c.page.locator("progress").evaluate("p => p.value") == 1
    upload = next(w for w in c.server.writes if w.path == "catalog")
    assert upload.body == json.loads(products)
    assert upload.headers["x-csrf-token"] == CSRF
    assert upload.headers["content-type"] == "application/json"


@pytest.mark.parametrize("locale", ["fr-FR", "en-US"])
def test_every_screen_has_no_serious_accessibility_violation(
    console: Callable[..., Console], locale: str
) -> None:
    c = console(locale=locale)
    c.page.goto(f"{c.server.url}/admin/")
    expect(c.page.locator("form.signin")).to_be_visible()
    assert c.axe() == [], "sign-in"
    c.sign_in_by_link()
    for screen in SCREENS:
        c.open(screen)
        expect(c.page.locator("main h1, main h2").first).to_be_visible()
        c.page.wait_for_load_state("networkidle")
        assert c.axe() == [], screen
        c.shot(screen.replace("/", "-"))
