"""The Messenger Platform's webhook, for Pages (Messenger) and Instagram accounts alike: Meta's
subscription handshake and ``X-Hub-Signature-256`` (``shared.channels.meta``), then each event
handled: messages and postbacks stored and queued once (by message id), delivery and Instagram
read receipts recorded on the replies they concern, echoes of what the Page sent and Messenger's
read watermarks acknowledged and counted. The entry's id (a Page or Instagram account id) says
which shop answers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.channels.messenger.models import Attachment, Messaging, WebhookPayload
from shared.channels.meta import check_signature
from shared.channels.receive import Inbound, placeholder, receive, record_status, shop_for
from shared.channels.webhook import Handled, Headers, Webhook
from shared.log import log_event
from shared.models import Media, MediaKind, Shop

if TYPE_CHECKING:
    from shared.app import App
    from shared.channels.base import ChannelName

MEDIA_KINDS: dict[str, MediaKind] = {
    "image": "image",
    "audio": "voice",  # Messenger's and Instagram's audio is a recorded voice clip
    "video": "video",
    "file": "document",
}


@dataclass
class Report:
    """Counts for the log line; no ids or text."""

    shop: str = ""
    received: int = 0
    duplicates: int = 0
    ignored: int = 0
    echoes: int = 0
    receipts: int = 0


class MessengerWebhook(Webhook[WebhookPayload]):
    update = WebhookPayload

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        check_signature(body, header("x-hub-signature-256"), secret)

    def handle(self, app: App, update: WebhookPayload, secret: str) -> Handled:
        channel: ChannelName = "instagram" if update.object == "instagram" else "messenger"
        report = Report()
        for entry in update.entry:
            shop = shop_for(app, channel, entry.id)
            if shop is None:
                report.ignored += len(entry.messaging)
                continue
            report.shop = report.shop or shop.id
            for event in entry.messaging:
                _event(app, shop, channel, event, secret, report)
        log_event(f"{channel}_webhook", **vars(report))
        return Handled(report.shop)


def _event(
    app: App, shop: Shop, channel: ChannelName, event: Messaging, secret: str, report: Report
) -> None:
    if event.message is not None and event.message.is_echo:
        report.echoes += 1  # the Page's own message: the reply is already stored
        return
    if event.delivery is not None or event.read is not None:
        _receipts(app, shop, channel, event)
        report.receipts += 1
        return
    inbound = to_inbound(channel, event)
    outcome = receive(app, shop, inbound, secret) if inbound is not None else None
    if outcome == "received":
        report.received += 1
    elif outcome == "duplicate":
        report.duplicates += 1
    else:  # nothing to answer, or older than the deduplication window
        report.ignored += 1


def _receipts(app: App, shop: Shop, channel: ChannelName, event: Messaging) -> None:
    """A delivery names the messages it covers; Instagram's read names one. Messenger's read
    gives only a watermark (everything before it was read): the console's ``unread`` is the
    operator's, not the customer's, so nothing is recorded for it."""
    delivered = event.delivery.mids if event.delivery is not None else []
    for mid in delivered:
        record_status(app.store, shop.id, channel, mid, "delivered", None)
    if event.read is not None and event.read.mid:
        record_status(app.store, shop.id, channel, event.read.mid, "read", None)


def to_inbound(channel: ChannelName, event: Messaging) -> Inbound | None:
    """What the customer said (a message or a tapped button), or None for what gets no
    answer."""
    media: Media | None = None
    if event.message is not None:
        key, text = event.message.mid, event.message.text
        if event.message.attachments:
            media, said = _attachment(event.message.attachments[0])
            text = text or said
    elif event.postback is not None:
        postback = event.postback
        key = postback.mid or f"postback:{event.sender.id}:{event.timestamp}"
        text = postback.title or postback.payload
    else:
        return None
    if not text.strip() or not key or not event.sender.id:
        return None
    return Inbound(
        channel=channel,
        user=event.sender.id,
        key=key,
        text=text,
        at=event.timestamp / 1000 if event.timestamp else time.time(),
        media=media,
    )


def _attachment(attachment: Attachment) -> tuple[Media | None, str]:
    """The attachment as media to fetch (its download URL as the reference) and its text."""
    payload = attachment.payload
    kind = MEDIA_KINDS.get(attachment.type)
    if payload.sticker_id is not None:  # a sticker comes as an image with its id
        kind = "sticker"
    if kind is not None and payload.url:
        media = Media(kind=kind, ref=payload.url)
        return media, placeholder(media)
    if attachment.type == "fallback":  # a shared link
        return None, " ".join(p for p in (payload.title, payload.url) if p)
    return None, ""
