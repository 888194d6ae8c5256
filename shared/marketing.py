"""Marketing consent: who said STOP, on every channel, and the hint every campaign ends with.

Two records, each keeping the latest choice by the time it was made (a provider may deliver an
old choice after a newer one, and a redelivery changes nothing):

* the customer's ``marketing_opt_out`` flag, the truth for a customer;
* the address registry ``marketing_optouts`` (shop scope, id = the address: ``whatsapp:+<E.164>``
  or ``telegram:<chat id>``, data ``{"opt_out", "at"}``), so a number stays out even when another
  customer record holds it, or before any customer exists for it. A resume keeps its document
  (``opt_out`` false) rather than deleting it: a deleted one would let an older STOP delivered
  later come back.

A customer erased at their request (``customer delete``) leaves a suppression entry per address
(``erased_addresses``, id = a digest of the address, no other data): campaigns never add that
number again, and nothing readable about the customer stays.

A choice typed in a conversation without a customer yet (a web chat before any order) is kept on
the conversation; ``crm`` carries it into the customer it creates or links for that conversation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from shared import conversations, crm
from shared.catalog.retrieval import fold
from shared.exceptions import AlreadyExistsError, NotFoundError, PreconditionFailedError
from shared.models import (
    CONFLICT_BACKOFF,
    OPTOUT_HINTS,
    Channel,
    Conversation,
    Customer,
    Shop,
    mutate,
    with_marketing_choice,
)
from shared.store import Store

OPTOUTS = "marketing_optouts"
ERASED = "erased_addresses"
# One word typed alone (folded: case and accents aside, trailing punctuation ignored).
STOP_WORDS = frozenset({"stop", "arret", "arreter", "desabonner", "desinscrire", "unsubscribe"})
START_WORDS = frozenset({"start", "reprendre", "resume"})
# The reply to a typed STOP (True) or START (False), on every channel and the web chat.
CONFIRMATIONS: dict[str, dict[bool, str]] = {
    "fr": {
        True: (
            "C'est noté : vous ne recevrez plus nos offres. "
            "Écrivez START pour les recevoir à nouveau."
        ),
        False: (
            "C'est noté : vous recevrez à nouveau nos offres. "
            "Écrivez STOP pour ne plus les recevoir."
        ),
    },
    "en": {
        True: "Done: you won't receive our offers any more. Send START to get them again.",
        False: "Done: you will receive our offers again. Send STOP to stop them.",
    },
}


def marketing_keyword(text: str) -> bool | None:
    """True for a stop word typed alone (opt out of marketing), False for a start word, None for
    anything else."""
    word = fold(text.strip().rstrip(".!?… ").strip())
    if word in STOP_WORDS:
        return True
    if word in START_WORDS:
        return False
    return None


def confirmation(opt_out: bool, lang: str) -> str:
    return CONFIRMATIONS.get(lang, CONFIRMATIONS["en"])[opt_out]


def optout_hint(shop: Shop, lang: str) -> str:
    """The line every campaign message ends with: the shop's own for ``lang``, else the default."""
    return (
        shop.marketing_optout_hint.get(lang)
        or OPTOUT_HINTS.get(lang)
        or OPTOUT_HINTS[shop.languages[0]]
    )


def address_of(channel: Channel, user: str | None) -> str | None:
    """The registry address of a channel user: a WhatsApp wa_id or E.164 phone
    (``whatsapp:+<digits>``), a Telegram chat id; None for the web chat or a malformed id."""
    if user is None:
        return None
    if channel == "whatsapp":
        digits = user.removeprefix("+")
        return f"whatsapp:+{digits}" if re.fullmatch(r"[0-9]{8,15}", digits) else None
    if channel == "telegram" and re.fullmatch(r"-?[0-9]{1,20}", user):
        return f"telegram:{user}"
    if channel == "email":
        from shared.channels.email.thread import recipient  # lazy: only for e-mail

        return f"email:{recipient(user)}"
    return None


def customer_addresses(customer: Customer) -> list[str]:
    """The addresses a customer is known by for certain: the phone its channel verified."""
    phone = address_of("whatsapp", customer.phone) if customer.phone_verified else None
    return [phone] if phone else []


def set_marketing(
    store: Store,
    shop: str,
    customer_id: str | None,
    opt_out: bool,
    at: float,
    addresses: Iterable[str] = (),
) -> None:
    """Record a marketing choice made at ``at``: on the customer (when there is one) and in the
    registry for ``addresses`` and the customer's verified phone. A later choice already
    recorded wins, in each record."""
    known: list[str] = []
    if customer_id is not None:
        try:
            customer, _ = mutate(
                store,
                shop,
                crm.CUSTOMERS,
                customer_id,
                Customer,
                lambda c: with_marketing_choice(c, opt_out, at),
            )
            known = customer_addresses(customer)
        except NotFoundError:
            pass  # a phone claim whose customer is gone (deleted): the addresses still count
    for address in dict.fromkeys([*addresses, *known]):
        _register(store, shop, address, opt_out, at)


def _register(store: Store, shop: str, address: str, opt_out: bool, at: float) -> None:
    data = {"opt_out": opt_out, "at": at}
    for _ in CONFLICT_BACKOFF:
        doc = store.get(shop, OPTOUTS, address)
        if doc is not None and (doc.data["at"] > at or doc.data == data):
            return  # a later choice is there, or this one already
        try:
            if doc is None:
                store.create(shop, OPTOUTS, address, data)
            else:
                store.update(shop, OPTOUTS, address, data, if_version=doc.version)
        except (AlreadyExistsError, PreconditionFailedError, NotFoundError):
            continue  # another choice got in first: compare with it
        return
    raise PreconditionFailedError(f"{OPTOUTS} kept changing; try again")


def opted_out(store: Store, shop: str, addresses: Iterable[str | None]) -> set[str]:
    """Which of ``addresses`` said STOP last (one batch read; None, no address, is skipped)."""
    docs = store.get_many(shop, OPTOUTS, list(dict.fromkeys(a for a in addresses if a)))
    return {address for address, doc in docs.items() if doc.data.get("opt_out") is True}


def record_choice(
    store: Store, shop: str, conversation: Conversation, opt_out: bool, at: float
) -> None:
    """A choice typed in ``conversation``: its customer's, under the conversation's address too;
    without a customer yet, the address's and the conversation's own (its customer, made later,
    inherits it: ``crm``)."""
    address = address_of(conversation.channel, conversation.channel_user)
    customer = crm.conversation_customer(store, shop, conversation)
    customer_id = customer.id if customer is not None else None
    set_marketing(store, shop, customer_id, opt_out, at, [address] if address else [])
    if customer is None:
        conversations.update(
            store, shop, conversation.id, lambda c: with_marketing_choice(c, opt_out, at)
        )


# --- erased customers ------------------------------------------------------------------------


def _erased_id(address: str) -> str:
    return hashlib.sha256(f"erased\n{address}".encode()).hexdigest()[:48]


def bury(store: Store, shop: str, addresses: Iterable[str], at: float) -> None:
    """Keep ``addresses`` out of every campaign for good (a customer erased at their request)."""
    for address in dict.fromkeys(addresses):
        store.put(shop, ERASED, _erased_id(address), {"at": at})


def erased(store: Store, shop: str, addresses: Iterable[str | None]) -> set[str]:
    """Which of ``addresses`` belonged to an erased customer (one batch read)."""
    by_id = {_erased_id(a): a for a in addresses if a}
    return {by_id[doc_id] for doc_id in store.get_many(shop, ERASED, list(by_id))}
