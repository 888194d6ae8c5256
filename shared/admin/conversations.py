"""The console's conversations: the inbox (filters, search, paging), one conversation with its
messages and its order, and a person of the shop answering: a reply through the customer's
channel, take over, release to the bot, mark read.

A reply is stored before it is sent (``conversations.add_operator_reply``), so a failed send
loses nothing: the message stays, its delivery "failed", and the console is told 502
``channel_error``. A web conversation's reply is only stored: the widget polls its history while
the conversation is with a person. Every write is audited, never with the text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import conversations, crm, events
from shared.admin import audit
from shared.admin.auth import Operator, operator_of
from shared.admin.exceptions import UnknownRecordError, WindowClosedError
from shared.cards import author, payment_json, product_card
from shared.exceptions import (
    ChannelError,
    ConfigError,
    InvalidInputError,
    InvalidKeyError,
    UnknownSessionError,
)
from shared.http import HTTPFunction, Request, Response, json_response, parse_model
from shared.ids import new_sortable_id
from shared.models import Channel, Conversation, Customer, Delivery, Lead, Message, Shop
from shared.store import Store
from shared.store.base import cursor_after

if TYPE_CHECKING:
    from shared.app import App
    from shared.chat import HistoryMessage

PAGE_SIZE = 50  # conversations a listing answers
SCAN_PAGE = 100  # conversations read from the store at a time
# Conversations a listing examines at most; with filters that few match it answers fewer than
# PAGE_SIZE and a cursor to carry on from there (a request stays short).
SCAN_LIMIT = 1000
MESSAGES_SHOWN = 100  # a conversation's newest messages in its detail
WINDOW_SECONDS = 24 * 3600.0  # WhatsApp's customer-service window after the customer's message
SEARCH_CHARS = 100
CHANNELS: tuple[Channel, ...] = get_args(Channel)
STATES = ("bot", "human")
YES = ("1", "true", "yes")


class _ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4096)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        text = text.strip()
        if not text:
            raise ValueError("write the reply")
        return text


@dataclass(frozen=True)
class Filters:
    """The inbox's filters: channel and state are the store query's, the rest read each
    conversation."""

    channel: str | None = None
    state: str | None = None
    needs_human: bool = False
    unread: bool = False
    q: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filters:
        channel, state = query.get("channel") or None, query.get("state") or None
        if channel is not None and channel not in CHANNELS:
            raise InvalidInputError(f"channel: one of {', '.join(CHANNELS)}")
        if state is not None and state not in STATES:
            raise InvalidInputError(f"state: one of {', '.join(STATES)}")
        q = " ".join(query.get("q", "").split())
        if len(q) > SEARCH_CHARS:
            raise InvalidInputError(f"q: at most {SEARCH_CHARS} characters")
        return cls(
            channel=channel,
            state=state,
            needs_human=query.get("needs_human", "").lower() in YES,
            unread=query.get("unread", "").lower() in YES,
            q=q,
        )

    def where(self) -> dict[str, str]:
        return {k: v for k, v in (("channel", self.channel), ("state", self.state)) if v}

    def keeps(self, conversation: Conversation, customer: Customer | None) -> bool:
        if self.needs_human and not needs_human(conversation):
            return False
        if self.unread and not unread(conversation):
            return False
        return not self.q or _mentions(conversation, customer, self.q)


@dataclass(frozen=True)
class Window:
    """Whether free text may reach the customer now (WhatsApp's 24-hour window; always for the
    other channels), until when, and the template that goes instead once it is closed."""

    open: bool
    closes_at: float | None
    template: str | None

    @classmethod
    def of(cls, conversation: Conversation, shop: Shop, now: float) -> Window:
        if conversation.channel != "whatsapp":
            return cls(True, None, None)
        template = shop.whatsapp_template.name if shop.whatsapp_template is not None else None
        wrote = conversation.last_inbound_at
        closes_at = wrote + WINDOW_SECONDS if wrote is not None else None
        return cls(closes_at is not None and now < closes_at, closes_at, template)


def needs_human(conversation: Conversation) -> bool:
    """With the shop, and nobody of the shop has answered since it was handed over."""
    if conversation.state != "human":
        return False
    replied = conversation.operator_replied_at
    return replied is None or replied < (conversation.handoff_at or 0.0)


def unread(conversation: Conversation) -> bool:
    """The customer wrote after an operator last read the conversation."""
    wrote = conversation.last_inbound_at
    return wrote is not None and wrote > (conversation.operator_read_at or 0.0)


def _mentions(conversation: Conversation, customer: Customer | None, q: str) -> bool:
    """``q`` in the customer's name or phone, or in one of the conversation's recent messages
    (accents and case aside)."""
    from shared.catalog.retrieval import fold

    wanted = fold(q)
    digits = "".join(ch for ch in q if ch.isdigit())
    if customer is not None:
        if wanted in fold(customer.name):
            return True
        if len(digits) >= 3 and customer.phone and digits in customer.phone:
            return True
    return any(wanted in fold(m.text) for m in conversation.recent)


# --- JSON ---------------------------------------------------------------------------------------


def summary_json(conversation: Conversation, customer: Customer | None) -> dict[str, Any]:
    last = conversation.recent[-1] if conversation.recent else None
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "state": conversation.state,
        "customer": (
            {"id": customer.id, "name": customer.name, "phone": customer.phone}
            if customer is not None
            else None
        ),
        "last": (
            {"role": last.role, "author": author(last), "text": last.text, "at": last.at}
            if last is not None
            else None
        ),
        "updated_at": conversation.updated_at,
        "unread": unread(conversation),
        "needs_human": needs_human(conversation),
        "handoff_reason": conversation.handoff_reason,
        "handoff_at": conversation.handoff_at,
    }


def message_json(entry: HistoryMessage) -> dict[str, Any]:
    message = entry.message
    return {
        "id": message.id,
        "role": message.role,
        "author": author(message),
        "operator": message.operator,
        "text": message.text,
        "at": message.at,
        "products": [product_card(product, variant) for product, variant in entry.cards],
        "payment": payment_json(message.payment) if message.payment is not None else None,
        "delivery": message.delivery,
        "media_kind": message.media.kind if message.media is not None else None,
    }


# --- reading ------------------------------------------------------------------------------------


def _customers(store: Store, shop: str, found: Sequence[Conversation]) -> dict[str, Customer]:
    ids = sorted({c.customer_id for c in found if c.customer_id})
    docs = store.get_many(shop, crm.CUSTOMERS, ids) if ids else {}
    return {doc_id: Customer.from_doc(doc) for doc_id, doc in docs.items()}


def listing(
    store: Store, shop: str, filters: Filters, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the shop's conversations that pass ``filters``, latest activity first, and
    the cursor of the next page (None at the end)."""
    found: list[dict[str, Any]] = []
    examined = 0
    while True:
        try:
            page = store.query(
                shop,
                conversations.CONVERSATIONS,
                where=filters.where(),
                order_by="updated_at",
                descending=True,
                limit=SCAN_PAGE,
                cursor=cursor,
            )
        except InvalidKeyError:
            raise InvalidInputError("cursor: not one a listing gave") from None
        read = [Conversation.from_doc(doc) for doc in page.items]
        customers = _customers(store, shop, read)
        for doc, conversation in zip(page.items, read, strict=True):
            examined += 1
            customer = customers.get(conversation.customer_id or "")
            if filters.keeps(conversation, customer):
                found.append(summary_json(conversation, customer))
            if len(found) == PAGE_SIZE:
                last_of_all = doc is page.items[-1] and page.cursor is None
                return found, None if last_of_all else cursor_after(doc, "updated_at")
        cursor = page.cursor
        if cursor is None or examined >= SCAN_LIMIT:
            return found, cursor


