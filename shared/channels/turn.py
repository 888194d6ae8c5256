"""The worker's side of WhatsApp and Telegram: answer what a customer sent, then send it.

``handle`` (kind ``channel_turn``) runs for each queued message, one at a time per conversation:

1. A reply stored but not (fully) sent, because an earlier run failed while sending, is sent
   first, from the part where it stopped, without asking the model again.
2. The customer's messages added after the latest reply's ``reply_to`` are answered together
   (``unanswered``): when several arrive quickly, the first run answers them all and the
   others find nothing left to do.
3. Attachments are fetched: a voice note is transcribed when the provider can, an image goes to
   a vision model; what cannot be read gets a polite request for text. STOP/START typed alone
   get a fixed confirmation (the webhook already recorded the choice).
4. The reply is stored ("pending") before it is sent, part by part, each part recorded as it
   goes. A send that still fails after the sender's retries raises, so the queue delivers the
   item again (and at last moves it to the dead-letter list): nothing is lost, and a part goes
   twice only if the process dies between the API taking it and its record.

5. A reply to a voice note is then sent spoken too (``voice_notes``), or stays text.

Empty replies (the conversation is with a person) send nothing. A reply in a conversation the
assistant has just handed to a person queues a notification to the shop's operator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared import conversations, crm
from shared.channels import open_channel, operators
from shared.channels.base import (
    IMAGE_TYPES,
    Channel,
    Choice,
    Fetched,
    Link,
    shorten,
    split_text,
)
from shared.channels.receive import placeholder, record_sent
from shared.channels.voice_notes import answers_voice, send_voice_note
from shared.chat import TurnResult, detect_language, result_of
from shared.exceptions import ChannelError, LLMError
from shared.llm import LLM, ChatMessage, Image
from shared.log import log_event
from shared.marketing import confirmation, marketing_keyword
from shared.models import Conversation, Delivery, Media, Message, Shop
from shared.money import format_price
from shared.queue.base import WorkItem
from shared.store.idempotency import Idempotency

if TYPE_CHECKING:
    from shared.app import App

AUDIO_TYPES = frozenset(
    {"audio/ogg", "audio/opus", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr", "audio/wav"}
)
QUOTED = 3  # customer messages quoted to the operator
TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "greeting": "Bonjour",
        "ask_text": (
            "Je ne peux pas lire ce type de message. Pouvez-vous m'écrire votre demande ?"
        ),
        "choices": "Produits",
        "pay": "Payer",
        "view": "Voir",
        "handoff": (
            "{shop} : un client demande à parler à quelqu'un.\n"
            "Client : {who}\nRaison : {reason}\nSes derniers messages :\n{said}\n\n"
            "Quand c'est réglé, rendez la conversation à l'assistant : {release}"
        ),
    },
    "en": {
        "greeting": "Hello",
        "ask_text": "I can't read this kind of message. Could you write your request?",
        "choices": "Products",
        "pay": "Pay",
        "view": "View",
        "handoff": (
            "{shop}: a customer asks for a person.\n"
            "Customer: {who}\nReason: {reason}\nTheir last messages:\n{said}\n\n"
            "When it is settled, give the conversation back to the assistant: {release}"
        ),
    },
}


def handle(app: App, item: WorkItem) -> None:
    shop = app.shops.get(item.shop)
    loaded = conversations.load(app.store, shop.id, str(item.payload["conversation"]))
    if loaded is None or loaded[0].channel_user is None:
        log_event("channel_turn_skipped", shop=shop.id, reason="no_conversation")
        return
    conversation, version = loaded
    channel = open_channel(app, shop, conversation.channel)
    replies = [m for m in conversation.recent if m.role == "assistant"]
    latest = max(replies, key=lambda m: m.id, default=None)
    if latest is not None:
        try:
            send_reply(app, shop, conversation, channel, latest.id)
        except ChannelError as error:
            # This item's own reply raises on every attempt (its retries, then the dead-letter
            # list); a reply an earlier item could never send must not block what came since.
            if error.retryable or item.attempt > 1:
                raise
            conversations.set_delivery(
                app.store, shop.id, conversation.id, latest.id, "failed", error.code
            )
            log_event("channel_reply_abandoned", channel=channel.name, shop=shop.id)
    pending = unanswered(conversation)
    if not pending:
        return  # answered together with an earlier message
    result = _answer(app, shop, conversation, version, channel, pending)
    if result.reply_id is None:
        return  # the conversation is with the shop: nothing to send
    lang = result.lang or detect_language(result.reply, shop)
    # The products the reply names, as choices.
    view = TEXTS[_lang(lang)]["view"]
    choices = [
        Choice(
            f"product:{p.id}",
            p.title,
            format_price(p.price, p.currency, lang),
            image=p.image,
            link=Link(p.url, view) if p.url else None,
        )
        for p in result.products
    ]
    label = TEXTS[_lang(lang)]["choices"]
    send_reply(app, shop, result.conversation, channel, result.reply_id, choices, label)
    if answers_voice(pending):
        send_voice_note(app, shop, result.conversation, channel, result.reply_id, lang)


def unanswered(conversation: Conversation) -> list[Message]:
    """The customer's messages after the last one a reply answered, in the order they were
    added to ``recent``.

    A reply answers its ``reply_to`` and every message added before it (they were all pending
    when its turn began). Positions, not ids, say what came before: a message's id is taken
    before it is added, so messages of a quick burst, stored by concurrent deliveries, can be
    added out of id order, and comparing ids would answer one of them a second time.
    """
    recent = conversation.recent
    position = {m.id: index for index, m in enumerate(recent)}
    # A reply_to no longer on ``recent`` (only the last messages are kept) came before all of it.
    answered = max(
        (position.get(m.reply_to, -1) for m in recent if m.role == "assistant" and m.reply_to),
        default=-1,
    )
    return [m for m in recent[answered + 1 :] if m.role == "user"]


def _answer(
    app: App,
    shop: Shop,
    conversation: Conversation,
    version: int,
    channel: Channel,
    pending: list[Message],
) -> TurnResult:
    """Store the reply to ``pending``."""
    chat = app.chat
    lang = _lang(shop.languages[0] if shop.languages else "fr")
    if conversation.state == "human":  # respond keeps the assistant silent, and says so
        return result_of(chat.respond(shop, conversation, version, pending, stored_in_recent=True))
    _typing(channel, conversation, pending[-1])
    keywords = [marketing_keyword(m.text) if m.media is None else None for m in pending]
    if None not in keywords:
        text = confirmation(bool(keywords[-1]), lang)
        return chat.record_reply(shop, conversation, version, pending, text)
    llm = app.llm_for(shop)
    inputs, transcripts = _inputs(channel, llm, pending, TEXTS[lang]["greeting"])
    if transcripts:
        # What the voice notes said becomes their text, for the history and the next turns.
        conversation, version = conversations.replace_texts(
            app.store, shop.id, conversation.id, transcripts
        )
    if not inputs:
        return chat.record_reply(shop, conversation, version, pending, TEXTS[lang]["ask_text"])
    return result_of(
        chat.respond(shop, conversation, version, pending, stored_in_recent=True, inputs=inputs)
    )


def send_reply(
    app: App,
    shop: Shop,
    conversation: Conversation,
    channel: Channel,
    message_id: str,
    choices: Sequence[Choice] = (),
    label: str = "",
) -> None:
    """Send the stored reply ``message_id`` if it is still pending, from its first unsent part."""
    store = app.store
    message = conversations.message(store, shop.id, conversation.id, message_id)
    if message is None or message.delivery != "pending" or conversation.channel_user is None:
        return
    if conversation.state == "human":  # this reply handed the conversation to a person
        app.queue.send(
            WorkItem(
                kind="notify_operator",
                shop=shop.id,
                group=conversation.id,
                dedup_id=f"handoff:{message_id}",
                payload={"conversation": conversation.id, "reply": message_id},
            )
        )
    try:
        channel = channel.within_window(conversation.last_inbound_at, time.time(), human=False)
    except ChannelError as refused:  # Messenger's bot after 24 hours: why it never went
        conversations.set_delivery(
            store, shop.id, conversation.id, message_id, "failed", refused.code
        )
        log_event("channel_reply_refused", channel=channel.name, shop=shop.id, code=refused.code)
        return
    parts = split_text(channel.render(message.text), channel.text_limit)
    sent = list(message.external_ids or [])
    link = None
    if message.payment is not None:
        link = Link(message.payment.url, TEXTS[_lang(message.lang or "")]["pay"])
    for index in range(len(sent), len(parts)):
        last = index == len(parts) - 1
        result = channel.send(
            conversation.channel_user,
            parts[index],
            choices if last else (),
            label,
            link if last else None,
        )
        if not result.template:
            record_sent(store, shop.id, channel.name, result.id, conversation.id, message_id)
        sent.append(result.id)
        delivery: Delivery = "template" if result.template else "accepted" if last else "pending"
        conversations.set_delivery(
            store, shop.id, conversation.id, message_id, delivery, None, list(sent)
        )
        if result.template:  # outside the window: the template replaces the whole reply
            break
    log_event("channel_reply_sent", channel=channel.name, shop=shop.id, parts=len(sent))


def notify_operator(app: App, item: WorkItem) -> None:
    """Kind ``notify_operator``: tell the shop's operator a customer wants a person. Sent once
    per operator channel, whatever the number of deliveries."""
    shop = app.shops.get(item.shop)
    conversation = conversations.get(app.store, shop.id, str(item.payload["conversation"]))
    reply_id = str(item.payload["reply"])
    targets = operators(app.settings, shop)
    if conversation is None or not targets:
        log_event("handoff_not_notified", shop=shop.id)
        return
    for name, address in targets:
        with Idempotency(app.store).once(shop.id, f"notify:{reply_id}:{name}") as first:
            if first:
                text = _handoff_text(app, shop, conversation, reply_id, name)
                open_channel(app, shop, name).send(address, text)
                log_event("handoff_notified", shop=shop.id, channel=name)


def reengage(app: App, item: WorkItem) -> None:
    """Kind ``channel_reengage``: WhatsApp reported a reply undelivered because the customer
    last wrote more than 24 hours ago (131047): the shop's template goes instead."""
    from shared.channels.whatsapp.sender import WhatsAppChannel

    shop = app.shops.get(item.shop)
    conversation = conversations.get(app.store, shop.id, str(item.payload["conversation"]))
    message_id = str(item.payload["message"])
    if conversation is None or conversation.channel_user is None:
        return
    channel = open_channel(app, shop, "whatsapp")
    assert isinstance(channel, WhatsAppChannel)
    with Idempotency(app.store).once(shop.id, f"reengage:{message_id}") as first:
        if first:
            channel.send_template(conversation.channel_user)
            conversations.set_delivery(
                app.store, shop.id, conversation.id, message_id, "template", None
            )
            log_event("channel_template_sent", channel="whatsapp", shop=shop.id)


