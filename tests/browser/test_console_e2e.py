"""Issue 15's "done when", as a new user tries it on `make dev`: open the console with the link
the dev server prints, see a widget conversation handed to a human arrive live, answer it from
the console and see the answer in the widget; then change the shop's offer and see the
assistant use it. Everything real: the dev server, its SQLite store, the console and the widget
from web/dist, Debian's chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Browser, expect

from tests.browser.conftest import ARTIFACTS, DESKTOP, Servers, ShopPage

OpenShop = Callable[..., ShopPage]
ANSWER = "Bonjour, ici la boutique : la pointure 39 est disponible."
OFFER = "livraison offerte à Dakar cette semaine"


def test_a_new_operator_answers_a_handoff_and_changes_the_offer(
    servers: Servers, open_shop: OpenShop, browser: Browser
) -> None:
    printed = (servers.dev.data / "stdout.txt").read_text()
    found = re.search(r"^Console: (\S+)$", printed, re.M)
    assert found is not None, printed
    link = found.group(1)
    assert link.startswith(servers.dev.url + "/admin/#link=")

    context = browser.new_context(locale="fr-FR", viewport=DESKTOP)
    console = context.new_page()
    errors: list[str] = []
    console.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    console.goto(link)
    expect(console.get_by_role("heading", name="Conversations")).to_be_visible()
    assert "#link=" not in console.url  # the one-use token leaves the address bar

    shop = open_shop(servers.dev.url + "/")
    shop.open()
    shop.ask("Je voudrais parler à un conseiller")
    expect(shop.replies.last).to_contain_text("conseiller")
    # The reply streams in before the turn's end stores the session: wait for the latter.
    session = shop.page.wait_for_function(
        "() => localStorage.getItem('comptoir:demo:session')"
    ).json_value()

    # Live: the inbox shows it, needing a human, with no reload.
    item = console.locator("ul.conversations > li", has=console.locator(f"a[href$='{session}']"))
    expect(item).to_be_visible(timeout=30_000)
    expect(item.locator(".badge.human")).to_be_visible()
    item.get_by_role("link").click()
    console.get_by_label("Répondre").fill(ANSWER)
    console.keyboard.press("Control+Enter")
    expect(console.get_by_role("log").locator(".msg.operator")).to_contain_text(ANSWER)

    labelled = shop.page.locator("comptoir-chat .msg.assistant", has=shop.page.locator(".by"))
    expect(labelled).to_contain_text(ANSWER, timeout=15_000)  # the widget polls every 4 s
    expect(labelled.locator(".by")).to_have_text("Conseiller")
    expect(console.locator("main")).not_to_contain_text("null")  # no absent part printed
    console.screenshot(path=str(ARTIFACTS / "console-e2e-reply.png"))

    # Back to the assistant, a new offer, and the next hesitation is offered it.
    console.get_by_role("button", name="Rendre la main à l'assistant").click()
    expect(console.get_by_role("button", name="Prendre la main")).to_be_visible()
    console.goto(servers.dev.url + "/admin/#settings")
    console.get_by_label("Offre").fill(OFFER)
    console.get_by_role("button", name="Enregistrer").click()
    expect(console.locator("form.settings .status")).to_have_text("Enregistré.")

    shop.ask("C'est trop cher pour moi")
    expect(shop.replies.last).to_contain_text(OFFER)
    shop.shot("console-e2e-offer")
    assert errors == [], errors
    context.close()
