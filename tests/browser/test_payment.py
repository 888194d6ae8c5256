"""A whole order in the browser with ``make dev``'s defaults (offline responder, test payment
provider): order in the widget, "Payer" on the test checkout page, back on the shop the
confirmation is in the chat (the widget restores the conversation's history on a reload), and
the order is paid in ``python -m shared orders``."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Servers, ShopPage

pytestmark = pytest.mark.browser
OpenShop = Callable[..., ShopPage]

ORDER = (
    "Je prends 2 robes wax Ndèye en M",
    "Je m'appelle Ndèye Sarr, 77 123 45 67",
    "Mermoz, rue 10, Dakar",
    "oui",
)


def test_order_pay_on_the_test_checkout_and_see_the_confirmation(
    servers: Servers, open_shop: OpenShop
) -> None:
    shop = open_shop()
    shop.goto(servers.dev.url + "/")
    page = shop.page
    shop.open()
    for index, text in enumerate(ORDER):
        shop.ask(text)
        expect(shop.replies).to_have_count(index + 2)  # the greeting, then one per message
        expect(shop.replies.last).not_to_have_class("msg assistant typing")
    pay = page.locator("comptoir-chat a.pay")
    expect(pay).to_have_text("Payer")
    expect(shop.replies.last).to_contain_text("Votre commande est confirmée")
    shop.shot("pay-button")
    # PUBLIC_BASE_URL names the port of `make dev`; this server runs on another one.
    path = urlsplit(str(pay.get_attribute("href"))).path
    assert path.startswith("/pay/chk_")
    page.goto(servers.dev.url + path)
    expect(page.locator("#amount")).to_have_text("55\u202f000 FCFA")
    page.get_by_role("button", name="Payer").click()
    expect(page.locator("#result")).to_have_text("Paiement accepté.")
    page.get_by_role("link", name="Retour à la boutique").click()
    expect(shop.launcher).to_be_visible()
    shop.open()
    restored = page.locator("comptoir-chat .past .msg.assistant").last
    expect(restored).to_contain_text("Paiement reçu, merci !")
    expect(restored).to_contain_text("2 × Robe wax Ndèye (M), 55\u202f000 FCFA")
    shop.shot("paid")
    listed = servers.dev.cli("orders", "--status", "paid")
    assert listed.returncode == 0, listed.stderr
    [order] = json.loads(listed.stdout)
    assert order["total"] == 55000
    assert [step["status"] for step in order["history"]] == [
        "draft",
        "confirmed",
        "awaiting_payment",
        "paid",
    ]
