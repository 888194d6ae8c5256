"""The CRM: customers, the conversations linked to them, and leads.

Concurrency is settled by the store's conditional writes, never by read-then-write:

* a phone number is claimed by one customer with a create-only ``customer_phones`` document
  (its id a digest of the E.164 number), so concurrent captures with the same phone end with one
  customer whatever the backend;
* a customer, a conversation and a lead are changed with ``update(if_version=...)`` and re-read
  when a concurrent writer won (``mutate``);
* a customer's open lead for a product is found through an ``open_leads`` pointer claimed the
  same way, so a double submit updates one lead instead of creating two.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from shared.exceptions import (
    AlreadyExistsError,
    InvalidPhoneError,
    NotFoundError,
    PreconditionFailedError,
    UnknownSessionError,
)
from shared.ids import new_sortable_id
from shared.models import Conversation, Customer, Lead, LeadStatus, Model
from shared.money import price_number
from shared.store import Doc, Store
from shared.store.idempotency import record_id

CUSTOMERS = "customers"
PHONES = "customer_phones"
LEADS = "leads"
OPEN_LEADS = "open_leads"
CONVERSATIONS = "conversations"
MEMORY_LIMIT = 20  # facts kept per customer; the oldest go first
ATTEMPTS = 10  # conditional writes tried before a conflict is reported

M = TypeVar("M", bound=Model)


def normalise_phone(raw: str, region: str) -> str:
    """The E.164 form of a local ("77 123 45 67") or international ("+221…", "00221…") number."""
    import phonenumbers  # lazy: its metadata tables cost a cold start that few turns need

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(f"not a valid phone number (local numbers are read as {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mutate(
    store: Store, shop: str, collection: str, doc_id: str, model: type[M], change: Callable[[M], M]
) -> M:
    """Apply ``change`` to a stored document with optimistic concurrency: re-read and re-apply
    while another writer gets in first. Skips the write when nothing changes; stamps
    ``updated_at``. Raises NotFoundError if the document does not exist."""
    attempt = 0
    while True:
        doc = store.get(shop, collection, doc_id)
        if doc is None:
            raise NotFoundError(f"{collection}/{doc_id} does not exist")
        current = model.from_doc(doc)
        changed = change(current)
        if changed == current:
            return current
        changed = changed.model_copy(update={"updated_at": time.time()})
        try:
            store.update(shop, collection, doc_id, changed.to_doc(), if_version=doc.version)
        except PreconditionFailedError:
            attempt += 1
            if attempt == ATTEMPTS:
                raise
            time.sleep(random.uniform(0, 0.005 * attempt))  # let the winner finish
            continue
        return changed


def update_conversation(
    store: Store, shop: str, conversation_id: str, change: Callable[[Conversation], Conversation]
) -> Conversation:
    try:
        return mutate(store, shop, CONVERSATIONS, conversation_id, Conversation, change)
    except NotFoundError as exc:
        raise UnknownSessionError("unknown session") from exc


def set_state(
    store: Store, shop: str, conversation_id: str, state: Literal["bot", "human"], reason: str = ""
) -> Conversation:
    """Hand a conversation to the shop ("human") or back to the assistant ("bot")."""
    return update_conversation(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(update={"state": state, "handoff_reason": reason}),
    )


# --- customers -------------------------------------------------------------------------------


def _claim(store: Store, shop: str, collection: str, doc_id: str, data: dict[str, Any]) -> Doc:
    """Create ``collection/doc_id`` with ``data`` unless it exists: the stored one wins."""
    while True:
        try:
            return store.create(shop, collection, doc_id, data)
        except AlreadyExistsError:
            if (doc := store.get(shop, collection, doc_id)) is not None:
                return doc
            # Deleted in between: claim again.


def _ensure_customer(
    store: Store, shop: str, customer_id: str, change: Callable[[Customer], Customer]
) -> Customer:
    """Create the customer with ``change`` applied, or apply it to the stored one. Creating under
    an id already claimed (phone, conversation link) repairs a claim whose writer died before
    creating the customer."""
    now = time.time()
    try:
        created = change(Customer(id=customer_id, created_at=now, updated_at=now))
        store.create(shop, CUSTOMERS, customer_id, created.to_doc())
    except AlreadyExistsError:
        return mutate(store, shop, CUSTOMERS, customer_id, Customer, change)
    return created


def find_or_create_customer_by_phone(
    store: Store,
    shop: str,
    phone: str,
    name: str,
    identity: str,
    *,
    claimant: str | None = None,
) -> Customer:
    """The one customer with this E.164 phone, created if needed, with ``name`` (the latest
    given wins) and ``identity`` recorded. An unclaimed phone goes to ``claimant`` (an existing
    customer known without a phone) if given, else to a new customer."""
    claim = _claim(
        store, shop, PHONES, record_id(phone), {"customer_id": claimant or new_sortable_id()}
    )

    def add_contact(customer: Customer) -> Customer:
        return customer.model_copy(
            update={
                "phone": customer.phone or phone,
                "name": name or customer.name,
                "identities": _added(customer.identities, [identity]),
            }
        )

    return _ensure_customer(store, shop, claim.data["customer_id"], add_contact)


def merge_memory(store: Store, shop: str, source: Customer, target_id: str) -> Customer:
    """Copy what the assistant knows of ``source`` into the target customer (facts kept once,
    identities added). The source is left as it is: other conversations may still point to it."""
    return mutate(
        store,
        shop,
        CUSTOMERS,
        target_id,
        Customer,
        lambda c: c.model_copy(
            update={
                "memory": _remembered(c.memory, source.memory),
                "identities": _added(c.identities, source.identities),
                "summary": c.summary or source.summary,
            }
        ),
    )


def link_customer(
    store: Store, shop: str, conversation: Conversation, phone: str, name: str
) -> tuple[Customer, Conversation]:
    """Link the conversation to the customer who owns ``phone``.

    A customer already linked without a phone (created by ``remember``, or a chat identity)
    becomes the owner of an unclaimed phone; if the phone belongs to someone else, what the
    assistant remembered moves to them. Returns the customer and the stored conversation.
    """
    identity = f"{conversation.channel}:{conversation.id}"
    previous = _customer(store, shop, conversation.customer_id)
    anonymous = previous if previous is not None and previous.phone is None else None
    customer = find_or_create_customer_by_phone(
        store,
        shop,
        phone,
        name,
        identity,
        claimant=anonymous.id if anonymous is not None else None,
    )
    if anonymous is not None and anonymous.id != customer.id and anonymous.memory:
        customer = merge_memory(store, shop, anonymous, customer.id)
    linked = update_conversation(
        store, shop, conversation.id, lambda c: c.model_copy(update={"customer_id": customer.id})
    )
    return customer, linked


def remember(
    store: Store, shop: str, conversation: Conversation, fact: str
) -> tuple[Customer, Conversation]:
    """Add ``fact`` to the memory of the conversation's customer, creating and linking one
    (identity ``channel:conversation``) if the conversation has none."""
    candidate = new_sortable_id()
    # The conversation document is the claim: if two calls race, the first link wins.
    linked = update_conversation(
        store,
        shop,
        conversation.id,
        lambda c: c if c.customer_id else c.model_copy(update={"customer_id": candidate}),
    )
    identity = f"{linked.channel}:{linked.id}"
    customer = _ensure_customer(
        store,
        shop,
        linked.customer_id or candidate,
        lambda c: c.model_copy(
            update={
                "memory": _remembered(c.memory, [fact]),
                "identities": _added(c.identities, [identity]),
            }
        ),
    )
    return customer, linked


def _customer(store: Store, shop: str, customer_id: str | None) -> Customer | None:
    doc = store.get(shop, CUSTOMERS, customer_id) if customer_id else None
    return Customer.from_doc(doc) if doc is not None else None


def _added(existing: list[str], new: Iterable[str]) -> list[str]:
    return [*existing, *(item for item in dict.fromkeys(new) if item not in existing)]


def _remembered(memory: list[str], facts: Iterable[str]) -> list[str]:
    """``memory`` with the new facts appended once each, bounded to the newest MEMORY_LIMIT."""
    return _added(memory, facts)[-MEMORY_LIMIT:]


# --- leads -----------------------------------------------------------------------------------


def save_lead(store: Store, shop: str, lead: Lead) -> Lead:
    """Store ``lead``, or update in its place the customer's lead for the same product while
    that one is still "new" (same id, same creation time)."""
    pointer_id = record_id(f"{lead.customer_id}\n{lead.product_id}")
    for _ in range(ATTEMPTS):
        pointer = store.get(shop, OPEN_LEADS, pointer_id)
        current = store.get(shop, LEADS, pointer.data["lead_id"]) if pointer else None
        if current is not None and current.data.get("status") == "new":
            updated = lead.model_copy(
                update={"id": current.id, "created_at": current.data["created_at"]}
            )
            try:
                store.update(shop, LEADS, current.id, updated.to_doc(), if_version=current.version)
            except (PreconditionFailedError, NotFoundError):
                continue  # its status changed meanwhile: look again
            return updated
        # The lead is written before the pointer moves to it: a pointer never names a lead
        # that does not exist yet.
        store.create(shop, LEADS, lead.id, lead.to_doc())
        try:
            if pointer is None:
                store.create(shop, OPEN_LEADS, pointer_id, {"lead_id": lead.id})
            else:
                store.update(
                    shop, OPEN_LEADS, pointer_id, {"lead_id": lead.id}, if_version=pointer.version
                )
        except (AlreadyExistsError, PreconditionFailedError, NotFoundError):
            store.delete(shop, LEADS, lead.id)  # a concurrent capture won: update its lead
            continue
        return lead
    raise PreconditionFailedError("the lead kept changing; try again")


def list_leads(store: Store, shop: str, status: LeadStatus | None = None) -> list[Lead]:
    """Every lead (with ``status`` if given), newest first: lead ids sort by creation time."""
    where = {"status": status} if status else None
    return [Lead.from_doc(d) for d in store.scan(shop, LEADS, where=where)][::-1]


def lead_json(lead: Lead) -> dict[str, Any]:
    """A lead as the chat API returns it."""
    return {
        "id": lead.id,
        "status": lead.status,
        "name": lead.name,
        "phone": lead.phone,
        "address": lead.address,
        "product_id": lead.product_id,
        "product_title": lead.product_title,
        "variant": lead.variant_title,
        "quantity": lead.quantity,
        "unit_price": price_number(lead.unit_price),
        "total": price_number(lead.total),
        "currency": lead.currency,
    }
