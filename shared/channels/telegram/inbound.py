"""Telegram's webhook: the secret Telegram sends back with every update
(``X-Telegram-Bot-Api-Secret-Token``, set with ``python -m shared telegram-webhook``), and a
verified update handled: private messages, edited messages and button taps are
stored and queued like WhatsApp's (``/start`` included: the worker greets); the shop operator's
``/release SESSION_ID`` gives a conversation back to the assistant.

Telegram lets a webhook's response carry one Bot API call: a button tap is answered there
(``answerCallbackQuery``, which stops the spinner on the customer's button) at no extra cost.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared import conversations
from shared.channels import operators
from shared.channels.base import IMAGE_TYPES
from shared.channels.exceptions import InvalidSecretError
from shared.channels.receive import Inbound, placeholder, receive, shop_for
from shared.channels.telegram.models import CallbackQuery, Message, Update
from shared.channels.webhook import Handled, Headers, Webhook, equal
from shared.exceptions import UnknownSessionError
from shared.ids import is_session_id
from shared.log import log_event
from shared.models import Media, MediaKind, Shop

if TYPE_CHECKING:
    from shared.app import App

RELEASED = {
    "fr": "La conversation est rendue à l'assistant.",
    "en": "The conversation is back with the assistant.",
}
UNKNOWN = {"fr": "Je ne trouve pas cette conversation.", "en": "I can't find that conversation."}


class TelegramWebhook(Webhook[Update]):
    update = Update

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        check_secret(header("x-telegram-bot-api-secret-token"), secret)

    def handle(self, app: App, update: Update, secret: str) -> Handled:
        """The update stored and queued; a button tap's ``answerCallbackQuery`` (or an operator
        command's reply) is the Bot API call the response carries."""
        shop = shop_for(app, "telegram", "")
        assert shop is not None  # the bot belongs to DEFAULT_SHOP
        query = update.callback_query
        tapped = {"method": "answerCallbackQuery", "callback_query_id": query.id} if query else None
        message = update.message or update.edited_message
        if message is not None and (release := _release_command(app, shop, message)) is not None:
            log_event("telegram_webhook", shop=shop.id, kind="operator_command")
            return Handled(shop.id, release)
        inbound = to_inbound(update)
        received = inbound is not None and receive(app, shop, inbound, secret) == "received"
        log_event("telegram_webhook", shop=shop.id, kind=update.kind, received=received)
        return Handled(shop.id, tapped)


def check_secret(given: str, secret: str) -> None:
    """The secret set with setWebhook, which Telegram sends back with every update."""
    if not equal(given, secret):
        raise InvalidSecretError("X-Telegram-Bot-Api-Secret-Token is wrong")


def to_inbound(update: Update) -> Inbound | None:
    """What the customer said, or None for what gets no answer (groups, bots, other kinds)."""
    if update.callback_query is not None:
        return _tap(update.update_id, update.callback_query)
    message = update.message or update.edited_message
    if message is None or message.chat.type != "private":
        return None
    if message.from_ is not None and message.from_.is_bot:
        return None
    media, text = _content(message)
    if not text.strip():
        return None
    sender = message.from_
    return Inbound(
        channel="telegram",
        user=str(message.chat.id),
        key=str(update.update_id),
        text=text,
        at=float(message.edit_date or message.date) or time.time(),
        media=media,
        name=" ".join(p for p in (sender.first_name, sender.last_name) if p) if sender else "",
    )


def _tap(update_id: int, query: CallbackQuery) -> Inbound | None:
    """A tapped button says what its label says (a product's title)."""
    chat = query.message.chat if query.message is not None else None
    if chat is not None and chat.type != "private":
        return None
    keyboard = query.message.reply_markup if query.message is not None else None
    label = next(
        (
            button.text
            for row in (keyboard.inline_keyboard if keyboard else [])
            for button in row
            if button.callback_data == query.data
        ),
        None,
    )
    text = label or query.data or ""
    if not text.strip():
        return None
    return Inbound(
        channel="telegram",
        user=str(chat.id if chat is not None else query.from_.id),
        key=str(update_id),
        text=text,
        at=time.time(),
        name=" ".join(p for p in (query.from_.first_name, query.from_.last_name) if p),
    )


def _content(message: Message) -> tuple[Media | None, str]:
    caption = message.caption or ""
    media: Media | None = None
    if message.photo:
        media = Media(kind="image", ref=message.photo[-1].file_id, mime_type="image/jpeg")
    elif message.voice is not None:
        media = Media(kind="voice", ref=message.voice.file_id, mime_type="audio/ogg")
    elif message.audio is not None:
        audio = message.audio
        media = Media(
            kind="audio",
            ref=audio.file_id,
            mime_type=audio.mime_type or "audio/mpeg",
            filename=audio.file_name,
        )
    elif (video := message.video or message.video_note) is not None:
        media = Media(kind="video", ref=video.file_id, mime_type=video.mime_type or "video/mp4")
    elif message.document is not None:
        document = message.document
        kind: MediaKind = "image" if document.mime_type in IMAGE_TYPES else "document"
        media = Media(
            kind=kind,
            ref=document.file_id,
            mime_type=document.mime_type,
            filename=document.file_name,
        )
    elif message.sticker is not None:
        media = Media(kind="sticker", ref=message.sticker.file_id, mime_type="image/webp")
    elif message.location is not None:
        return None, f"📍 ({message.location.latitude}, {message.location.longitude})"
    elif message.contact is not None:
        contact = message.contact
        name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        return None, f"👤 {name}: {contact.phone_number}"
    if media is not None:
        return media, caption or placeholder(media)
    return None, message.text or ""


def _release_command(app: App, shop: Shop, message: Message) -> dict[str, Any] | None:
    """``/release SESSION_ID`` from the shop operator's own chat: the bot answers again."""
    text = (message.text or "").strip()
    chat = str(message.chat.id)
    if not text.startswith("/release") or ("telegram", chat) not in operators(app.settings, shop):
        return None
    lang = shop.languages[0] if shop.languages else "fr"
    session_id = text.removeprefix("/release").strip()
    try:
        if not is_session_id(session_id):
            raise UnknownSessionError("not a session id")
        conversations.set_state(app.store, shop.id, session_id, "bot")
        reply = RELEASED.get(lang, RELEASED["en"])
    except UnknownSessionError:
        reply = UNKNOWN.get(lang, UNKNOWN["en"])
    return {"method": "sendMessage", "chat_id": message.chat.id, "text": reply}
