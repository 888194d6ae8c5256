"""What the WhatsApp and Telegram webhooks do with what arrives, before they acknowledge it.

``receive`` stores and queues each provider message once, whatever the number of deliveries
and processes, and never loses one to a failure in between. Its steps are each idempotent and
recorded in one idempotency record (``Idempotency.begin``), claimed create-only first:

1. The claim records the id the message will be stored under, so every delivery writes the
   same message document (never two copies under two ids).
2. The message is stored on its conversation: its document (create-only), then the
   conversation's ``recent`` list (skipped if a message with that provider key is already
   there), with ``last_inbound_at`` for WhatsApp's 24-hour window.
3. It is queued for the worker, with the provider key as ``dedup_id`` (the queue drops a copy;
   the worker does nothing for a message already answered).
4. The record is marked ``done``.

If any step fails the webhook answers an error (503 for the store) and the provider delivers
again. The claim is not released (the release would fail when the store is failing): a
delivery that finds it ``in_progress`` does every step again, to the end; only a ``done``
record makes a delivery a duplicate. A 200 therefore means the message is stored and queued.

Long messages (over ``MAX_MESSAGE_CHARS``, the web chat's limit): the message document keeps the
whole text, nothing is lost; the copy on ``recent``, which is what the model reads and what
every later turn carries, is cut to the limit and ends with ``TRUNCATED``.

Old events: an idempotency record lives a week (``WEEK``: Meta retries for up to seven days),
so an event older than that could be a replay whose record has expired. It is acknowledged and
ignored (logged with its age, no content), never stored or answered.

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
from typing import TYPE_CHECKING, Literal

from shared import conversations, crm
from shared.channels.base import ChannelName
from shared.exceptions import AlreadyExistsError, InvalidInputError
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.marketing import marketing_keyword, record_choice
from shared.models import Conversation, Media, Message, Shop
from shared.queue.base import WorkItem
from shared.store.idempotency import WEEK, Idempotency, record_id

if TYPE_CHECKING:
    from shared.app import App
    from shared.store import Store

ROUTES = "channel_routes"  # in DEFAULT_SHOP's scope: "whatsapp:<phone number id>" -> {"shop"}
# (likewise "messenger:<page id>", "instagram:<Instagram account id>")
SENT = "channel_messages"  # a sent message's channel id -> {"conversation", "message"}
TRUNCATED = " […]"  # ends the model's copy of a message cut to MAX_MESSAGE_CHARS


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
    thread: str = ""  # what keys the conversation when not ``user`` (an e-mail thread's root)


def placeholder(media: Media) -> str:
    """The stored text of a message that is only an attachment."""
    return f"[{media.kind}: {media.filename}]" if media.filename else f"[{media.kind}]"


def conversation_id(secret: str, shop: str, channel: ChannelName, user: str) -> str:
    digest = hmac.new(
        secret.encode(), f"conversation\n{shop}\n{channel}\n{user}".encode(), hashlib.sha256
    ).digest()
    cid = base64.urlsafe_b64encode(digest).decode().rstrip("=")  # 43 characters
    # The store reserves a leading "__" (one id in 4,096): such a user could never be stored.
    # Only those ids change, so every conversation stored so far keeps its id.
    return "c_" + cid[2:] if cid.startswith("__") else cid


def route_key(channel: ChannelName, account: str) -> str:
    return f"{channel}:{account}"


def shop_for(app: App, channel: ChannelName, account: str) -> Shop | None:
    """The shop that owns ``account``: DEFAULT_SHOP for the configured one, else a route."""
    settings = app.settings
    configured = {
        "whatsapp": settings.whatsapp_phone_number_id,
        "messenger": settings.messenger_page_id,
        "instagram": settings.instagram_account_id,
    }
    if channel == "telegram" or account == configured.get(channel):
        return app.shops.get(settings.default_shop)
    if not re.fullmatch(r"[0-9]{1,40}", account):
        return None
    route = app.store.get(settings.default_shop, ROUTES, route_key(channel, account))
    return app.shops.get(route.data["shop"]) if route is not None else None


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


Received = Literal["received", "duplicate", "stale"]


def receive(app: App, shop: Shop, inbound: Inbound, secret: str) -> Received:
    """Store and queue ``inbound`` once (see the module docstring): "received" when this
    delivery did (or finished) it, "duplicate" when an earlier one had, "stale" for an event
    older than the deduplication window."""
    age = time.time() - inbound.at
    if age > WEEK:
        log_event(
            "channel_event_ignored",
            channel=inbound.channel,
            shop=shop.id,
            reason="older_than_dedupe_window",
            age_days=round(age / 86400, 1),
        )
        return "stale"
    idempotency = Idempotency(app.store)
    claim = idempotency.begin(
        shop.id, f"{inbound.channel}:{inbound.key}", {"message": new_sortable_id()}
    )
    if claim.done:
        return "duplicate"
    cid = conversation_id(secret, shop.id, inbound.channel, inbound.thread or inbound.user)
    message = Message(
        id=str(claim.data["message"]),
        role="user",
        text=inbound.text,
        at=inbound.at,
        external_ids=[inbound.key],
        media=inbound.media,
    )
    conversation = _store(app.store, shop, cid, inbound, message, app.settings.max_message_chars)
    opt_out = marketing_keyword(inbound.text) if inbound.media is None else None
    if opt_out is not None:
        record_choice(app.store, shop.id, conversation, opt_out, inbound.at)
    app.queue.send(
        WorkItem(
            kind="channel_turn",
            shop=shop.id,
            group=cid,
            dedup_id=inbound.key,
            payload={"conversation": cid},
        )
    )
    idempotency.complete(claim)
    return "received"


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, marked with ``TRUNCATED`` if it was longer."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _store(
    store: Store, shop: Shop, cid: str, inbound: Inbound, message: Message, limit: int
) -> Conversation:
    conversation = conversations.get(store, shop.id, cid)
    if conversation is not None and _holds(conversation, inbound.key):
        return conversation  # stored by an earlier delivery that failed before queueing
    customer_id = conversation.customer_id if conversation is not None else None
    if customer_id is None and inbound.phone is not None:
        # The channel gives the phone: a verified link (a number typed in a chat is not).
        customer_id = crm.find_or_create_customer_by_phone(
            store, shop.id, inbound.phone, inbound.name, f"{inbound.channel}:{cid}"
        ).id
    # Written by an earlier delivery if it exists (the worker may have changed it since: keep it).
    conversations.add_message_once(store, shop.id, cid, message, channel=inbound.channel)
    seen = message.model_copy(update={"text": cut(message.text, limit)})

    def add(c: Conversation) -> Conversation:
        if _holds(c, inbound.key):
            return c
        return c.model_copy(
            update={
                "recent": conversations.appended(c.recent, [seen]),
                "last_inbound_at": max(c.last_inbound_at or 0.0, inbound.at),
                "channel_user": inbound.user,
                "customer_id": c.customer_id or customer_id,
            }
        )

    if conversation is None:
        now = time.time()
        created = add(Conversation(id=cid, channel=inbound.channel, created_at=now, updated_at=now))
        try:
            conversations.create(store, shop.id, created)
            return created
        except AlreadyExistsError:
            pass  # the customer's other message created it meanwhile: append to it
    return conversations.update(store, shop.id, cid, add)


def _holds(conversation: Conversation, key: str) -> bool:
    return any(key in (m.external_ids or ()) for m in conversation.recent)


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
    """Move the delivery of the message sent as ``external_id`` forward
    (``conversations.advance_delivery``). Returns the conversation id and the message, or None
    for a message this service did not send or a status it ignores."""
    pointer = store.get(shop, SENT, record_id(f"{channel}:{external_id}"))
    if pointer is None or status not in conversations.DELIVERY_RANK:
        return None
    cid, message_id = pointer.data["conversation"], pointer.data["message"]
    return cid, conversations.advance_delivery(store, shop, cid, message_id, status, error_code)
