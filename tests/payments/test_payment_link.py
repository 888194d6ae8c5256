"""``create_payment_link``: the amount from the catalogue, one checkout per order (two calls at
once included), a paid order gets none, another conversation's order is refused; and the link in
the chat's JSON and history, made by the offline responder right after the customer confirms."""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from shared.app import App
from shared.checkout import CHECKOUT_ROUTES, checkout_route
from shared.exceptions import ToolError
from shared.orders import get_order, set_status
from shared.tools.base import TurnContext
from tests.fixtures.app import Client, post_json
from tests.test_tools import ORDER, MakeCtx, call

SHOP_ID = "teranga"


def confirmed_order(ctx: TurnContext, **extra: Any) -> dict[str, Any]:
    return call(ctx, "capture_lead", **ORDER, product_id="boubou-brode", confirmed=True, **extra)


@pytest.fixture
def paying_ctx(make_ctx: MakeCtx, app: App) -> TurnContext:
    return replace(make_ctx(), payments=app.payments)


def checkouts_made(app: App) -> int:
    return len(list(app.store.scan(SHOP_ID, CHECKOUT_ROUTES)))


def test_the_amount_is_the_catalogue_s_total_never_the_stored_one(
    paying_ctx: TurnContext, app: App
) -> None:
    order = confirmed_order(paying_ctx, quantity=2)
    doc = app.store.get(SHOP_ID, "leads", order["id"])
    assert doc is not None
    app.store.put(SHOP_ID, "leads", order["id"], {**doc.data, "total": "1", "unit_price": "1"})
    result = call(paying_ctx, "create_payment_link", order_id=order["id"])
    assert (result["amount"], result["currency"]) == (90000, "XOF")
    assert paying_ctx.payment is not None and paying_ctx.payment.amount == Decimal("90000")
    stored = get_order(app.store, SHOP_ID, order["id"])
    assert (stored.status, stored.total) == ("awaiting_payment", Decimal("90000"))
    assert stored.checkout is not None and stored.checkout.url == paying_ctx.payment.url
    route = checkout_route(app.store, SHOP_ID, "test", stored.checkout.id)
    assert route == {"shop": SHOP_ID, "order": order["id"], "amount": "90000", "currency": "XOF"}


def test_a_second_call_gets_the_same_link_and_a_paid_order_none(
    paying_ctx: TurnContext, app: App
) -> None:
    order = confirmed_order(paying_ctx)
    first = call(paying_ctx, "create_payment_link", order_id=order["id"])
    url = paying_ctx.payment.url if paying_ctx.payment else None
    again = call(paying_ctx, "create_payment_link", order_id=order["id"])
    assert again == first and paying_ctx.payment is not None and paying_ctx.payment.url == url
    assert checkouts_made(app) == 1
    set_status(app.store, SHOP_ID, order["id"], "paid", "payment:test", 1.0)
    assert call(paying_ctx, "create_payment_link", order_id=order["id"]) == {
        "order_id": order["id"],
        "paid": True,
    }


def test_two_calls_at_once_make_one_checkout(make_ctx: MakeCtx, app: App) -> None:
    ctx = replace(make_ctx(), payments=app.payments)
    order = confirmed_order(ctx)
    contexts = [replace(ctx) for _ in range(4)]
    barrier = threading.Barrier(len(contexts))
    results: list[dict[str, Any]] = []

    def pay(each: TurnContext) -> None:
        barrier.wait()
        results.append(call(each, "create_payment_link", order_id=order["id"]))

    threads = [threading.Thread(target=pay, args=(each,)) for each in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert len({c.payment.url for c in contexts if c.payment}) == 1
    assert checkouts_made(app) == 1
    assert get_order(app.store, SHOP_ID, order["id"]).checkouts == 1


def test_a_draft_or_another_conversation_s_order_gets_no_link(
    make_ctx: MakeCtx, app: App
) -> None:
    ctx = replace(make_ctx(), payments=app.payments)
    draft = call(ctx, "capture_lead", **ORDER, product_id="boubou-brode")
    with pytest.raises(ToolError, match="is draft: it cannot be paid"):
        call(ctx, "create_payment_link", order_id=draft["id"])
    order = confirmed_order(ctx)
    stranger = replace(make_ctx(), payments=app.payments)
    with pytest.raises(ToolError, match="no order"):
        call(stranger, "create_payment_link", order_id=order["id"])
    with pytest.raises(ToolError, match="no order"):
        call(stranger, "create_payment_link", order_id="../x")
    assert checkouts_made(app) == 0


def test_the_offline_responder_offers_the_link_once_the_order_is_confirmed(
    client: Client, app: App
) -> None:
    session = None
    replies = []
    for text in (
        "Je voudrais commander le boubou brodé",
        "Aminata Diop, 77 123 45 67, Sicap Liberté 2, Dakar",
        "oui",
    ):
        body = post_json(client, "/chat", {"message": text, "session_id": session}).json()
        session = body["session_id"]
        replies.append(body)
    summary, done = replies[-2:]
    assert summary["payment"] is None
    assert "Votre commande est confirmée" in done["reply"]
    assert "bouton « Payer »" in done["reply"]
    payment = done["payment"]
    assert (payment["amount"], payment["currency"]) == (45000, "XOF")
    assert payment["url"].startswith(app.settings.public_base_url.rstrip("/") + "/pay/chk_")
    history = client.request("GET", "/chat/history", query={"session_id": session}).json()
    assert history["messages"][-1]["payment"] == payment  # the button comes back on reload
