"""What the WhatsApp and Telegram webhooks do with what arrives, before they acknowledge it.

``receive`` runs once per provider message id, whatever the number of deliveries and the number
of processes: a create-only idempotency record is claimed first (never read-then-write). The
message is then stored on its conversation (its document and the conversation's ``recent``
list, with ``last_inbound_at`` for WhatsApp's 24-hour window) and queued for the worker, which
answers it. If storing or queueing fails, the claim is released and the webhook answers 500,
so the provider delivers it again; a delivery that finds its message already stored only
queues it again.

The claim is ``Idempotency.once`` rather than ``claim``: both are one create-only write, but a
claim made by a delivery that then fails must be released, or the provider's next delivery
would be dropped as a duplicate and the message lost.

A conversation's id is an HMAC of shop, channel and user under the channel's secret: the same
for every message of a customer, shaped like a session id, and not computable (nor reversible
to a phone number) without the secret. Changing the secret starts new conversations; the
customer, found by phone, stays the same. Shops are found from the channel's account (a WhatsApp
phone number id) through route documents, one read, no scan across shops.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import crm
from shared.catalog.retrieval import fold
from shared.channels.base import ChannelName
from shared.chat import RECENT_KEPT
from shared.exceptions import AlreadyExistsError, InvalidInputError
from shared.ids import new_sortable_id
from shared.models import Conversation, Customer, Media, Message, Shop
from shared.queue.base import WorkItem
from shared.store.idempotency import Idempotency, record_id

if TYPE_CHECKING:
    from shared.app import App
    from shared.store import Store

ROUTES = "channel_routes"  # in DEFAULT_SHOP's scope: "whatsapp:<phone number id>" -> {"shop"}
SENT = "channel_messages"  # a sent message's channel id -> {"conversation", "message"}
# One word typed alone. STOP/ARRET: no more marketing; START: marketing again.
_STOP_WORDS = frozenset({"stop", "arret", "arreter", "unsubscribe", "desabonner", "desinscrire"})
_START_WORDS = frozenset({"start", "resume", "reprendre"})
_DELIVERY_RANK = {"pending": 0, "accepted": 1, "sent": 2, "delivered": 3, "read": 4, "failed": 5}


@dataclass(frozen=True)
class Inbound:
    """A customer's message, as any channel gives it."""

    channel: ChannelName
    user: str  # where replies go: a WhatsApp wa_id, a Telegram chat id
    key: str  # the provider's id for this arrival (a wamid, a Telegram update id)
    text: str  # the text, a caption, or a placeholder for media (see ``placeholder``)
    at: float
    media: Media | None = None
    name: str = ""
    phone: str | None = None  # E.164, when the channel tells it (WhatsApp)


def placeholder(media: Media) -> str:
    """The stored text of a message that is only an attachment."""
    return f"[{media.kind}: {media.filename}]" if media.filename else f"[{media.kind}]"


def marketing_keyword(text: str) -> bool | None:
    """True for STOP (opt out of marketing), False for START, None for anything else."""
    word = fold(text.strip().strip(".!"))
    if word in _STOP_WORDS:
        return True
    if word in _START_WORDS:
        return False
    return None


def conversation_id(secret: str, shop: str, channel: ChannelName, user: str) -> str:
    digest = hmac.new(
        secret.encode(), f"conversation\n{shop}\n{channel}\n{user}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")  # 43 characters


def route_key(channel: ChannelName, account: str) -> str:
    return f"{channel}:{account}"


def shop_for(app: App, channel: ChannelName, account: str) -> Shop | None:
    """The shop that owns ``account``: DEFAULT_SHOP for the configured one, else a route."""
    settings = app.settings
    if channel == "telegram" or account == settings.whatsapp_phone_number_id:
        return app.chat.shop(settings.default_shop)
    if not re.fullmatch(r"[0-9]{1,40}", account):
        return None
    route = app.store.get(settings.default_shop, ROUTES, route_key(channel, account))
    return app.chat.shop(route.data["shop"]) if route is not None else None


def add_route(app: App, shop_id: str, channel: ChannelName, account: str) -> None:
    """Give ``account`` to ``shop_id`` (create-only: an account belongs to one shop)."""
    store, default = app.store, app.settings.default_shop
    try:
        store.create(default, ROUTES, route_key(channel, account), {"shop": shop_id})
    except AlreadyExistsError:
        route = store.get(default, ROUTES, route_key(channel, account))
        if route is None or route.data.get("shop") != shop_id:
            raise InvalidInputError(
                f"{channel} account {account} belongs to another shop"
            ) from None