# --- the parts -------------------------------------------------------------------------------


def _inputs(
    channel: Channel, llm: LLM, pending: list[Message], greeting: str
) -> tuple[list[ChatMessage], dict[str, str]]:
    """``pending`` as the model reads it, and the transcripts of voice notes by message id."""
    inputs: list[ChatMessage] = []
    transcripts: dict[str, str] = {}
    for message in pending:
        media = message.media
        if media is None:
            # Telegram's /start opens the chat: the assistant greets as to a "hello".
            start = message.text.strip().startswith("/start")
            inputs.append(ChatMessage("user", greeting if start else message.text))
            continue
        caption = "" if message.text == placeholder(media) else message.text
        if media.kind in ("voice", "audio") and llm.supports_audio:
            audio = _fetch(channel, media, AUDIO_TYPES)
            words = _transcribe(llm, audio) if audio is not None else ""
            if words:
                transcripts[message.id] = f"🎤 {words}"
                inputs.append(ChatMessage("user", f"{caption}\n{words}".strip()))
                continue
        elif media.kind == "image" and llm.supports_images:
            image = _fetch(channel, media, IMAGE_TYPES)
            if image is not None:
                inputs.append(
                    ChatMessage("user", caption, images=(Image(image.mime_type, image.data),))
                )
                continue
        if caption:
            inputs.append(ChatMessage("user", caption))
    return inputs, transcripts


