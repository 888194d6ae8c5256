"""WhatsApp's webhook: Meta's subscription handshake, the signature of every post
(``X-Hub-Signature-256``), and a verified post handled: messages stored and queued, delivery
statuses and marketing preferences recorded. Types that get no answer (reactions, system
notices, unknown types) are acknowledged and counted, never an error."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import conversations, crm
from shared.channels.meta import check_signature
from shared.channels.receive import (
    Inbound,
    conversation_id,
    placeholder,
    receive,
    record_status,
    shop_for,
)
from shared.channels.webhook import Handled, Headers, Webhook
from shared.channels.whatsapp.models import (
    AudioMessage,
    ButtonMessage,
    ContactsMessage,
    DocumentMessage,
    ImageMessage,
    InboundMessage,
    InteractiveMessage,
    LocationMessage,
    OrderMessage,
    StickerMessage,
    TextMessage,
    Value,
    VideoMessage,
    WebhookPayload,
)
from shared.log import log_event
from shared.marketing import address_of, set_marketing
from shared.models import Media, MediaKind, Shop
from shared.queue.base import WorkItem

if TYPE_CHECKING:
    from shared.app import App

REENGAGEMENT = 131047  # a status "failed" with this code: the reply was outside the window


@dataclass
class Report:
    """Counts for the log line; no ids, numbers or text."""

    shop: str = ""
    received: int = 0
    duplicates: int = 0
    ignored: int = 0
    statuses: int = 0
    preferences: int = 0


class WhatsAppWebhook(Webhook[WebhookPayload]):
    update = WebhookPayload

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        check_signature(body, header("x-hub-signature-256"), secret)

    def handle(self, app: App, update: WebhookPayload, secret: str) -> Handled:
        report = Report()
        for entry in update.entry:
            for change in entry.changes:
                value = change.value
                shop = (
                    shop_for(app, "whatsapp", value.metadata.phone_number_id)
                    if value is not None and value.metadata is not None
                    else None
                )
                if value is None or shop is None:
                    report.ignored += 1
                    continue
                report.shop = report.shop or shop.id
                _messages(app, shop, value, secret, report)
                _statuses(app, shop, value, report)
                _preferences(app, shop, value, secret, report)
        log_event("whatsapp_webhook", **vars(report))
        return Handled(report.shop)


def _messages(app: App, shop: Shop, value: Value, secret: str, report: Report) -> None:
    names = {c.wa_id: c.profile.name for c in value.contacts}
    for message in value.messages:
        inbound = to_inbound(message, names.get(message.from_, ""))
        outcome = receive(app, shop, inbound, secret) if inbound is not None else None
        if outcome == "received":
            report.received += 1
        elif outcome == "duplicate":
            report.duplicates += 1
        else:  # no answer due, or older than the deduplication window
            report.ignored += 1


def _statuses(app: App, shop: Shop, value: Value, report: Report) -> None:
    for status in value.statuses:
        code = status.errors[0].code if status.errors else None
        found = record_status(app.store, shop.id, "whatsapp", status.id, status.status, code)
        report.statuses += 1
        if found is not None and status.status == "failed" and code == REENGAGEMENT:
            cid, message = found
            app.queue.send(
                WorkItem(
                    kind="channel_reengage",
                    shop=shop.id,
                    group=cid,
                    dedup_id=f"reengage:{status.id}",
                    payload={"conversation": cid, "message": message.id},
                )
            )


def _preferences(app: App, shop: Shop, value: Value, secret: str, report: Report) -> None:
    """Marketing choices made in WhatsApp itself: for the customer of the wa_id's conversation,
    else of its verified phone, else for the number alone (no customer is made for it)."""
    for preference in value.user_preferences:
        address = address_of("whatsapp", preference.wa_id)
        wanted = preference.category == "marketing_messages" and preference.value in (
            "stop",
            "resume",
        )
        if not wanted or address is None:
            continue
        cid = conversation_id(secret, shop.id, "whatsapp", preference.wa_id)
        conversation = conversations.get(app.store, shop.id, cid)
        customer_id = conversation.customer_id if conversation is not None else None
        customer_id = customer_id or crm.verified_customer_id(
            app.store, shop.id, address.removeprefix("whatsapp:")
        )
        at = float(preference.timestamp) or time.time()
        set_marketing(app.store, shop.id, customer_id, preference.value == "stop", at, [address])
        report.preferences += 1


def to_inbound(message: InboundMessage, name: str) -> Inbound | None:
    """What the customer said, or None for what gets no answer."""
    media: Media | None = None
    text = ""
    if isinstance(message, TextMessage):
        text = message.text.body
    elif isinstance(message, InteractiveMessage):
        choice = message.interactive.button_reply or message.interactive.list_reply
        text = (choice.title or choice.id) if choice is not None else ""
    elif isinstance(message, ButtonMessage):
        text = message.button.text or message.button.payload
    elif isinstance(message, LocationMessage):
        place = message.location
        where = ", ".join(p for p in (place.name, place.address) if p)
        text = " ".join(p for p in ("📍", where, f"({place.latitude}, {place.longitude})") if p)
    elif isinstance(message, ContactsMessage):
        text = "\n".join(
            f"👤 {c.name.formatted_name}: {', '.join(p.phone for p in c.phones)}"
            for c in message.contacts
        )
    elif isinstance(message, OrderMessage):
        items = "; ".join(
            f"{i.quantity} × {i.product_retailer_id} ({i.item_price:g} {i.currency})"
            for i in message.order.product_items
        )
        text = f"🛒 {items}\n{message.order.text}".strip()
    else:
        media, text = _media(message)
    if not text.strip() or not message.id or not message.from_:
        return None
    return Inbound(
        channel="whatsapp",
        user=message.from_,
        key=message.id,
        text=text,
        at=float(message.timestamp) or time.time(),
        media=media,
        name=name,
        phone=_phone(message.from_),
    )


def _media(message: InboundMessage) -> tuple[Media | None, str]:
    kind: MediaKind
    if isinstance(message, ImageMessage):
        kind, body = "image", message.image
    elif isinstance(message, AudioMessage):
        kind, body = ("voice" if message.audio.voice else "audio"), message.audio
    elif isinstance(message, VideoMessage):
        kind, body = "video", message.video
    elif isinstance(message, DocumentMessage):
        kind, body = "document", message.document
    elif isinstance(message, StickerMessage):
        kind, body = "sticker", message.sticker
    else:  # reactions, system notices, unsupported and unknown types
        return None, ""
    media = Media(kind=kind, ref=body.id, mime_type=body.mime_type, filename=body.filename)
    return media, body.caption or placeholder(media)


def _phone(wa_id: str) -> str | None:
    # A wa_id is the number in international form without "+": E.164 once "+" is added.
    return f"+{wa_id}" if wa_id.isdigit() and 8 <= len(wa_id) <= 15 else None
