"""A person of the shop answers in the widget: once the conversation is handed over, a reply
stored on the server (as the console stores it) shows in the open panel within a few seconds,
labelled "Conseiller", once; after a reload it comes back with the history, still once."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import expect

from shared import conversations
from shared.ids import new_sortable_id
from shared.models import Message
from shared.store import open_store
from tests.browser.conftest import Servers, ShopPage

OpenShop = Callable[..., ShopPage]
SHOP = "demo"
ANSWER = "Bonjour, ici Awa de la boutique : je vérifie votre commande."


def test_an_operators_reply_shows_in_the_widget_labelled_once(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop(servers.dev.url + "/")
    page = shop.page
    shop.open()
    shop.ask("Je voudrais parler à un conseiller")
    expect(shop.replies.last).to_contain_text("conseiller")
    # The reply streams in before the turn's end stores the session: wait for the latter.
    session = page.wait_for_function(
        "() => localStorage.getItem('comptoir:demo:session')"
    ).json_value()
    store = open_store(servers.dev.env["STORE_URL"])
    handed = conversations.get(store, SHOP, session)
    assert handed is not None and handed.state == "human"  # the assistant handed it over

    reply = Message(
        id=new_sortable_id(),
        role="assistant",
        text=ANSWER,
        at=time.time(),
        operator="awa@maison-teranga.example",
    )
    conversations.add_operator_reply(store, SHOP, session, reply)

    labelled = page.locator("comptoir-chat .msg.assistant", has=page.locator(".by"))
    expect(labelled).to_have_count(1, timeout=10_000)  # polled every 4 s
    expect(labelled.locator(".by")).to_have_text("Conseiller")
    expect(labelled).to_contain_text(ANSWER)
    expect(page.locator("comptoir-chat [aria-live=polite]")).to_contain_text(ANSWER)
    shop.shot("operator-reply")
    page.wait_for_timeout(9_000)  # two more polls: nothing shows twice
    expect(labelled).to_have_count(1)

    page.reload()
    shop.open()
    expect(page.locator("comptoir-chat .past .msg .by")).to_have_count(1)
    page.wait_for_timeout(5_000)
    expect(page.locator("comptoir-chat .msg .by")).to_have_count(1)
    assert not [e for e in shop.errors if "comptoir" in e.lower()], shop.errors
