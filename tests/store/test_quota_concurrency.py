"""Daily quotas under concurrent turns, on every store backend: 20 turns of one customer at once
count 20 (no lost increment), with exactly the turns past the quota told so; concurrent
deliveries of one payment event extend a subscription once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from shared import crm, quotas
from shared.ids import new_session_id
from shared.models import Conversation, Customer, Shop
from shared.store import Store

SHOP = "teranga"
TURNS = 20
QUOTA = 15
PLAN = {
    "id": "mois",
    "name": "Mois",
    "price": 5000,
    "currency": "XOF",
    "period_days": 30,
    "daily_messages": 200,
}


def test_twenty_concurrent_turns_count_exactly(store: Store) -> None:
    now = time.time()
    shop = Shop(id=SHOP, name="Maison Teranga", free_daily_messages=QUOTA)
    ids = [new_session_id() for _ in range(TURNS)]
    customer = Customer(
        id="awa",
        phone="+221771234567",
        phone_verified=True,
        identities=[f"whatsapp:{cid}" for cid in ids],
        created_at=now,
        updated_at=now,
    )
    store.create(SHOP, "customers", customer.id, customer.to_doc())
    start = threading.Barrier(TURNS)

    def turn(cid: str) -> quotas.Usage | None:
        conversation = Conversation(
            id=cid, channel="whatsapp", customer_id="awa", created_at=now, updated_at=now
        )
        start.wait()
        customer = crm.conversation_customer(store, SHOP, conversation)
        return quotas.count_turn(store, shop, conversation, customer, 1, now)

    with ThreadPoolExecutor(TURNS) as pool:
        found = [usage for usage in pool.map(turn, ids) if usage is not None]
    assert sorted(usage.used for usage in found) == list(range(1, TURNS + 1))
    assert sum(usage.exceeded for usage in found) == TURNS - QUOTA
    assert sum(usage.warning_due for usage in found) == 1
    counter = store.get(SHOP, quotas.USAGE, f"customer:awa:{quotas.day_of(shop, now)}")
    assert counter is not None and counter.data["messages"] == TURNS


def test_concurrent_deliveries_of_one_payment_extend_once(store: Store) -> None:
    now = time.time()
    shop = Shop.model_validate({"id": SHOP, "name": "Maison Teranga", "plans": [PLAN]})
    start = threading.Barrier(6)

    def activate(event: str) -> None:
        start.wait()
        quotas.activate_subscription(store, shop, "customer:awa", "mois", event, now)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(activate, ["evt-1"] * 5 + ["evt-2"]))
    subscription = quotas.active_subscription(store, SHOP, "customer:awa", now)
    assert subscription is not None
    assert subscription.expires_at == now + 2 * 30 * quotas.DAY_SECONDS
    assert sorted(subscription.payment_events) == ["evt-1", "evt-2"]