def _order_of(store: Store, shop: str, conversation_id: str) -> Lead | None:
    """The conversation's latest order, if it has one."""
    docs = store.scan(shop, crm.LEADS, where={"conversation_id": conversation_id})
    orders = [Lead.from_doc(doc) for doc in docs]
    return max(orders, key=lambda o: o.created_at, default=None)


@contextmanager
def _known() -> Iterator[None]:
    """A conversation not in the operator's shop is a 404, as one that never was."""
    try:
        yield
    except (UnknownSessionError, InvalidKeyError):  # an id no conversation could have as well
        raise UnknownRecordError("no such conversation") from None


def _conversation(store: Store, shop: str, conversation_id: str) -> Conversation:
    with _known():
        found = conversations.get(store, shop, conversation_id)
    if found is None:
        raise UnknownRecordError("no such conversation")
    return found


# --- sending ------------------------------------------------------------------------------------


def _send(
    app: App, shop: Shop, conversation: Conversation, reply: Message, window: Window
) -> Literal["sent", "template"]:
    """Send the stored ``reply`` through the conversation's channel and record its delivery:
    free text inside the window (part by part, as the channel's limit wants), else the shop's
    template. A ChannelError leaves the reply "failed" (with the parts that went) and is
    raised."""
    from shared.channels import open_channel
    from shared.channels.base import split_text
    from shared.channels.receive import record_sent

    store, sent = app.store, list[str]()
    try:
        if conversation.channel_user is None:
            raise ChannelError(f"{conversation.channel}: no address to send to", retryable=False)
        try:
            channel = open_channel(app, shop, conversation.channel).within_window(
                conversation.last_inbound_at, time.time(), human=True
            )
        except ConfigError as exc:  # names the settings missing, never their values
            raise ChannelError(str(exc), retryable=False) from None
        to, template = conversation.channel_user, shop.whatsapp_template
        delivery: Delivery = "accepted"
        if not window.open:  # WhatsApp after 24 hours: the template (the caller checked one is set)
            sent.append(channel.send_marketing(to, None, template).id)
            delivery = "template"
        for text in split_text(channel.render(reply.text), channel.text_limit):
            if delivery == "template":
                break
            result = channel.send_marketing(to, text, template)
            sent.append(result.id)
            if result.template:  # WhatsApp said the window had closed after all
                delivery = "template"
            else:
                record_sent(store, shop.id, channel.name, result.id, conversation.id, reply.id)
        conversations.set_delivery(store, shop.id, conversation.id, reply.id, delivery, None, sent)
        return "template" if delivery == "template" else "sent"
    except ChannelError as error:
        conversations.set_delivery(
            store, shop.id, conversation.id, reply.id, "failed", error.code, sent
        )
        raise


