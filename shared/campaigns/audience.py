"""A campaign's audience: the shop's customers that match its segment, each with the channel and
address that reaches them.

The audience is read in a few scans (customers, orders, and the conversations of the customers
left after the cheap conditions, a hundred at a time), never one read per customer. A customer is
reached on the channel they last wrote on (WhatsApp, Telegram); a widget customer who typed a
phone in an order is reached on WhatsApp at that number, by template (they never wrote there).
Opted-out customers and numbers, erased numbers and one address twice are left out, counted by
reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from shared import marketing
from shared.campaigns.models import Campaign, CampaignChannel, Recipient, Segment
from shared.catalog import PRODUCTS, RESTOCKS
from shared.conversations import CONVERSATIONS
from shared.crm import CUSTOMERS, LEADS
from shared.models import Conversation, Customer, Lead, Product, Shop
from shared.store import Store

_READ_CHUNK = 100
_DAY = 86400.0
T = TypeVar("T")


@dataclass
class Audience:
    recipients: list[Recipient]
    left_out: Counter[str] = field(default_factory=Counter)

    @property
    def by_channel(self) -> dict[str, int]:
        return dict(Counter(r.channel for r in self.recipients))


def select(store: Store, shop: Shop, campaign: Campaign, now: float | None = None) -> Audience:
    """The recipients of ``campaign`` now, in customer id order, at most ``max_per_run``."""
    now = time.time() if now is None else now
    segment = campaign.segment
    orders = _orders_by_customer(store, shop.id)
    customers = [
        c
        for c in (Customer.from_doc(d) for d in store.scan(shop.id, CUSTOMERS))
        if _profile_matches(segment, c) and _orders_match(segment, orders.get(c.id, []), now)
    ]
    restocks = _restocks(store, shop.id) if segment.restocked else {}
    products = _products(store, shop.id) if segment.categories else {}
    audience = Audience([])
    for chunk in _chunks(customers, _READ_CHUNK):
        talks = _conversations(store, shop.id, chunk)
        for customer in chunk:
            own = [talks[i] for i in _conversation_ids(customer) if i in talks]
            customer_orders = orders.get(customer.id, [])
            interest = _interest(segment, own, customer_orders, products, restocks)
            if interest is False:
                continue
            recipient = _recipient(shop, campaign, customer, own, customer_orders, now)
            if recipient is None:
                # In the segment but for its channels: not counted; else nothing reaches them.
                if not (segment.channels and any(c.channel_user for c in own)):
                    audience.left_out["unreachable"] += 1
                continue
            if not _activity_matches(segment, recipient, now):
                continue
            if customer.marketing_opt_out:
                audience.left_out["opted_out"] += 1
                continue
            if isinstance(interest, tuple):
                product_id, restocked_at = interest
                subject = f"{customer.id}~{product_id}" + (
                    f"~{int(restocked_at)}" if restocked_at else ""
                )
                recipient = recipient.model_copy(
                    update={"product_id": product_id, "subject": subject}
                )
            audience.recipients.append(recipient)
    _leave_out_addresses(store, shop.id, audience)
    limit = campaign.schedule.max_per_run
    if limit is not None and len(audience.recipients) > limit:
        audience.left_out["over_max_per_run"] += len(audience.recipients) - limit
        audience.recipients = audience.recipients[:limit]
    return audience


# --- the cheap conditions: the customer and their orders ---------------------------------------


def _profile_matches(segment: Segment, customer: Customer) -> bool:
    created = customer.created_at
    return (
        (segment.created_after is None or created >= segment.created_after)
        and (segment.created_before is None or created < segment.created_before)
        and all(tag in customer.tags for tag in segment.tags)
    )


def _orders_match(segment: Segment, orders: list[Lead], now: float) -> bool:
    if segment.order_status and not _matching_orders(segment, orders, now):
        return False
    if segment.no_order_days is not None:
        if not orders:
            return False
        latest = max(o.created_at for o in orders)
        if latest > now - segment.no_order_days * _DAY:
            return False
    return True


def _matching_orders(segment: Segment, orders: list[Lead], now: float) -> list[Lead]:
    idle = segment.order_idle_hours
    return [
        o
        for o in orders
        if o.status in segment.order_status and (idle is None or o.updated_at <= now - idle * 3600)
    ]


def _orders_by_customer(store: Store, shop: str) -> dict[str, list[Lead]]:
    found: dict[str, list[Lead]] = {}
    for doc in store.scan(shop, LEADS):
        lead = Lead.from_doc(doc)
        found.setdefault(lead.customer_id, []).append(lead)
    return found


# --- where a customer is reached ----------------------------------------------------------------


def _conversation_ids(customer: Customer) -> list[str]:
    return [identity.split(":", 1)[1] for identity in customer.identities if ":" in identity]


def _conversations(
    store: Store, shop: str, customers: Sequence[Customer]
) -> dict[str, Conversation]:
    ids = [cid for c in customers for cid in _conversation_ids(c)]
    found: dict[str, Conversation] = {}
    for chunk in _chunks(ids, _READ_CHUNK):
        for doc_id, doc in store.get_many(shop, CONVERSATIONS, chunk).items():
            found[doc_id] = Conversation.from_doc(doc)
    return found


def _recipient(
    shop: Shop,
    campaign: Campaign,
    customer: Customer,
    conversations: list[Conversation],
    orders: list[Lead],
    now: float,
) -> Recipient | None:
    allowed: Sequence[CampaignChannel] = campaign.segment.channels or ("whatsapp", "telegram")
    reachable = [
        c
        for c in conversations
        if c.channel in allowed and c.channel_user and c.customer_id == customer.id
    ]
    reachable.sort(key=lambda c: c.last_inbound_at or 0.0, reverse=True)
    about = _about(campaign, orders, now)
    lang = _language(shop, conversations)
    subject = customer.id
    if campaign.repeat == "order":
        if about is None:
            return None
        subject = about.id
    base = Recipient(
        customer_id=customer.id,
        channel="whatsapp",
        address="",
        name=customer.name,
        lang=lang,
        order_id=about.id if about else None,
        subject=subject,
    )
    for talk in reachable:
        if talk.channel_user is not None and talk.channel != "web":
            return base.model_copy(
                update={
                    "channel": talk.channel,
                    "address": talk.channel_user,
                    "conversation_id": talk.id,
                    "last_inbound_at": talk.last_inbound_at,
                }
            )
    phone = customer.phone or (about.phone if about else None)
    if "whatsapp" in allowed and phone and campaign.message.template is not None:
        return base.model_copy(update={"address": phone.lstrip("+")})
    return None


def _about(campaign: Campaign, orders: list[Lead], now: float) -> Lead | None:
    """The order a message is about: the newest matching the segment (any, when it names no
    status)."""
    segment = campaign.segment
    matching = _matching_orders(segment, orders, now) if segment.order_status else orders
    return max(matching, key=lambda o: o.created_at, default=None)


def _language(shop: Shop, conversations: Iterable[Conversation]) -> str:
    """The language the customer was last answered in, else the shop's first."""
    latest = sorted(conversations, key=lambda c: c.updated_at, reverse=True)
    for conversation in latest:
        for message in reversed(conversation.recent):
            if message.role == "assistant" and message.lang in shop.languages:
                return message.lang
    return shop.languages[0]


