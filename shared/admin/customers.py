"""The console's customers: the shop's customers (searched by name or phone), one customer with
their conversations and orders, and their data rights (``shared.customer_data``: the same export
and erasure as ``python -m shared customer``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.admin import audit
from shared.admin.auth import operator_of
from shared.admin.exceptions import UnknownRecordError
from shared.admin.records import PAGE_SIZE, known, known_cursor
from shared.exceptions import InvalidInputError
from shared.http import HTTPFunction, Request, Response, json_response, parse_model

if TYPE_CHECKING:
    from shared.models import Conversation, Customer
    from shared.store import Store

SEARCH_BUDGET = 1000  # customers read by one search request; its cursor goes on from there
_SEARCH_BATCH = 100
_MIN_PHONE_DIGITS = 3  # fewer digits in a search would match nearly every number


class _EraseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str  # the customer's id again: an erasure cannot be undone


def register(api: HTTPFunction) -> None:
    @api.route("/customers", "GET")
    def customers_list(request: Request) -> Response:
        from shared.app import get_app

        shop = operator_of(request).shop
        store = get_app().store
        search = request.query.get("q", "").strip()
        with known_cursor():
            found, cursor = _page(store, shop, search, request.query.get("cursor") or None)
        return json_response(200, {"customers": _summaries(store, shop, found), "cursor": cursor})

    @api.route("/customers/{id}", "GET")
    def customer(request: Request) -> Response:
        from shared.app import get_app
        from shared.customer_data import collect
        from shared.orders import order_json

        shop = operator_of(request).shop
        store = get_app().store
        held = collect(store, shop, _customer(store, shop, request.params["id"]))
        talks = sorted(held.conversations, key=lambda c: c.updated_at, reverse=True)
        orders = sorted(held.orders, key=lambda o: o.id, reverse=True)
        summary = _summary(held.customer, held.conversations, len(held.orders))
        detail = {
            **summary,
            "phone_verified": held.customer.phone_verified,
            "tags": held.customer.tags,
            "memory": held.customer.memory,
            "summary": held.customer.summary,
            "marketing_opt_out": held.customer.marketing_opt_out,
            "created_at": held.customer.created_at,
        }
        return json_response(
            200,
            {
                "customer": detail,
                "conversations": [_conversation_json(c) for c in talks],
                "orders": [order_json(o) for o in orders],
            },
        )

    @api.route("/customers/{id}/export", "GET")
    def export(request: Request) -> Response:
        from shared.app import get_app
        from shared.customer_data import export_customer

        operator = operator_of(request)
        store = get_app().store
        found = _customer(store, operator.shop, request.params["id"])
        exported = export_customer(store, operator.shop, found)
        # Reading everything held about a person is itself worth a trace.
        audit.record(store, operator.shop, operator, "customer.export", found.id)
        disposition = f'attachment; filename="customer-{found.id}.json"'
        return json_response(200, exported, {"Content-Disposition": disposition})

    @api.route("/customers/{id}/erase", "POST")
    def erase(request: Request) -> Response:
        from shared.app import get_app
        from shared.customer_data import delete_customer

        operator = operator_of(request, write=True)
        body = parse_model(request, _EraseBody)
        store = get_app().store
        found = _customer(store, operator.shop, request.params["id"])
        if body.confirm != found.id:
            raise InvalidInputError("confirm: give the customer's id to erase them")
        report = delete_customer(store, operator.shop, found)
        documents = sum(report.deleted.values())
        audit.record(
            store, operator.shop, operator, "customer.erase", found.id, {"documents": documents}
        )
        return json_response(200, {"erased": report.deleted})


def _customer(store: Store, shop: str, customer_id: str) -> Customer:
    from shared.crm import get_customer

    with known():
        found = get_customer(store, shop, customer_id)
    if found is None:
        raise UnknownRecordError(f"no customer {customer_id!r}")
    return found


def _page(
    store: Store, shop: str, search: str, cursor: str | None
) -> tuple[list[Customer], str | None]:
    """A page of customers, newest first (their ids sort by creation time), those matching
    ``search`` only when given: then at most SEARCH_BUDGET are read, and the cursor goes on
    from the last one read."""
    from shared.crm import CUSTOMERS
    from shared.models import Customer
    from shared.store.base import cursor_after

    if not search:
        page = store.query(shop, CUSTOMERS, descending=True, limit=PAGE_SIZE, cursor=cursor)
        return [Customer.from_doc(doc) for doc in page.items], page.cursor
    matched: list[Customer] = []
    read = 0
    while True:
        page = store.query(shop, CUSTOMERS, descending=True, limit=_SEARCH_BATCH, cursor=cursor)
        for doc in page.items:
            read += 1
            found = Customer.from_doc(doc)
            if _matches(found, search):
                matched.append(found)
            if len(matched) == PAGE_SIZE or read == SEARCH_BUDGET:
                return matched, cursor_after(doc, None)
        if page.cursor is None:
            return matched, None
        cursor = page.cursor


def _matches(customer: Customer, search: str) -> bool:
    """A name containing ``search`` (any case), or a phone containing its digits."""
    if search.casefold() in customer.name.casefold():
        return True
    digits = re.sub(r"\D", "", search)
    return len(digits) >= _MIN_PHONE_DIGITS and digits in (customer.phone or "")


def _summaries(store: Store, shop: str, customers: Sequence[Customer]) -> list[dict[str, Any]]:
    """The listing's rows: each customer's channels, order count and last activity."""
    from shared.conversations import CONVERSATIONS
    from shared.crm import LEADS
    from shared.models import Conversation

    wanted = list(dict.fromkeys(cid for c in customers for cid in _conversation_ids(c)))
    talks: dict[str, Conversation] = {}
    for start in range(0, len(wanted), _SEARCH_BATCH):
        docs = store.get_many(shop, CONVERSATIONS, wanted[start : start + _SEARCH_BATCH])
        talks.update({doc_id: Conversation.from_doc(doc) for doc_id, doc in docs.items()})
    rows = []
    for found in customers:
        own = [talks[cid] for cid in _conversation_ids(found) if cid in talks]
        orders = sum(1 for _ in store.scan(shop, LEADS, where={"customer_id": found.id}))
        rows.append(_summary(found, own, orders))
    return rows


def _conversation_ids(customer: Customer) -> tuple[str, ...]:
    return tuple(i.split(":", 1)[1] for i in customer.identities if ":" in i)


def _summary(
    customer: Customer, conversations: Sequence[Conversation], orders: int
) -> dict[str, Any]:
    channels = {i.split(":", 1)[0] for i in customer.identities if ":" in i}
    channels.update(c.channel for c in conversations)
    seen = [c.last_inbound_at or c.updated_at for c in conversations]
    return {
        "id": customer.id,
        "name": customer.name,
        "phone": customer.phone,
        "channels": sorted(channels),
        "orders": orders,
        "last_seen": max(seen, default=customer.updated_at),
    }


def _conversation_json(conversation: Conversation) -> dict[str, Any]:
    """A conversation in a customer's page; the inbox opens it whole."""
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "state": conversation.state,
        "updated_at": conversation.updated_at,
        "last_inbound_at": conversation.last_inbound_at,
        "handoff_reason": conversation.handoff_reason,
    }
