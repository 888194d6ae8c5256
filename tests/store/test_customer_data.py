"""A customer's data exported whole and erased whole, on every store backend: nothing of them
stays but a digest of their numbers, another customer and another shop keep everything, and an
erasure stopped half-way finishes when run again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from shared import conversations, crm, jobs, marketing, memory, quotas
from shared.campaigns.runner import SENDS
from shared.channels.receive import SENT
from shared.customer_data import HOLDINGS, delete_customer, export_customer, find_customers
from shared.exceptions import NotFoundError, StoreUnavailableError
from shared.ids import new_session_id, new_sortable_id
from shared.ipn import PAYMENTS
from shared.models import Conversation, Customer, Lead, Message, StatusChange, Subscription
from shared.schedules import ScheduleSpec
from shared.store import Store
from shared.store.base import Doc, Key, QuerySpec, Write

SHOP, OTHER_SHOP = "teranga", "autre"
WA_ID = "221771112233"


def a_customer(store: Store, shop: str, wa_id: str, name: str) -> tuple[Customer, list[str]]:
    """A WhatsApp customer with a linked-looking web conversation, messages, an order paid, a
    subscription, usage, memory, a campaign message and a STOP; their conversation ids."""
    now = time.time()
    whatsapp = Conversation(
        id=new_session_id(), channel="whatsapp", channel_user=wa_id, created_at=now, updated_at=now
    )
    customer = crm.find_or_create_customer_by_phone(
        store, shop, f"+{wa_id}", name, f"whatsapp:{whatsapp.id}"
    )
    whatsapp = whatsapp.model_copy(update={"customer_id": customer.id, "last_inbound_at": now})
    conversations.create(store, shop, whatsapp)
    for role, text in (("user", f"Je suis {name}, taille M"), ("assistant", "Bien noté")):
        message = Message(id=new_sortable_id(), role=role, text=text, at=now)
        conversations.add_message(store, shop, whatsapp.id, message)
    store.put(shop, SENT, f"wamid.{wa_id}", {"conversation": whatsapp.id, "message": "m"})
    lead = crm.save_lead(
        store,
        shop,
        Lead(
            id=new_sortable_id(),
            customer_id=customer.id,
            conversation_id=whatsapp.id,
            channel="whatsapp",
            name=name,
            phone=f"+{wa_id}",
            address="Mermoz, Dakar",
            product_id="boubou-brode",
            product_title="Boubou brodé",
            quantity=1,
            unit_price=45000,
            currency="XOF",
            total=45000,
            status="paid",
            history=[StatusChange(status="paid", at=now, actor="payment:test")],
            created_at=now,
            updated_at=now,
        ),
    )
    store.create(shop, PAYMENTS, f"pay-{lead.id}", {"order": lead.id, "amount": "45000"})
    key = quotas.customer_key(whatsapp, customer)
    subscription = Subscription(
        id=key,
        plan_id="month",
        plan_name="Mois",
        daily_messages=100,
        started_at=now,
        expires_at=now + 86400,
        created_at=now,
        updated_at=now,
    )
    store.create(shop, quotas.SUBSCRIPTIONS, key, subscription.to_doc())
    store.increment(shop, quotas.USAGE, f"{key}:2026-12-04", "messages")
    memory.save(
        store, shop, customer, [memory.Note(f"{name} taille M")], source=whatsapp.id, at=now
    )
    store.create(
        shop,
        SENDS,
        f"relance~1~{customer.id}",
        {"campaign_id": "relance", "customer_id": customer.id, "status": "sent"},
    )
    marketing.set_marketing(store, shop, customer.id, True, now)
    reminder = jobs.Job(
        shop=shop,
        schedule=ScheduleSpec(at=now + 3600, timezone="Africa/Dakar"),
        customer_id=customer.id,
        text=f"Rappel pour {name} : payer",
        created_by="customer",
        conversation_id=whatsapp.id,
        created_at=now,
        updated_at=now,
    )
    store.put(shop, jobs.JOBS, reminder.id, reminder.to_doc())
    store.create(shop, jobs.SENDS, f"{reminder.id}~1~{customer.id}", {"customer_id": customer.id})
    return customer, [whatsapp.id]


def everything(store: Store, shop: str, conversation_ids: list[str]) -> Iterator[Doc]:
    collections = {
        "customers",
        "customer_phones",
        "conversations",
        SENT,
        "leads",
        "open_leads",
        PAYMENTS,
        quotas.SUBSCRIPTIONS,
        quotas.USAGE,
        quotas.PLAN_PURCHASES,
        memory.COLLECTION,
        SENDS,
        jobs.JOBS,
        jobs.SENDS,
        marketing.OPTOUTS,
        marketing.ERASED,
        "deadletters",
        "events",
    }
    collections |= {conversations.messages_of(c) for c in conversation_ids}
    for collection in sorted(collections):
        yield from store.scan(shop, collection)


def mentions(docs: Iterator[Doc], *needles: str) -> list[str]:
    return [
        doc.id
        for doc in docs
        if any(n in doc.id or n in json.dumps(doc.data, ensure_ascii=False) for n in needles)
    ]


def test_export_holds_every_part_and_delete_leaves_nothing_of_the_customer(
    store: Store,
) -> None:
    customer, talks = a_customer(store, SHOP, WA_ID, "Awa Ndiaye")
    other, other_talks = a_customer(store, SHOP, "221774445566", "Fatou Sow")
    elsewhere, elsewhere_talks = a_customer(store, OTHER_SHOP, WA_ID, "Awa Ndiaye")

    exported = export_customer(store, SHOP, customer)
    assert set(exported["holdings"]) == set(HOLDINGS)
    empty = {n for n, docs in exported["holdings"].items() if not docs}
    assert empty <= {"dead_letters", "plan_purchases"}  # none made for this customer
    assert json.dumps(exported, ensure_ascii=False).count("taille M") >= 2  # messages, memory

    needles = (customer.id, WA_ID, *talks)
    others = (other.id, "221774445566", *other_talks)
    before_other = sorted(mentions(everything(store, SHOP, other_talks), *others))
    report = delete_customer(store, SHOP, customer)

    assert sum(report.deleted.values()) >= len(HOLDINGS) - len(empty)
    assert mentions(everything(store, SHOP, talks), *needles) == []
    [digest] = list(store.scan(SHOP, marketing.ERASED))  # the suppression entry alone
    assert marketing.erased(store, SHOP, [f"whatsapp:+{WA_ID}"]) == {f"whatsapp:+{WA_ID}"}
    assert sorted(mentions(everything(store, SHOP, other_talks), *others)) == before_other
    assert len(before_other) >= 10
    assert mentions(everything(store, OTHER_SHOP, elsewhere_talks), elsewhere.id, WA_ID)
    with pytest.raises(NotFoundError):
        find_customers(store, SHOP, customer_id=customer.id)
    assert digest.id not in json.dumps(exported)  # a digest, not a readable id


def test_a_customer_is_found_by_phone_with_every_contact_that_typed_it(store: Store) -> None:
    customer, _ = a_customer(store, SHOP, WA_ID, "Awa Ndiaye")
    now = time.time()
    web = Conversation(id=new_session_id(), channel="web", created_at=now, updated_at=now)
    conversations.create(store, SHOP, web)
    contact, _ = crm.contact_for_order(store, SHOP, web, f"+{WA_ID}", "Awa")

    found = find_customers(store, SHOP, phone=f"+{WA_ID}")

    assert {c.id for c in found} == {customer.id, contact.id}
    with pytest.raises(NotFoundError):
        find_customers(store, SHOP, phone="+221700000000")


class DiesAfter(Store):
    """The real store, which stops answering after ``deletes`` deletions."""

    backend = "dies-after"

    def __init__(self, inner: Store, deletes: int) -> None:
        self.inner, self.left = inner, deletes
        self.max_document_bytes = inner.max_document_bytes

    def ping(self) -> None:
        self.inner.ping()

    def _get_many(self, keys: list[Key]) -> dict[str, Doc]:  # type: ignore[override]
        return self.inner._get_many(keys)

    def _write(self, write: Write) -> Doc:
        return self.inner._write(write)

    def _delete(self, key: Key, if_version: int | None) -> bool:
        if self.left <= 0:
            raise StoreUnavailableError("gone")
        self.left -= 1
        return self.inner._delete(key, if_version)

    def _query(self, spec: QuerySpec) -> list[Doc]:
        return self.inner._query(spec)

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        return self.inner._increment(key, field, amount, expires_at, now)


@pytest.mark.parametrize("deletes", [1, 3, 6, 9])
def test_an_erasure_stopped_half_way_finishes_when_run_again(store: Store, deletes: int) -> None:
    customer, talks = a_customer(store, SHOP, WA_ID, "Awa Ndiaye")

    with pytest.raises(StoreUnavailableError):
        delete_customer(DiesAfter(store, deletes), SHOP, customer)
    [again] = find_customers(store, SHOP, customer_id=customer.id)  # the customer is still there
    delete_customer(store, SHOP, again)

    assert mentions(everything(store, SHOP, talks), customer.id, WA_ID, *talks) == []