def _activity_matches(segment: Segment, recipient: Recipient, now: float) -> bool:
    if segment.languages and recipient.lang not in segment.languages:
        return False
    if segment.inactive_days is not None:
        last = recipient.last_inbound_at
        return last is None or last <= now - segment.inactive_days * _DAY
    return True


# --- interest: products ordered or shown ------------------------------------------------------


def _interest(
    segment: Segment,
    conversations: list[Conversation],
    orders: list[Lead],
    products: dict[str, Product],
    restocks: dict[str, float],
) -> bool | tuple[str, float | None]:
    """True when the segment names no product condition; else the product that meets it (and
    the restock it is about), or False."""
    if not (segment.products or segment.categories or segment.restocked):
        return True
    seen: dict[str, float] = {}  # product -> when the customer last met it
    for order in orders:
        seen[order.product_id] = max(seen.get(order.product_id, 0.0), order.created_at)
    for conversation in conversations:
        for message in conversation.recent:
            for shown in message.products or ():
                seen[shown.id] = max(seen.get(shown.id, 0.0), message.at)
    for product_id, at in sorted(seen.items(), key=lambda item: -item[1]):
        named = not segment.products or product_id in segment.products
        category = products.get(product_id)
        in_category = not segment.categories or (
            category is not None and category.category in segment.categories
        )
        restocked_at = restocks.get(product_id)
        if segment.restocked and (restocked_at is None or restocked_at <= at):
            continue
        if named and in_category:
            return product_id, restocked_at if segment.restocked else None
    return False


def _products(store: Store, shop: str) -> dict[str, Product]:
    return {d.id: Product.from_doc(d) for d in store.scan(shop, PRODUCTS)}


def _restocks(store: Store, shop: str) -> dict[str, float]:
    return {d.id: float(d.data["at"]) for d in store.scan(shop, RESTOCKS)}


# --- addresses ----------------------------------------------------------------------------------


def _leave_out_addresses(store: Store, shop: str, audience: Audience) -> None:
    """Drop opted-out and erased numbers, and the second customer at one address."""
    kept: list[Recipient] = []
    seen: set[str] = set()
    for chunk in _chunks(audience.recipients, _READ_CHUNK):
        addresses = [marketing.address_of(r.channel, r.address) for r in chunk]
        refused = marketing.opted_out(store, shop, addresses)
        gone = marketing.erased(store, shop, addresses)
        for recipient, address in zip(chunk, addresses, strict=True):
            if address is None:
                audience.left_out["unreachable"] += 1
            elif address in refused:
                audience.left_out["opted_out"] += 1
            elif address in gone:
                audience.left_out["erased"] += 1
            elif address in seen:
                audience.left_out["same_address"] += 1
            else:
                seen.add(address)
                kept.append(recipient)
    audience.recipients = kept


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
