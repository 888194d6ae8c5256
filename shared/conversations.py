"""Conversations: where they and their messages are stored, and every change made to them.

A conversation is one document (``conversations/{id}``) carrying its state and its ``recent``
messages (what the next turn reads, with the document), and a collection of every message
(``conversations/{id}/messages``). Every change is a conditional write through
``shared.models.mutate``, re-applied onto the stored document when another writer got in first:
a chat turn, a channel delivery, a tool's handoff and an operator's release can all run at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, Literal

from shared import events
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidKeyError,
    NotFoundError,
    PreconditionFailedError,
    StoreUnavailableError,
    UnknownSessionError,
)
from shared.ids import is_session_id, new_session_id
from shared.models import Channel, Conversation, Delivery, Message, mutate
from shared.store import Doc, Store
from shared.store.base import check_id, cursor_after

CONVERSATIONS = "conversations"
RECENT_KEPT = 20  # messages kept on the conversation document for the next turn's context
# What a turn may change on its conversation (tools hand off, link a customer; a failure flags;
# a handoff nobody answered comes back).
TURN_FIELDS = (
    "state",
    "handoff_reason",
    "handoff_at",
    "release_reason",
    "customer_id",
    "pending_retry",
)
# An order or a reply this soon after a campaign's message is credited to the campaign.
ATTRIBUTION_SECONDS = 7 * 86400.0
# A delivery only moves forward: a late "delivered" never undoes "read".
DELIVERY_RANK = {"pending": 0, "accepted": 1, "sent": 2, "delivered": 3, "read": 4, "failed": 5}


def messages_of(conversation_id: str) -> str:
    """The collection of a conversation's messages."""
    return f"{CONVERSATIONS}/{conversation_id}/messages"


# --- reading ---------------------------------------------------------------------------------


def load(store: Store, shop: str, conversation_id: str) -> tuple[Conversation, int] | None:
    """The conversation and its version, or None if there is none."""
    doc = store.get(shop, CONVERSATIONS, conversation_id)
    return (Conversation.from_doc(doc), doc.version) if doc is not None else None


def get(store: Store, shop: str, conversation_id: str) -> Conversation | None:
    loaded = load(store, shop, conversation_id)
    return loaded[0] if loaded is not None else None


def message(store: Store, shop: str, conversation_id: str, message_id: str) -> Message | None:
    doc = store.get(shop, messages_of(conversation_id), message_id)
    return Message.from_doc(doc) if doc is not None else None


def latest_messages(store: Store, shop: str, conversation_id: str, limit: int) -> list[Message]:
    """The conversation's last ``limit`` messages, oldest first."""
    page = store.query(shop, messages_of(conversation_id), descending=True, limit=limit)
    return [Message.from_doc(d) for d in reversed(page.items)]


def messages_after(
    store: Store, shop: str, conversation_id: str, after: str, limit: int
) -> list[Message]:
    """The conversation's first ``limit`` messages after the message ``after`` (by id, which
    is time order), oldest first. Raises InvalidInputError for an id no message could have."""
    try:
        check_id(after)
    except InvalidKeyError:
        raise InvalidInputError("'after' is not a message id") from None
    cursor = cursor_after(Doc(after, {}, 0), None)  # resume after it, as a page would
    page = store.query(shop, messages_of(conversation_id), limit=limit, cursor=cursor)
    return [Message.from_doc(d) for d in page.items]


def answering_campaign(conversation: Conversation, at: float) -> str | None:
    """The campaign whose message the conversation is answering at ``at``, if any."""
    touch = conversation.campaign
    return touch.campaign_id if touch and 0 <= at - touch.at <= ATTRIBUTION_SECONDS else None


# --- creating and appending ------------------------------------------------------------------


def create(store: Store, shop: str, conversation: Conversation) -> int:
    """Store a new conversation; its version. Raises AlreadyExistsError if the id is taken."""
    return store.create(shop, CONVERSATIONS, conversation.id, conversation.to_doc()).version


def open_session(
    store: Store, shop: str, session_id: str | None, channel: Channel, now: float
) -> tuple[Conversation, int]:
    """The ``channel`` conversation ``session_id`` names, else a new one under a fresh id."""
    if session_id is not None and is_session_id(session_id):
        loaded = load(store, shop, session_id)
        if loaded is not None and loaded[0].channel == channel:
            return loaded
    # Unknown or malformed ids get a fresh random one: a client cannot choose its session id.
    while True:
        conversation = Conversation(
            id=new_session_id(), channel=channel, created_at=now, updated_at=now
        )
        try:
            return conversation, create(store, shop, conversation)
        except AlreadyExistsError:  # 192 random bits: practically never
            continue