def receive(app: App, shop: Shop, inbound: Inbound, secret: str) -> bool:
    """Store and queue ``inbound`` once; False for a duplicate delivery."""
    with Idempotency(app.store).once(shop.id, f"{inbound.channel}:{inbound.key}") as first:
        if not first:
            return False
        cid = conversation_id(secret, shop.id, inbound.channel, inbound.user)
        conversation = _store(app.store, shop, cid, inbound)
        opt_out = marketing_keyword(inbound.text) if inbound.media is None else None
        if opt_out is not None and conversation.customer_id is not None:
            set_marketing(app.store, shop.id, conversation.customer_id, opt_out, inbound.at)
        app.queue.send(
            WorkItem(
                kind="channel_turn",
                shop=shop.id,
                group=cid,
                dedup_id=inbound.key,
                payload={"conversation": cid},
            )
        )
    return True


def _store(store: Store, shop: Shop, cid: str, inbound: Inbound) -> Conversation:
    doc = store.get(shop.id, crm.CONVERSATIONS, cid)
    conversation = Conversation.from_doc(doc) if doc is not None else None
    if conversation is not None and any(
        inbound.key in (m.external_ids or ()) for m in conversation.recent
    ):
        return conversation  # stored by an earlier delivery that failed before queueing
    customer_id = conversation.customer_id if conversation is not None else None
    if customer_id is None and inbound.phone is not None:
        # The channel gives the phone: a verified link (a number typed in a chat is not).
        customer_id = crm.find_or_create_customer_by_phone(
            store, shop.id, inbound.phone, inbound.name, f"{inbound.channel}:{cid}"
        ).id
    message = Message(
        id=new_sortable_id(),
        role="user",
        text=inbound.text,
        at=inbound.at,
        external_ids=[inbound.key],
        media=inbound.media,
    )
    store.put(shop.id, f"conversations/{cid}/messages", message.id, message.to_doc())

    def add(c: Conversation) -> Conversation:
        if any(inbound.key in (m.external_ids or ()) for m in c.recent):
            return c
        return c.model_copy(
            update={
                "recent": [*c.recent, message][-RECENT_KEPT:],
                "last_inbound_at": max(c.last_inbound_at or 0.0, inbound.at),
                "channel_user": inbound.user,
                "customer_id": c.customer_id or customer_id,
            }
        )

    if conversation is None:
        now = time.time()
        created = add(Conversation(id=cid, channel=inbound.channel, created_at=now, updated_at=now))
        try:
            store.create(shop.id, crm.CONVERSATIONS, cid, created.to_doc())
            return created
        except AlreadyExistsError:
            pass  # the customer's other message created it meanwhile: append to it
    return crm.update_conversation(store, shop.id, cid, add)


def set_marketing(store: Store, shop: str, customer_id: str, opt_out: bool, at: float) -> None:
    """Record the customer's marketing choice unless a later one is already recorded (the
    provider may deliver an old choice after a newer one)."""

    def choose(customer: Customer) -> Customer:
        if customer.marketing_changed_at is not None and customer.marketing_changed_at > at:
            return customer
        return customer.model_copy(
            update={"marketing_opt_out": opt_out, "marketing_changed_at": at}
        )

    crm.mutate(store, shop, crm.CUSTOMERS, customer_id, Customer, choose)


def record_sent(
    store: Store, shop: str, channel: ChannelName, external_id: str, cid: str, message_id: str
) -> None:
    """Remember which stored message a sent channel message is, for its delivery statuses."""
    store.put(
        shop,
        SENT,
        record_id(f"{channel}:{external_id}"),
        {"conversation": cid, "message": message_id},
    )


def record_status(
    store: Store,
    shop: str,
    channel: ChannelName,
    external_id: str,
    status: str,
    error_code: int | None,
) -> tuple[str, Message] | None:
    """Move the delivery of the message sent as ``external_id`` forward (statuses can arrive
    out of order: "read" is never undone by a late "delivered"). Returns the conversation id and
    the message, or None for a message this service did not send or a status it ignores."""
    pointer = store.get(shop, SENT, record_id(f"{channel}:{external_id}"))
    if pointer is None or status not in _DELIVERY_RANK:
        return None
    cid, message_id = pointer.data["conversation"], pointer.data["message"]

    def advance(message: Message) -> Message:
        # A reply still being sent (or replaced by a template) is the worker's to change.
        if message.delivery in (None, "pending", "template"):
            return message
        if _DELIVERY_RANK[status] <= _DELIVERY_RANK.get(message.delivery or "pending", 0):
            return message
        return message.model_copy(update={"delivery": status, "error_code": error_code})

    updated = crm.mutate(store, shop, f"conversations/{cid}/messages", message_id, Message, advance)
    return cid, updated
