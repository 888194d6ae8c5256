"""The e-mail webhooks: two ways a received message arrives, one way it is handled.

- ``SesWebhook`` (``POST /webhooks/email/ses``): Amazon SES receives the mail and its receipt
  rule's SNS action posts it to an HTTP(S) subscription. The SNS signature is checked against
  SNS's certificate (``sns.py``), the topic against ``EMAIL_SNS_TOPIC_ARN`` (SNS signs every
  topic's messages, anyone's included); a ``SubscriptionConfirmation`` of that topic is
  confirmed by fetching its ``SubscribeURL``.
- ``EmailWebhook`` (``POST /webhooks/email/inbound``, the registry's): any forwarder posts
  ``{"mime": ..., "encoding": "utf8"|"base64"}`` with ``X-Email-Timestamp`` (Unix seconds) and
  ``X-Email-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body under
  EMAIL_INBOUND_SECRET>``; a timestamp more than ``TOLERANCE`` seconds away is refused, so a
  captured post cannot be replayed later (and one replayed sooner is a duplicate Message-ID).

Either way the message is parsed (``mime.py``), automatic mail (auto-replies, bounces, lists,
the shop's own address) is dropped to avoid mail loops, and the rest is stored and queued once
per Message-ID (``receive``) on the conversation of its thread: the thread's root Message-ID
keys it, and ``channel_user`` holds where the reply goes (``thread.ReplyTo``). The mailbox
belongs to DEFAULT_SHOP, as the Telegram bot does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared import jsonsafe
from shared.channels.email import mime, sns
from shared.channels.email.models import InboundMail, SesNotification, SnsMessage
from shared.channels.email.thread import ReplyTo, trimmed
from shared.channels.exceptions import (
    MalformedBodyError,
    MissingSignatureError,
    NotConfiguredError,
    SignatureError,
)
from shared.channels.receive import Inbound, receive
from shared.channels.webhook import MAX_DEPTH, Handled, Headers, Webhook, equal
from shared.exceptions import InvalidInputError
from shared.log import log_event

if TYPE_CHECKING:
    from shared.app import App

TOLERANCE = 300  # seconds between a generic post's timestamp and its arrival


class EmailWebhook(Webhook[InboundMail]):
    update = InboundMail

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        check_signature(body, header("x-email-timestamp"), header("x-email-signature"), secret)

    def handle(self, app: App, update: InboundMail, secret: str) -> Handled:
        if update.encoding == "base64":
            try:
                raw = base64.b64decode(update.mime, validate=True)
            except binascii.Error:
                raise MalformedBodyError("mime is not base64") from None
        else:
            raw = update.mime.encode("utf-8", "surrogateescape")
        return handle_mail(app, raw, time.time(), secret, "inbound")


def signature(body: bytes, timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def check_signature(
    body: bytes, timestamp: str, given: str, secret: str, now: float | None = None
) -> None:
    if not timestamp or not given:
        raise MissingSignatureError("X-Email-Timestamp and X-Email-Signature are required")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > TOLERANCE:
        raise SignatureError("X-Email-Timestamp is not within 5 minutes of now")
    if not equal(given, signature(body, timestamp, secret)):
        raise SignatureError("X-Email-Signature does not match the body")


class SesWebhook(Webhook[SnsMessage]):
    update = SnsMessage

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        try:
            message = SnsMessage.model_validate(jsonsafe.loads(body, max_depth=MAX_DEPTH))
        except (InvalidInputError, ValidationError):
            raise MissingSignatureError("not a signed SNS message") from None
        sns.VERIFIER.verify(message)

    def handle(self, app: App, update: SnsMessage, secret: str) -> Handled:
        topic = app.settings.email_sns_topic_arn
        if not topic:
            raise NotConfiguredError("EMAIL_SNS_TOPIC_ARN is not set on this server")
        if not equal(update.TopicArn, topic):
            raise SignatureError("the SNS topic is not this server's")
        shop = app.settings.default_shop
        if update.Type == "SubscriptionConfirmation" and update.SubscribeURL:
            sns.VERIFIER.fetch(sns.VERIFIER.check_url(update.SubscribeURL))
            log_event("email_webhook", shop=shop, kind="subscription_confirmed")
            return Handled(shop)
        if update.Type != "Notification":
            log_event("email_webhook", shop=shop, kind=update.Type.lower())
            return Handled(shop)
        raw = _ses_content(update.Message)
        if raw is None:
            log_event("email_webhook", shop=shop, kind="no_content")
            return Handled(shop)
        return handle_mail(app, raw, _sns_time(update.Timestamp), secret, "ses")


def _ses_content(message: str) -> bytes | None:
    """The raw message an SES receipt notification carries, or None (another notification, or
    an SNS action configured without content)."""
    try:
        notification = SesNotification.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None
    if notification.notificationType != "Received" or notification.content is None:
        return None
    if notification.receipt.action.encoding == "BASE64":
        try:
            return base64.b64decode(notification.content, validate=True)
        except binascii.Error:
            raise MalformedBodyError("the SES content is not base64") from None
    return notification.content.encode("utf-8", "surrogateescape")


def _sns_time(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def handle_mail(app: App, raw: bytes, at: float, secret: str, route: str) -> Handled:
    """Store and queue ``raw`` (see the module docstring)."""
    settings = app.settings
    shop = app.shops.get(settings.default_shop)
    inbound = to_inbound(mime.parse(raw), at, settings.email_address)
    received = inbound is not None and receive(app, shop, inbound, secret) == "received"
    log_event("email_webhook", shop=shop.id, kind=route, received=received)
    return Handled(shop.id)


def to_inbound(mail: mime.Mail, at: float, own_address: str | None) -> Inbound | None:
    """What the customer wrote, or None for what gets no answer (automatic mail, the shop's own
    address, nothing written)."""
    own = (own_address or "").lower()
    if mail.automatic or not mail.sender or mail.sender == own:
        return None
    text = mail.text or mail.subject
    if not text.strip():
        return None
    reply_to = ReplyTo(
        to=mail.sender,
        subject=mail.subject,
        in_reply_to=mail.message_id,
        references=trimmed([*mail.references, mail.message_id]),
    )
    return Inbound(
        channel="email",
        user=reply_to.encode(),
        key=mail.message_id,
        text=text,
        at=at,
        name=mail.name,
        thread=mail.root,
    )