def add_message(
    store: Store,
    shop: str,
    conversation_id: str,
    message: Message,
    *,
    channel: Channel | None = None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Store ``message`` among the conversation's messages (not yet on ``recent``); its event
    names the ``channel`` and, for a reply, the ``tools`` the model called."""
    store.put(shop, messages_of(conversation_id), message.id, message.to_doc())
    events.message(store, shop, conversation_id, message, channel, tools)


def add_message_once(
    store: Store,
    shop: str,
    conversation_id: str,
    message: Message,
    *,
    channel: Channel | None = None,
) -> None:
    """Store ``message`` unless a message with its id is stored already (kept as it is: it may
    have changed since)."""
    with suppress(AlreadyExistsError):
        store.create(shop, messages_of(conversation_id), message.id, message.to_doc())
        events.message(store, shop, conversation_id, message, channel)


def appended(recent: list[Message], messages: list[Message]) -> list[Message]:
    """``recent`` with ``messages`` added, bounded to the newest RECENT_KEPT."""
    return [*recent, *messages][-RECENT_KEPT:]


# --- changing --------------------------------------------------------------------------------


def update(
    store: Store, shop: str, conversation_id: str, change: Callable[[Conversation], Conversation]
) -> Conversation:
    """Apply ``change`` to the stored conversation (see ``shared.models.mutate``)."""
    try:
        return mutate(store, shop, CONVERSATIONS, conversation_id, Conversation, change)[0]
    except NotFoundError as exc:
        raise UnknownSessionError("unknown session") from exc


def save_turn(
    store: Store,
    shop: str,
    loaded: Conversation,
    current: Conversation,
    version: int,
    new_messages: list[Message],
    inbound_at: float,
) -> tuple[Conversation, int]:
    """Append a turn's messages to the conversation's recent list and apply what the turn
    changed (``current`` against ``loaded``, at ``version``), without undoing a concurrent
    turn's changes: on a version conflict the same changes go onto the stored conversation.
    Returns the conversation as saved and its version."""
    changes = {
        k: getattr(current, k) for k in TURN_FIELDS if getattr(current, k) != getattr(loaded, k)
    }

    def apply(base: Conversation) -> Conversation:
        return base.model_copy(
            update={
                **changes,
                "recent": appended(base.recent, new_messages),
                # Always a change: a turn's save is written even when nothing else changed.
                "updated_at": time.time(),
                "last_inbound_at": max(inbound_at, base.last_inbound_at or 0.0),
                # The consolidator's mark: the first unconsolidated turn's time, kept until done.
                "memory_pending_at": base.memory_pending_at
                or (time.time() if new_messages else None),
            }
        )

    try:
        return mutate(
            store, shop, CONVERSATIONS, loaded.id, Conversation, apply, start=(loaded, version)
        )
    except PreconditionFailedError as exc:
        raise StoreUnavailableError("the conversation kept changing") from exc


def set_state(
    store: Store, shop: str, conversation_id: str, state: Literal["bot", "human"], reason: str = ""
) -> Conversation:
    """Hand a conversation to the shop ("human") or back to the assistant ("bot", a release)."""
    return update(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(update={"state": state, "handoff_reason": reason}),
    )


def hand_off(store: Store, shop: str, conversation_id: str, reason: str, at: float) -> Conversation:
    """The assistant hands the conversation to the shop at ``at``: the start of the wait before
    it takes the conversation back (HANDOFF_RELEASE_MINUTES)."""
    handed = update(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(
            update={"state": "human", "handoff_reason": reason, "handoff_at": at}
        ),
    )
    reason = events.without_phones(reason)
    events.record(store, shop, "handoff", conversation_id=conversation_id, at=at, reason=reason)
    return handed


def replace_texts(
    store: Store, shop: str, conversation_id: str, texts: dict[str, str]
) -> tuple[Conversation, int]:
    """Give the messages of ``texts`` (by id) their new text, stored and on ``recent``; the
    conversation as saved and its version."""
    for message_id, text in texts.items():
        update_message(store, shop, conversation_id, message_id, {"text": text})

    def rewrite(c: Conversation) -> Conversation:
        recent = [
            m.model_copy(update={"text": texts[m.id]}) if m.id in texts else m for m in c.recent
        ]
        return c.model_copy(update={"recent": recent})

    try:
        return mutate(store, shop, CONVERSATIONS, conversation_id, Conversation, rewrite)
    except NotFoundError as exc:
        raise UnknownSessionError("unknown session") from exc


def update_message(
    store: Store, shop: str, conversation_id: str, message_id: str, update: dict[str, Any]
) -> Message:
    """Change the fields ``update`` names on a stored message."""
    return mutate(
        store,
        shop,
        messages_of(conversation_id),
        message_id,
        Message,
        lambda m: m.model_copy(update=update),
    )[0]


def set_delivery(
    store: Store,
    shop: str,
    conversation_id: str,
    message_id: str,
    delivery: Delivery,
    code: int | None,
    external_ids: list[str] | None = None,
) -> None:
    """Where the sending of a reply stands (the worker's), with the channel ids of its parts."""
    update: dict[str, Any] = {"delivery": delivery, "error_code": code}
    if external_ids is not None:
        update["external_ids"] = external_ids
    update_message(store, shop, conversation_id, message_id, update)


def advance_delivery(
    store: Store,
    shop: str,
    conversation_id: str,
    message_id: str,
    status: str,
    error_code: int | None,
) -> Message:
    """Move a sent reply's delivery forward to a status the channel reported (one of
    DELIVERY_RANK): statuses can arrive out of order, and "read" is never undone by a late
    "delivered". A reply still being sent (or replaced by a template) is the worker's to
    change."""

    def advance(message: Message) -> Message:
        if message.delivery in (None, "pending", "template"):
            return message
        if DELIVERY_RANK[status] <= DELIVERY_RANK.get(message.delivery or "pending", 0):
            return message
        return message.model_copy(update={"delivery": status, "error_code": error_code})

    return mutate(store, shop, messages_of(conversation_id), message_id, Message, advance)[0]


# --- the shop's operators (the console) --------------------------------------------------------


def add_operator_reply(
    store: Store, shop: str, conversation_id: str, reply: Message
) -> Conversation:
    """Store an operator's ``reply`` (create-only under its new id, then on ``recent``) and take
    the conversation over: state human, answered at the reply's time (the bot's wait before it
    takes a handoff back ends there), read up to it. Two operators replying at once both keep
    their message: the conversation's change is re-applied onto the stored one."""
    if get(store, shop, conversation_id) is None:
        raise UnknownSessionError("unknown session")
    store.create(shop, messages_of(conversation_id), reply.id, reply.to_doc())

    def answered(c: Conversation) -> Conversation:
        return c.model_copy(
            update={
                "recent": appended(c.recent, [reply]),
                "state": "human",
                "handoff_at": _taken_at(c, reply.at),
                "operator_replied_at": max(reply.at, c.operator_replied_at or 0.0),
                "operator_read_at": max(reply.at, c.operator_read_at or 0.0),
            }
        )

    return update(store, shop, conversation_id, answered)


def take_over(store: Store, shop: str, conversation_id: str, at: float) -> Conversation:
    """An operator takes the conversation from the bot at ``at`` (its handoff time, unless it
    was already handed over: then the handoff's own time stays)."""
    return update(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(update={"state": "human", "handoff_at": _taken_at(c, at)}),
    )


def release(store: Store, shop: str, conversation_id: str) -> Conversation:
    """An operator gives the conversation back to the bot."""
    return update(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(
            update={"state": "bot", "handoff_reason": "", "release_reason": "operator"}
        ),
    )


def mark_read(store: Store, shop: str, conversation_id: str, at: float) -> Conversation:
    """An operator read the conversation up to ``at`` (never moved back by a late, older read)."""
    return update(
        store,
        shop,
        conversation_id,
        lambda c: c.model_copy(update={"operator_read_at": max(at, c.operator_read_at or 0.0)}),
    )


def _taken_at(conversation: Conversation, at: float) -> float | None:
    """The handoff time of ``conversation`` once a person has it: its own while it is with the
    shop already, else ``at`` (an older handoff's time would let the bot take it back at once)."""
    return (conversation.handoff_at or at) if conversation.state == "human" else at