# --- routes -------------------------------------------------------------------------------------


def _app() -> App:
    from shared.app import get_app

    return get_app()


def _changed(
    app: App,
    operator: Operator,
    action: str,
    conversation: Conversation,
    event: events.Kind | None = None,
) -> Response:
    """Audit ``action`` on ``conversation`` (and tell the live inbox of ``event``), answer its
    summary."""
    audit.record(app.store, operator.shop, operator, action, conversation.id)
    if event is not None:
        events.record(app.store, operator.shop, event, conversation_id=conversation.id)
    customer = crm.get_customer(app.store, operator.shop, conversation.customer_id)
    return json_response(200, {"conversation": summary_json(conversation, customer)})


def register(api: HTTPFunction) -> None:
    @api.route("/conversations", "GET")
    def inbox(request: Request) -> Response:
        shop = operator_of(request).shop
        filters = Filters.of(request.query)
        found, cursor = listing(_app().store, shop, filters, request.query.get("cursor") or None)
        return json_response(200, {"conversations": found, "cursor": cursor})

    @api.route("/conversations/{id}", "GET")
    def detail(request: Request) -> Response:
        from shared.chat import with_cards
        from shared.orders import order_json

        operator = operator_of(request)
        app = _app()
        shop = app.shops.get(operator.shop)
        conversation = _conversation(app.store, shop.id, request.params["id"])
        latest = conversations.latest_messages(app.store, shop.id, conversation.id, MESSAGES_SHOWN)
        order = _order_of(app.store, shop.id, conversation.id)
        window = Window.of(conversation, shop, time.time())
        customer = crm.get_customer(app.store, shop.id, conversation.customer_id)
        return json_response(
            200,
            {
                "conversation": summary_json(conversation, customer),
                "messages": [message_json(m) for m in with_cards(app.store, shop.id, latest)],
                "order": order_json(order) if order is not None else None,
                "window": {
                    "open": window.open,
                    "closes_at": window.closes_at,
                    "template": window.template,
                },
            },
        )

    @api.route("/conversations/{id}/reply", "POST")
    def reply(request: Request) -> Response:
        from shared.chat import HistoryMessage

        operator = operator_of(request, write=True)
        text = parse_model(request, _ReplyBody).text
        app, now = _app(), time.time()
        shop = app.shops.get(operator.shop)
        conversation = _conversation(app.store, shop.id, request.params["id"])
        window = Window.of(conversation, shop, now)
        if not window.open and window.template is None:
            raise WindowClosedError(
                "the customer last wrote more than 24 hours ago and the shop has no WhatsApp"
                " template: set one in the shop's settings, or wait for the customer to write"
            )
        answer = Message(
            id=new_sortable_id(), role="assistant", text=text, at=now, operator=operator.email
        )
        with _known():
            conversations.add_operator_reply(app.store, shop.id, conversation.id, answer)

        def audited(sent: str) -> None:
            details = {"message": answer.id, "channel": conversation.channel, "sent": sent}
            audit.record(
                app.store, shop.id, operator, "conversation.reply", conversation.id, details
            )
            events.record(
                app.store,
                shop.id,
                "operator_reply",
                conversation_id=conversation.id,
                message=answer.id,
                channel=conversation.channel,
                sent=sent,
            )

        try:
            sent = (
                "stored"
                if conversation.channel == "web"
                else _send(app, shop, conversation, answer, window)
            )
        except ChannelError:
            audited("failed")
            raise
        audited(sent)
        stored = conversations.message(app.store, shop.id, conversation.id, answer.id) or answer
        return json_response(
            200, {"message": message_json(HistoryMessage(stored, [])), "sent": sent}
        )

    @api.route("/conversations/{id}/takeover", "POST")
    def takeover(request: Request) -> Response:
        operator = operator_of(request, write=True)
        app = _app()
        with _known():
            taken = conversations.take_over(
                app.store, operator.shop, request.params["id"], time.time()
            )
        return _changed(app, operator, "conversation.takeover", taken, "takeover")

    @api.route("/conversations/{id}/release", "POST")
    def release(request: Request) -> Response:
        operator = operator_of(request, write=True)
        app = _app()
        with _known():
            released = conversations.release(app.store, operator.shop, request.params["id"])
        return _changed(app, operator, "conversation.release", released, "release")

    @api.route("/conversations/{id}/read", "POST")
    def read(request: Request) -> Response:
        operator = operator_of(request, write=True)
        app = _app()
        with _known():
            marked = conversations.mark_read(
                app.store, operator.shop, request.params["id"], time.time()
            )
        return _changed(app, operator, "conversation.read", marked)
