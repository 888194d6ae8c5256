"""A customer's data rights: everything held about them, exported as JSON or erased.

``HOLDINGS`` is the one table of where a customer's data lies; export and delete both walk it,
so a new collection that holds customer data is one line here (and a test that fails until it
is). A customer is found by id or by phone (the verified customer that claimed it, and every
unverified contact that typed it).

Erasing is resumable: the addresses go on the suppression list first (``marketing.bury``: a
digest, so campaigns never add the number again), then every document the table finds, the
customer's own document last, so a run stopped half-way finds the customer again and finishes.
Nothing else is kept: the history endpoint answers 404 for an erased conversation.

Not in the table, on purpose: idempotency records (message ids, no content, gone within a
week), rate-limit counters (a minute) and the checkout routes (an order id by provider
reference, in DEFAULT_SHOP's scope, expiring a week after the checkout), and the MCP API keys
bound to a customer (``shared/apikeys.py``: the customer's id only, in the ``platform`` scope;
once the orders are erased the key reads nothing, and the shop revokes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import crm, events, jobs, marketing, quotas
from shared.campaigns.runner import SENDS
from shared.channels.receive import SENT
from shared.conversations import CONVERSATIONS, messages_of
from shared.crm import CUSTOMERS, LEADS, OPEN_LEADS, PHONES
from shared.exceptions import ComptoirError, InvalidInputError, NotFoundError
from shared.ipn import PAYMENTS
from shared.log import log_event
from shared.memory import COLLECTION as MEMORY
from shared.models import Conversation, Customer, Lead
from shared.store import Doc, Store
from shared.store.idempotency import record_id
from shared.worker import COLLECTION as DEAD_LETTERS


@dataclass
class Found:
    """One customer and what leads to their documents."""

    customer: Customer
    conversations: list[Conversation]
    orders: list[Lead]
    identities: list[str]  # its conversations' ids, as the customer document lists them

    @property
    def conversation_ids(self) -> set[str]:
        return {c.id for c in self.conversations} | set(self.identities)

    @property
    def customer_keys(self) -> set[str]:
        """Whom usage and subscriptions were counted for (``quotas.customer_key``)."""
        return {quotas.customer_key(c, self.customer) for c in self.conversations}

    @property
    def addresses(self) -> list[str]:
        found = [marketing.address_of(c.channel, c.channel_user) for c in self.conversations]
        phones = [self.customer.phone] + [o.phone for o in self.orders]
        found += [marketing.address_of("whatsapp", p) for p in phones if p]
        return [a for a in dict.fromkeys(found) if a]


Finder = Callable[[Store, str, Found], Iterable[tuple[str, Doc]]]


def _by_ids(collection: str, ids: Callable[[Found], Iterable[str]]) -> Finder:
    def find(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
        wanted = list(dict.fromkeys(ids(found)))
        for start in range(0, len(wanted), 100):
            for doc in store.get_many(shop, collection, wanted[start : start + 100]).values():
                yield collection, doc

    return find


def _where(collection: str, field_name: str, values: Callable[[Found], Iterable[str]]) -> Finder:
    def find(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
        for value in dict.fromkeys(values(found)):
            for doc in store.scan(shop, collection, where={field_name: value}):
                yield collection, doc

    return find


def _messages(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
    for conversation_id in sorted(found.conversation_ids):
        collection = messages_of(conversation_id)
        for doc in store.scan(shop, collection):
            yield collection, doc


def _usage(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
    keys = tuple(f"{key}:" for key in found.customer_keys)
    for doc in store.scan(shop, quotas.USAGE):
        if doc.id.startswith(keys):
            yield quotas.USAGE, doc


def _dead_letters(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
    ids = found.conversation_ids
    for doc in store.scan(shop, DEAD_LETTERS):
        payload = (doc.data.get("item") or {}).get("payload") or {}
        if ids & {payload.get("conversation"), payload.get("conversation_id")}:
            yield DEAD_LETTERS, doc


def _phone_claims(store: Store, shop: str, found: Found) -> Iterator[tuple[str, Doc]]:
    phone = found.customer.phone
    if phone and found.customer.phone_verified:
        claim = store.get(shop, PHONES, record_id(phone))
        if claim is not None and claim.data.get("customer_id") == found.customer.id:
            yield PHONES, claim


# Where a customer's data lies: name -> how to find their documents. A holding comes before
# those it is found through (payments before orders, messages before conversations): a deletion
# stopped half-way finds the rest again. The customer's own document comes last.
HOLDINGS: dict[str, Finder] = {
    "messages": _messages,
    "channel_messages": _where(SENT, "conversation", lambda f: f.conversation_ids),
    "events": _where(events.COLLECTION, "conversation_id", lambda f: f.conversation_ids),
    "dead_letters": _dead_letters,
    "marketing_choices": _by_ids(marketing.OPTOUTS, lambda f: f.addresses),
    "usage": _usage,
    "subscriptions": _by_ids(quotas.SUBSCRIPTIONS, lambda f: f.customer_keys),
    "plan_purchases": _where(quotas.PLAN_PURCHASES, "customer_key", lambda f: f.customer_keys),
    "conversations": _by_ids(CONVERSATIONS, lambda f: f.conversation_ids),
    "payments": _where(PAYMENTS, "order", lambda f: (o.id for o in f.orders)),
    "open_orders": _by_ids(
        OPEN_LEADS, lambda f: (record_id(f"{o.conversation_id}\n{o.product_id}") for o in f.orders)
    ),
    "orders": _by_ids(LEADS, lambda f: (o.id for o in f.orders)),
    "memory": _by_ids(MEMORY, lambda f: [f.customer.id]),
    "campaign_sends": _where(SENDS, "customer_id", lambda f: [f.customer.id]),
    "job_sends": _where(jobs.SENDS, "customer_id", lambda f: [f.customer.id]),
    "reminders": _where(jobs.JOBS, "customer_id", lambda f: [f.customer.id]),
    "phone_claim": _phone_claims,
    "customer": _by_ids(CUSTOMERS, lambda f: [f.customer.id]),
}


# --- finding the customer ---------------------------------------------------------------------


def find_customers(
    store: Store, shop: str, *, customer_id: str | None = None, phone: str | None = None
) -> list[Customer]:
    """The customer ``customer_id``, or every customer holding ``phone`` (E.164): the verified
    one and the unverified contacts that typed it. NotFoundError when there is none."""
    if (customer_id is None) == (phone is None):
        raise InvalidInputError("give a customer id or a phone, not both")
    if customer_id is not None:
        customer = crm.get_customer(store, shop, customer_id)
        found = [customer] if customer is not None else []
    else:
        found = [
            Customer.from_doc(d)
            for d in store.scan(shop, CUSTOMERS)
            if d.data.get("phone") == phone
        ]
    if not found:
        raise NotFoundError(f"no customer with that {'id' if customer_id else 'phone'} in {shop!r}")
    return found


def collect(store: Store, shop: str, customer: Customer) -> Found:
    """The customer's conversations (linked or owned) and orders."""
    ids = [i.split(":", 1)[1] for i in customer.identities if ":" in i]
    docs = store.get_many(shop, CONVERSATIONS, ids)
    talks = [Conversation.from_doc(d) for d in docs.values()]
    owned = [
        Conversation.from_doc(d)
        for d in store.scan(shop, CONVERSATIONS, where={"customer_id": customer.id})
    ]
    by_id = {c.id: c for c in [*talks, *owned]}
    orders = [Lead.from_doc(d) for d in store.scan(shop, LEADS, where={"customer_id": customer.id})]
    return Found(customer, list(by_id.values()), orders, ids)


