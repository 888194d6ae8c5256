"""The console's customers (``shared/admin/customers.py``): listed newest first and searched by
name or phone, one customer with their conversations and orders, their data exported and
erased (the data-rights module's own walk, confirmed by the id); another shop's are 404."""

from __future__ import annotations

import time

import pytest

from shared import crm
from shared.app import App
from shared.models import Customer, Lead
from tests.admin.console import OTHER, SHOP, add_other_shop, audited, call, error_of
from tests.campaigns.conftest import order, whatsapp_customer
from tests.fixtures.app import Client, FunctionsFrameworkClient


@pytest.fixture
def client(admin_app: App) -> Client:
    return FunctionsFrameworkClient()


@pytest.fixture
def people(admin_app: App) -> list[tuple[Customer, Lead | None]]:
    """Awa and Khady with an order each, Fatou with none, oldest first, all on WhatsApp."""
    made: list[tuple[Customer, Lead | None]] = []
    for n, name in enumerate(("Awa Ndiaye", "Fatou Sow", "Khady Diallo")):
        customer, chat = whatsapp_customer(
            admin_app, f"22177123450{n}", name, wrote_at=time.time() - 100 + n
        )
        placed = order(admin_app, customer, chat) if name != "Fatou Sow" else None
        made.append((customer, placed))
    return made


def test_customers_are_listed_newest_first_with_channels_orders_and_last_seen(
    client: Client, admin_app: App, people: list[tuple[Customer, Lead | None]]
) -> None:
    listed = call(client, admin_app, "GET", "/customers").json()
    rows = listed["customers"]
    assert [r["name"] for r in rows] == ["Khady Diallo", "Fatou Sow", "Awa Ndiaye"]
    assert listed["cursor"] is None
    khady = rows[0]
    assert khady["phone"] == "+221771234502"
    assert khady["channels"] == ["whatsapp"]
    assert [r["orders"] for r in rows] == [1, 0, 1]
    assert khady["last_seen"] == pytest.approx(time.time() - 98, abs=5)


def test_customers_are_searched_by_name_or_phone_and_paged(
    client: Client,
    admin_app: App,
    people: list[tuple[Customer, Lead | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def names(query: dict[str, str]) -> list[str]:
        rows = call(client, admin_app, "GET", "/customers", query=query).json()["customers"]
        return [r["name"] for r in rows]

    assert names({"q": "fatou"}) == ["Fatou Sow"]
    assert names({"q": "77 123 45 00"}) == ["Awa Ndiaye"]
    assert names({"q": "1234"}) == ["Khady Diallo", "Fatou Sow", "Awa Ndiaye"]
    assert names({"q": "Moussa"}) == []

    monkeypatch.setattr("shared.admin.customers.PAGE_SIZE", 2)
    first = call(client, admin_app, "GET", "/customers", query={"q": "a"}).json()
    assert [r["name"] for r in first["customers"]] == ["Khady Diallo", "Fatou Sow"]
    rest = call(
        client, admin_app, "GET", "/customers", query={"q": "a", "cursor": first["cursor"]}
    ).json()
    assert [r["name"] for r in rest["customers"]] == ["Awa Ndiaye"]
    bad = call(client, admin_app, "GET", "/customers", query={"cursor": "nope"})
    assert error_of(bad)[0] == 400
    assert error_of(bad)[2].startswith("cursor:")


def test_a_search_reads_a_bounded_number_of_customers_and_goes_on_by_cursor(
    client: Client,
    admin_app: App,
    people: list[tuple[Customer, Lead | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.admin.customers.SEARCH_BUDGET", 2)
    first = call(client, admin_app, "GET", "/customers", query={"q": "awa"}).json()
    assert first["customers"] == []  # Khady and Fatou read, no match yet
    rest = call(
        client, admin_app, "GET", "/customers", query={"q": "awa", "cursor": first["cursor"]}
    ).json()
    assert [r["name"] for r in rest["customers"]] == ["Awa Ndiaye"]


def test_one_customer_comes_with_conversations_and_orders(
    client: Client, admin_app: App, people: list[tuple[Customer, Lead | None]]
) -> None:
    awa, placed = people[0]
    assert placed is not None
    shown = call(client, admin_app, "GET", f"/customers/{awa.id}").json()
    assert shown["customer"]["name"] == "Awa Ndiaye"
    assert shown["customer"]["phone_verified"] is True
    assert [c["channel"] for c in shown["conversations"]] == ["whatsapp"]
    assert shown["conversations"][0]["id"] == placed.conversation_id
    assert [o["id"] for o in shown["orders"]] == [placed.id]
    assert shown["orders"][0]["history"][0]["status"] == "awaiting_payment"


def test_the_export_holds_everything_and_is_audited(
    client: Client, admin_app: App, people: list[tuple[Customer, Lead | None]]
) -> None:
    awa, placed = people[0]
    assert placed is not None
    exported = call(client, admin_app, "GET", f"/customers/{awa.id}/export")
    assert exported.status == 200
    assert "attachment" in exported.headers["content-disposition"]
    holdings = exported.json()["holdings"]
    assert [d["id"] for d in holdings["customer"]] == [awa.id]
    assert [d["id"] for d in holdings["orders"]] == [placed.id]
    assert ("customer.export", awa.id, {}) in audited(admin_app)


def test_erasing_needs_the_id_confirmed_and_the_csrf_token(
    client: Client, admin_app: App, people: list[tuple[Customer, Lead | None]]
) -> None:
    awa, placed = people[0]
    target = f"/customers/{awa.id}/erase"
    wrong = call(client, admin_app, "POST", target, {"confirm": people[1][0].id})
    status, _, message = error_of(wrong)
    assert status == 400
    assert message.startswith("confirm:")
    assert error_of(call(client, admin_app, "POST", target, {}))[0] == 400
    forged = call(client, admin_app, "POST", target, {"confirm": awa.id}, csrf=False)
    assert error_of(forged)[:2] == (403, "csrf")
    assert crm.get_customer(admin_app.store, SHOP, awa.id) is not None

    erased = call(client, admin_app, "POST", target, {"confirm": awa.id})
    assert erased.status == 200
    counts = erased.json()["erased"]
    assert counts["customer"] == 1
    assert counts["orders"] == 1
    assert crm.get_customer(admin_app.store, SHOP, awa.id) is None
    assert call(client, admin_app, "GET", f"/customers/{awa.id}").status == 404
    assert placed is not None
    assert call(client, admin_app, "GET", f"/orders/{placed.id}").status == 404
    entry = next(e for e in audited(admin_app) if e[0] == "customer.erase")
    assert entry[1] == awa.id
    assert entry[2]["documents"] >= 3


def test_another_shops_operator_finds_no_customer_of_this_shop(
    client: Client, admin_app: App, people: list[tuple[Customer, Lead | None]]
) -> None:
    add_other_shop(admin_app)
    awa = people[0][0]
    assert call(client, admin_app, "GET", "/customers", shop=OTHER).json()["customers"] == []
    for path in (f"/customers/{awa.id}", f"/customers/{awa.id}/export"):
        assert error_of(call(client, admin_app, "GET", path, shop=OTHER))[:2] == (404, "not_found")
    erase = call(
        client, admin_app, "POST", f"/customers/{awa.id}/erase", {"confirm": awa.id}, shop=OTHER
    )
    assert error_of(erase)[:2] == (404, "not_found")
    assert crm.get_customer(admin_app.store, SHOP, awa.id) is not None
    assert call(client, admin_app, "GET", "/customers/no-such-customer").status == 404