def _fetch(channel: Channel, media: Media, allowed: frozenset[str]) -> Fetched | None:
    """The attachment, or None if it can never be had (type, size, gone); a failure that may
    pass (the API down) raises so the item is tried again."""
    try:
        return channel.fetch(media, allowed)
    except ChannelError as error:
        if error.retryable:
            raise
        log_event("channel_media_refused", channel=channel.name, kind=media.kind)
        return None


def _transcribe(llm: LLM, audio: Fetched) -> str:
    try:
        return llm.transcribe(audio.data, audio.mime_type)
    except LLMError as error:
        log_event("transcription_failed", error_type=type(error).__name__)
        return ""


def _typing(channel: Channel, conversation: Conversation, message: Message) -> None:
    """Read receipt and typing indicator: nice to have, never worth failing the turn for."""
    if conversation.channel_user is None or not message.external_ids:
        return
    try:
        channel.typing(conversation.channel_user, message.external_ids[0])
    except ChannelError as error:
        log_event("channel_typing_failed", channel=channel.name, code=error.code)


def _handoff_text(
    app: App, shop: Shop, conversation: Conversation, reply_id: str, operator_channel: str
) -> str:
    lang = _lang(shop.languages[0] if shop.languages else "fr")
    customer = crm.get_customer(app.store, shop.id, conversation.customer_id)
    who = (customer.name if customer is not None else "") or "?"
    if conversation.channel == "whatsapp" and conversation.channel_user:
        who += f" (WhatsApp https://wa.me/{conversation.channel_user})"
    elif customer is not None and customer.phone:
        who += f" ({customer.phone})"
    # What the reply answered: the messages up to its reply_to by their place on ``recent``, as
    # in ``unanswered`` (ids can be out of order); one no longer on ``recent`` came before it.
    recent = conversation.recent
    reply = next((m for m in recent if m.id == reply_id), None)
    asked = reply.reply_to if reply is not None and reply.reply_to else reply_id
    end = next((i + 1 for i, m in enumerate(recent) if m.id == asked), 0)
    said = [m for m in recent[:end] if m.role == "user"][-QUOTED:]
    release = (
        f"/release {conversation.id}"
        if operator_channel == "telegram"
        else f"python -m shared release {conversation.id} --shop {shop.id}"
    )
    return TEXTS[lang]["handoff"].format(
        shop=shop.name,
        who=who,
        reason=conversation.handoff_reason or "-",
        said="\n".join(f"« {shorten(m.text, 300)} »" for m in said) or "-",
        release=release,
    )


def _lang(lang: str) -> str:
    return lang if lang in TEXTS else "en"