def _documents(store: Store, shop: str, found: Found) -> Iterator[tuple[str, str, Doc]]:
    for name, finder in HOLDINGS.items():
        for collection, doc in finder(store, shop, found):
            yield name, collection, doc


# --- export and delete ------------------------------------------------------------------------


def export_customer(store: Store, shop: str, customer: Customer) -> dict[str, Any]:
    """Everything held about ``customer``, by holding: ``{"customer_id", "holdings": {name:
    [{"collection", "id", "data"}]}}``."""
    found = collect(store, shop, customer)
    holdings: dict[str, list[dict[str, Any]]] = {name: [] for name in HOLDINGS}
    for name, collection, doc in _documents(store, shop, found):
        holdings[name].append({"collection": collection, "id": doc.id, "data": doc.data})
    return {
        "shop": shop,
        "customer_id": customer.id,
        "exported_at": time.time(),
        "holdings": holdings,
    }


@dataclass
class Deletion:
    customer_id: str
    deleted: dict[str, int] = field(default_factory=dict)  # holding -> documents deleted


def delete_customer(store: Store, shop: str, customer: Customer) -> Deletion:
    """Erase everything held about ``customer`` (see the module docstring)."""
    found = collect(store, shop, customer)
    marketing.bury(store, shop, found.addresses, time.time())
    report = Deletion(customer.id)
    for name, collection, doc in list(_documents(store, shop, found)):
        if store.delete(shop, collection, doc.id):
            report.deleted[name] = report.deleted.get(name, 0) + 1
    log_event("customer_deleted", shop=shop, documents=sum(report.deleted.values()))
    return report


# --- the CLI: python -m shared customer export|delete ------------------------------------------

COMMANDS = ("customer",)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("customer", help="a customer's data: export it, erase it")
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, does in (("export", "write everything held as JSON"), ("delete", "erase it all")):
        action = actions.add_parser(name, help=does)
        action.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
        who = action.add_mutually_exclusive_group(required=True)
        who.add_argument("--id", dest="customer_id", help="the customer's id")
        who.add_argument("--phone", help="every customer holding this phone number")
        if name == "export":
            action.add_argument("--out", type=Path, help="a file (default: standard output)")
        else:
            action.add_argument("--yes", action="store_true", help="do not ask to confirm")


def run(args: argparse.Namespace) -> int:
    from shared.app import get_app

    try:
        app = get_app()
        shop = app.shops.get(args.shop or app.settings.default_shop)
        phone = crm.normalise_phone(args.phone, shop.phone_region) if args.phone else None
        customers = find_customers(app.store, shop.id, customer_id=args.customer_id, phone=phone)
        if args.action == "export":
            exported = [export_customer(app.store, shop.id, c) for c in customers]
            text = json.dumps(exported if len(exported) > 1 else exported[0], indent=2)
            if args.out:
                args.out.write_text(text + "\n", encoding="utf-8")
                print(f"{len(customers)} customer(s) written to {args.out}", file=sys.stderr)
            else:
                print(text)
            return 0
        if not args.yes:
            answer = input(f"erase {len(customers)} customer(s) and all their data? [y/N] ")
            if answer.strip().lower() not in ("y", "yes", "o", "oui"):
                print("nothing erased", file=sys.stderr)
                return 1
        for customer in customers:
            report = delete_customer(app.store, shop.id, customer)
            counts = ", ".join(f"{n} {k}" for k, n in report.deleted.items()) or "nothing left"
            print(f"customer {customer.id} erased: {counts}")
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
