"""The CRM: customers, the conversations linked to them, and leads.

Who a customer is (identity)
----------------------------
A phone number typed in a chat is a claim, not an identity: anyone can type anyone's number.
Only a channel that proves the number (WhatsApp gives the sender's wa_id) or, later, a one-time
code sent to it verifies it. So there are two kinds of customer:

* a *verified* customer (``phone_verified``): its phone was given by the channel. It alone owns
  the number's ``customer_phones`` claim (a create-only document whose id is a digest of the E.164
  number, so concurrent arrivals with one phone end with one customer on every backend), and only
  verified links name it: ``find_or_create_customer_by_phone``, called by the channel webhooks
  with the channel's phone, records each channel conversation in its ``identities``.
* an *unverified contact*: created for one conversation (identity ``channel:conversation``) by
  ``remember`` or by an order (``contact_for_order``), holding the name and phone typed there.
  It never owns a phone claim and no other conversation is ever linked to it.

A conversation reads and writes only the customer it *belongs* to (``belongs``): a verified one
listing it among its identities (for a conversation on a channel that gives the phone), or its
own unverified contact; a conversation linked to anyone else gets a contact of its own. A phone
typed in a chat therefore never renames, links or reads an existing customer: it goes on the
lead and on the conversation's own contact. When the real owner of that phone later writes on
WhatsApp, the channel makes (or finds) the verified customer; the web contact is not merged into
it on that account.

Linking a web or Telegram conversation to a verified customer takes a one-time code sent to the
customer's number on WhatsApp and typed back in that conversation (``shared/linking.py``): then
``link_verified`` adds the conversation's identity to the customer's ``identities`` and
``verified_identities`` (only the latter count for a conversation on a channel that does not give
the phone, so a web identity from a link made before this rule still does not count), moves the
conversation's own contact's memory into the customer's, re-points the contact's orders and
carries over its marketing choice. The only link made without a code is the channel's own: a
WhatsApp conversation, and so an order placed on WhatsApp, is its verified customer's; a phone
typed with a web order is a claim, and the web needs the code.

Memory is data from the customer, never instructions: ``remember`` refuses facts that read like
instructions or hold secrets (``memory.check_fact``), and the prompt quotes what is kept.

Concurrency is settled by the store's conditional writes, never by read-then-write:

* a phone is claimed with the create-only ``customer_phones`` document, as above;
* a customer, a conversation and a lead are changed with ``update(if_version=...)`` and re-read
  when a concurrent writer won (``shared.models.mutate``); the conversation document is the
  claim of its own contact, so two tools racing in one conversation create one contact;
* a conversation's open lead for a product is found through an ``open_leads`` pointer keyed by
  conversation and product and claimed the same way, so a double submit updates one lead instead
  of creating two, and an order from another conversation is always a new lead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from shared import conversations, memory
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidPhoneError,
    NotFoundError,
    PreconditionFailedError,
)
from shared.ids import new_sortable_id
from shared.models import (
    CONFLICT_ATTEMPTS,
    Conversation,
    Customer,
    Lead,
    LeadStatus,
    mutate,
    with_marketing_choice,
)
from shared.money import price_number
from shared.store import Doc, Store
from shared.store.idempotency import record_id

CUSTOMERS = "customers"
PHONES = "customer_phones"
LEADS = "leads"
OPEN_LEADS = "open_leads"
# Channels that give the sender's phone themselves. Any other conversation counts for a verified
# customer only once a one-time code linked it (``verified_identities``).
VERIFYING_CHANNELS = frozenset({"whatsapp"})
OPEN_STATUSES = frozenset({"draft", "confirmed"})  # a lead its conversation may still change


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
        return mutate(store, shop, CUSTOMERS, customer_id, Customer, change)[0]
    return created


def find_or_create_customer_by_phone(
    store: Store, shop: str, phone: str, name: str, identity: str
) -> Customer:
    """The one verified customer with this E.164 phone, created if needed, with ``name`` (the
    latest given wins) and ``identity`` recorded. Only for a phone the channel itself gives
    (WhatsApp's wa_id): a phone typed in a chat goes through ``contact_for_order``."""
    claim = _claim(store, shop, PHONES, record_id(phone), {"customer_id": new_sortable_id()})

    def add_identity(customer: Customer) -> Customer:
        return customer.model_copy(
            update={
                "phone": phone,
                "phone_verified": True,
                "name": name or customer.name,
                "identities": _added(customer.identities, [identity]),
            }
        )

    return _ensure_customer(store, shop, claim.data["customer_id"], add_identity)


def verified_customer_id(store: Store, shop: str, phone: str) -> str | None:
    """The id of the verified customer with this E.164 phone, if one has claimed it."""
    claim = store.get(shop, PHONES, record_id(phone))
    return str(claim.data["customer_id"]) if claim is not None else None


def identity_of(conversation: Conversation) -> str:
    return f"{conversation.channel}:{conversation.id}"


def belongs(customer: Customer, conversation: Conversation) -> bool:
    """Whether ``conversation`` may read and write ``customer``: a verified customer the channel
    or a one-time code linked it to, or the unverified contact made for it alone. A web identity
    on a verified customer without the code's mark (``verified_identities``) is a link made
    before links were checked, and does not count."""
    identity = identity_of(conversation)
    if customer.phone_verified:
        if conversation.channel in VERIFYING_CHANNELS:
            return identity in customer.identities
        return identity in customer.verified_identities  # linked by a one-time code
    return customer.identities == [identity]


def conversation_customer(store: Store, shop: str, conversation: Conversation) -> Customer | None:
    """The customer whose profile and memory this conversation may see, if any."""
    customer = get_customer(store, shop, conversation.customer_id)
    return customer if customer is not None and belongs(customer, conversation) else None


def _own_customer(
    store: Store, shop: str, conversation: Conversation, change: Callable[[Customer], Customer]
) -> tuple[Customer, Conversation]:
    """Apply ``change`` to the customer the conversation belongs to, creating and linking an
    unverified contact for it if it has none. A link to a customer it does not belong to (made
    before links were checked) is replaced by a new contact: that customer is left untouched."""
    candidate = new_sortable_id()
    current = get_customer(store, shop, conversation.customer_id)
    foreign = current.id if current is not None and not belongs(current, conversation) else None
    # The conversation document is the claim: if two calls race, the first link wins.
    linked = conversations.update(
        store,
        shop,
        conversation.id,
        lambda c: (
            c
            if c.customer_id and c.customer_id != foreign
            else c.model_copy(update={"customer_id": candidate})
        ),
    )
    identity = identity_of(linked)

    def link(customer: Customer) -> Customer:
        identities = _added(customer.identities, [identity])
        customer = customer.model_copy(update={"identities": identities})
        if linked.marketing_changed_at is not None:  # a STOP/START typed before it had one
            customer = with_marketing_choice(
                customer, linked.marketing_opt_out, linked.marketing_changed_at
            )
        return change(customer)

    customer = _ensure_customer(store, shop, linked.customer_id or candidate, link)
    return customer, linked


def link_verified(
    store: Store, shop: str, conversation: Conversation, customer_id: str
) -> tuple[Customer, Conversation]:
    """Link ``conversation`` (web or Telegram) to the verified customer ``customer_id`` once a
    one-time code sent to that customer's phone was typed back in it (``shared/linking.py``):
    never on a claim. The conversation's own unverified contact, if any, follows: its memory is
    moved into the customer's, its orders re-pointed, its marketing choice carried over. Each
    step is a conditional write that changes nothing when repeated, so a link interrupted
    half-way is finished by running it again."""
    identity = identity_of(conversation)
    current = get_customer(store, shop, conversation.customer_id)
    contact = (
        current
        if current is not None and not current.phone_verified and belongs(current, conversation)
        else None
    )

    def link(customer: Customer) -> Customer:
        if not customer.phone_verified:
            raise InvalidInputError("only a verified customer can be linked to")
        customer = customer.model_copy(
            update={
                "identities": _added(customer.identities, [identity]),
                "verified_identities": _added(customer.verified_identities, [identity]),
                "name": customer.name or (contact.name if contact is not None else ""),
            }
        )
        if contact is not None and contact.marketing_changed_at is not None:
            customer = with_marketing_choice(
                customer, contact.marketing_opt_out, contact.marketing_changed_at
            )
        return customer

    customer, _ = mutate(store, shop, CUSTOMERS, customer_id, Customer, link)
    linked = conversations.update(
        store, shop, conversation.id, lambda c: c.model_copy(update={"customer_id": customer_id})
    )
    if contact is not None:
        _move_memory(store, shop, contact, customer, conversation.id)
        _repoint_leads(store, shop, contact.id, customer_id)
    return customer, linked


def _move_memory(
    store: Store, shop: str, contact: Customer, customer: Customer, source: str
) -> None:
    """The contact's remembered items and summary into ``customer``'s memory (a near-duplicate
    or a contradicted preference merges as any new fact would), then the contact's emptied.
    Written before it is deleted: an interruption leaves a copy, never a loss."""
    kept, version = memory.load(store, shop, contact)
    if not kept.items and not kept.summary:
        return
    notes = [memory.Note(item.text, item.kind, item.key) for item in kept.items]
    memory.save(
        store, shop, customer, notes, source=source, at=time.time(),
        summary_lines=kept.summary.splitlines(),
    )
    if version is not None:
        store.delete(shop, memory.COLLECTION, contact.id)
    if contact.memory or contact.summary:  # a contact from before the memory collection
        mutate(
            store, shop, CUSTOMERS, contact.id, Customer,
            lambda c: c.model_copy(update={"memory": [], "summary": ""}),
        )


def _repoint_leads(store: Store, shop: str, contact_id: str, customer_id: str) -> None:
    """Every lead of the contact now names ``customer_id`` (one conditional write each)."""
    for doc in store.scan(shop, LEADS, where={"customer_id": contact_id}):
        mutate(
            store, shop, LEADS, doc.id, Lead,
            lambda lead: (
                lead.model_copy(update={"customer_id": customer_id})
                if lead.customer_id == contact_id
                else lead
            ),
        )


def contact_for_order(
    store: Store, shop: str, conversation: Conversation, phone: str, name: str
) -> tuple[Customer, Conversation]:
    """The customer an order typed in ``conversation`` belongs to. The typed ``phone`` and
    ``name`` are a claim: they go on the conversation's own unverified contact (created if
    needed), never on a verified customer nor on whoever else has that phone."""

    def claim(customer: Customer) -> Customer:
        if customer.phone_verified:
            return customer  # the channel proved who this is; what was typed stays on the lead
        return customer.model_copy(update={"phone": phone, "name": name})

    return _own_customer(store, shop, conversation, claim)


def remember(
    store: Store, shop: str, conversation: Conversation, fact: str
) -> tuple[Customer, Conversation]:
    """Keep ``fact`` in the memory of the customer the conversation belongs to (``shared.memory``:
    a near-duplicate updates, a new size replaces the old), creating and linking an unverified
    contact if it has none (the consolidator gives it a vector when the provider embeds). Raises
    InvalidInputError for a fact that must not be kept (``memory.check_fact``)."""
    memory.check_fact(fact)
    customer, linked = own_contact(store, shop, conversation)
    note = memory.note_of_fact(fact)
    memory.save(store, shop, customer, [note], source=linked.id, at=time.time())
    return customer, linked


def own_contact(
    store: Store, shop: str, conversation: Conversation
) -> tuple[Customer, Conversation]:
    """The customer the conversation belongs to, an unverified contact created and linked for
    it if it has none."""
    return _own_customer(store, shop, conversation, lambda c: c)


def get_customer(store: Store, shop: str, customer_id: str | None) -> Customer | None:
    """The customer ``customer_id``, if there is one (no check of who may see it)."""
    doc = store.get(shop, CUSTOMERS, customer_id) if customer_id else None
    return Customer.from_doc(doc) if doc is not None else None


def _added(existing: list[str], new: Iterable[str]) -> list[str]:
    return [*existing, *(item for item in dict.fromkeys(new) if item not in existing)]


# --- leads -----------------------------------------------------------------------------------


def save_lead(store: Store, shop: str, lead: Lead) -> Lead:
    """Store ``lead``, or update in its place its conversation's lead for the same product while
    the shop has not handled it ("draft" or "confirmed": same id, same creation time, its history
    one step longer when its status changes): the same conversation completing, correcting or
    confirming its order. Another conversation's order is always a new lead."""
    pointer_id = record_id(f"{lead.conversation_id}\n{lead.product_id}")
    for _ in range(CONFLICT_ATTEMPTS):
        pointer = store.get(shop, OPEN_LEADS, pointer_id)
        current = store.get(shop, LEADS, pointer.data["lead_id"]) if pointer else None
        stored = Lead.from_doc(current) if current is not None else None
        if current is not None and stored is not None and stored.status in OPEN_STATUSES:
            history = stored.history
            if lead.status != stored.status:
                history = [*history, *lead.history[-1:]]
            updated = lead.model_copy(
                update={"id": current.id, "created_at": stored.created_at, "history": history}
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
