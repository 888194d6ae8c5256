"""The console's orders (``shared/admin/orders.py``): listed newest first and by status, one
order with the moves its pipeline allows, moved by the operator (audited, a conditional
write); another shop's orders are 404."""

from __future__ import annotations

import time

import pytest

from shared import orders
from shared.app import App
from shared.models import Lead, OrderStatus
from tests.admin.console import EMAIL, OTHER, add_other_shop, audited, call, error_of
from tests.campaigns.conftest import order, whatsapp_customer
from tests.fixtures.app import Client, FunctionsFrameworkClient, LambdaClient


@pytest.fixture(params=["lambda", "gcf"])
def client(request: pytest.FixtureRequest, admin_app: App) -> Client:
    return LambdaClient() if request.param == "lambda" else FunctionsFrameworkClient()


@pytest.fixture
def placed(admin_app: App) -> list[Lead]:
    """Three orders, oldest first: confirmed, awaiting payment, paid."""
    made = []
    statuses: tuple[OrderStatus, ...] = ("confirmed", "awaiting_payment", "paid")
    for n, status in enumerate(statuses):
        customer, chat = whatsapp_customer(admin_app, f"22177000060{n}", f"Client {n}")
        made.append(order(admin_app, customer, chat, status, at=time.time() - 60 + n))
    return made


def test_orders_are_listed_newest_first_by_status_and_page(
    client: Client, admin_app: App, placed: list[Lead], monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = call(client, admin_app, "GET", "/orders").json()
    assert [o["id"] for o in listed["orders"]] == [o.id for o in reversed(placed)]
    assert listed["cursor"] is None
    assert listed["orders"][0]["status"] == "paid"
    assert listed["orders"][0]["history"][0]["actor"] == "customer"

    paid = call(client, admin_app, "GET", "/orders", query={"status": "awaiting_payment"})
    assert [o["id"] for o in paid.json()["orders"]] == [placed[1].id]

    monkeypatch.setattr("shared.admin.orders.PAGE_SIZE", 2)
    first = call(client, admin_app, "GET", "/orders").json()
    rest = call(client, admin_app, "GET", "/orders", query={"cursor": first["cursor"]}).json()
    assert [o["id"] for o in first["orders"] + rest["orders"]] == [o.id for o in reversed(placed)]
    assert rest["cursor"] is None


def test_a_bad_status_filter_or_cursor_is_a_400_naming_it(
    client: Client, admin_app: App, placed: list[Lead]
) -> None:
    status, code, message = error_of(
        call(client, admin_app, "GET", "/orders", query={"status": "shipped"})
    )
    assert (status, code) == (400, "invalid_input")
    assert message.startswith("status:")
    status, _, message = error_of(
        call(client, admin_app, "GET", "/orders", query={"cursor": "not a cursor"})
    )
    assert status == 400
    assert message.startswith("cursor:")


def test_one_order_says_where_it_may_move(
    client: Client, admin_app: App, placed: list[Lead]
) -> None:
    shown = call(client, admin_app, "GET", f"/orders/{placed[2].id}").json()
    assert shown["order"]["id"] == placed[2].id
    assert shown["moves"] == ["fulfilled", "cancelled"]
    confirmed = call(client, admin_app, "GET", f"/orders/{placed[0].id}").json()
    assert set(confirmed["moves"]) == orders.TRANSITIONS["confirmed"]


def test_the_operator_moves_an_order_to_delivered_and_no_further(
    client: Client, admin_app: App, placed: list[Lead]
) -> None:
    paid = placed[2]
    moved = call(client, admin_app, "POST", f"/orders/{paid.id}/status", {"status": "fulfilled"})
    assert moved.status == 200
    assert moved.json()["order"]["status"] == "fulfilled"
    assert moved.json()["moves"] == []
    stored = orders.get_order(admin_app.store, "teranga", paid.id)
    assert stored.status == "fulfilled"
    assert stored.history[-1].actor == f"operator:{EMAIL}"
    assert ("order.status", paid.id, {"status": "fulfilled"}) in audited(admin_app)

    again = call(client, admin_app, "POST", f"/orders/{paid.id}/status", {"status": "cancelled"})
    status, code, message = error_of(again)
    assert (status, code) == (409, "invalid_move")
    assert "fulfilled" in message
    assert orders.get_order(admin_app.store, "teranga", paid.id).status == "fulfilled"


def test_a_move_needs_the_csrf_token_and_a_valid_body(
    client: Client, admin_app: App, placed: list[Lead]
) -> None:
    target = f"/orders/{placed[0].id}/status"
    forged = call(client, admin_app, "POST", target, {"status": "cancelled"}, csrf=False)
    assert error_of(forged)[:2] == (403, "csrf")
    status, _, message = error_of(call(client, admin_app, "POST", target, {"status": "shipped"}))
    assert status == 400
    assert message.startswith("status:")
    status, _, message = error_of(call(client, admin_app, "POST", target, {"to": "cancelled"}))
    assert status == 400
    assert "status" in message
    assert orders.get_order(admin_app.store, "teranga", placed[0].id).status == "confirmed"
    assert audited(admin_app) == []


def test_another_shops_operator_finds_no_order_of_this_shop(
    client: Client, admin_app: App, placed: list[Lead]
) -> None:
    add_other_shop(admin_app)
    target = placed[0].id
    assert call(client, admin_app, "GET", "/orders", shop=OTHER).json()["orders"] == []
    assert error_of(call(client, admin_app, "GET", f"/orders/{target}", shop=OTHER))[:2] == (
        404,
        "not_found",
    )
    moved = call(
        client, admin_app, "POST", f"/orders/{target}/status", {"status": "cancelled"}, shop=OTHER
    )
    assert error_of(moved)[:2] == (404, "not_found")
    assert orders.get_order(admin_app.store, "teranga", target).status == "confirmed"
    unknown = call(client, admin_app, "GET", "/orders/no-such-order")
    assert unknown.status == 404
