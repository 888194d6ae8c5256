"""The CRM under concurrent writers, on every store backend: racing channel arrivals with one
phone end with one verified customer, racing captures in one conversation with one contact and
one open lead, and racing ``remember`` calls with one customer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TypeVar

from shared import conversations, crm, memory
from shared.ids import new_session_id, new_sortable_id
from shared.models import Conversation, Customer, Lead
from shared.store import Store

SHOP = "teranga"
PHONE = "+221771234567"
WRITERS = 6
T = TypeVar("T")


def race(work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for each writer at the same moment."""
    start = threading.Barrier(WRITERS)

    def run(i: int) -> T:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(run, range(WRITERS)))


def all_docs(store: Store, collection: str) -> list[str]:
    return [d.id for d in store.query(SHOP, collection, limit=100).items]


def test_concurrent_arrivals_with_one_phone_make_one_customer(store: Store) -> None:
    found = race(
        lambda i: crm.find_or_create_customer_by_phone(
            store, SHOP, PHONE, f"Awa {i}", f"whatsapp:{i}"
        )
    )
    assert len({customer.id for customer in found}) == 1
    assert all_docs(store, crm.CUSTOMERS) == [found[0].id]
    assert len(all_docs(store, crm.PHONES)) == 1
    doc = store.get(SHOP, crm.CUSTOMERS, found[0].id)
    assert doc is not None
    customer = Customer.from_doc(doc)
    assert (customer.phone, customer.phone_verified) == (PHONE, True)
    # Every writer's identity survived the others' updates.
    assert sorted(customer.identities) == sorted(f"whatsapp:{i}" for i in range(WRITERS))


def test_concurrent_captures_in_one_conversation_make_one_contact(store: Store) -> None:
    now = time.time()
    conversation = Conversation(id=new_session_id(), created_at=now, updated_at=now)
    store.create(SHOP, conversations.CONVERSATIONS, conversation.id, conversation.to_doc())
    found = race(lambda i: crm.contact_for_order(store, SHOP, conversation, PHONE, f"Awa {i}")[0])
    assert len({customer.id for customer in found}) == 1
    assert all_docs(store, crm.CUSTOMERS) == [found[0].id]
    assert all_docs(store, crm.PHONES) == []  # a typed phone claims nothing
    doc = store.get(SHOP, crm.CUSTOMERS, found[0].id)
    assert doc is not None
    customer = Customer.from_doc(doc)
    assert (customer.phone, customer.phone_verified) == (PHONE, False)
    assert customer.identities == [f"web:{conversation.id}"]


def test_concurrent_leads_for_one_product_make_one_lead(store: Store) -> None:
    customer = crm.find_or_create_customer_by_phone(store, SHOP, PHONE, "Awa", "whatsapp:0")

    def capture(quantity: int) -> Lead:
        now = time.time()
        return crm.save_lead(
            store,
            SHOP,
            Lead(
                id=new_sortable_id(),
                customer_id=customer.id,
                conversation_id="c",
                channel="web",
                name="Awa",
                phone=PHONE,
                address="Dakar",
                product_id="boubou-brode",
                product_title="Boubou brodé",
                quantity=quantity + 1,
                unit_price=Decimal(45000),
                currency="XOF",
                total=Decimal(45000) * (quantity + 1),
                created_at=now,
                updated_at=now,
            ),
        )

    saved = race(capture)
    assert len({lead.id for lead in saved}) == 1
    [lead] = crm.list_leads(store, SHOP)
    assert lead.id == saved[0].id


def test_concurrent_remember_calls_make_one_customer(store: Store) -> None:
    now = time.time()
    conversation = Conversation(id=new_session_id(), created_at=now, updated_at=now)
    store.create(SHOP, conversations.CONVERSATIONS, conversation.id, conversation.to_doc())
    linked = race(lambda i: crm.remember(store, SHOP, conversation, f"fact {i}")[1])
    assert len({c.customer_id for c in linked}) == 1
    [customer_id] = all_docs(store, crm.CUSTOMERS)
    doc = store.get(SHOP, crm.CUSTOMERS, customer_id)
    assert doc is not None
    kept, _ = memory.load(store, SHOP, Customer.from_doc(doc))
    assert sorted(i.text for i in kept.items) == sorted(f"fact {i}" for i in range(WRITERS))
