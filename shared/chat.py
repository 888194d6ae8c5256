"""A chat turn: conversation, retrieval, prompt, agent loop with tools, price guard, persistence.

The customer's message is written before any model call, so a model, tool or channel failure
after that point never loses it. A turn streams events (``delta``, ``replace``, ``done``); the
JSON API simply waits for ``done``.

Store operations on a typical turn: 2 rate-limit counters, 1 conversation read (it carries the
recent messages), 1 inbound write, 1 outbound write, 1 conversation write. The shop is cached
per warm instance for a minute; the catalogue index per catalogue version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, Literal

from shared import crm
from shared.agent import Agent, AgentEvent, AgentResult, Replace
from shared.catalog.retrieval import CatalogCache, fold
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidKeyError,
    LLMError,
    MessageTooLongError,
    PreconditionFailedError,
    QueueError,
    RateLimitedError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionError,
    UnknownShopError,
)
from shared.ids import is_session_id, new_session_id, new_sortable_id
from shared.llm import LLM, ChatMessage, TextDelta
from shared.log import log_event
from shared.models import Channel, Conversation, Customer, Message, Product, Shop
from shared.money import format_price, price_number
from shared.prompts import render
from shared.queue.base import WorkItem
from shared.rules import Retrieved
from shared.settings import Settings
from shared.store import Store
from shared.store.base import check_shop
from shared.tools import TOOLS
from shared.tools.base import TurnContext

HISTORY_LIMIT = 200
RECENT_KEPT = 20  # messages kept on the conversation document for the next turn's context
PRODUCTS_PER_TURN = 4
FAQ_PER_TURN = 2
SHOP_CACHE_SECONDS = 60.0  # a new catalogue version reaches a warm instance within a minute
SAVE_ATTEMPTS = 10
# What a turn may change on its conversation (tools hand off, link a customer; a failure flags;
# a handoff nobody answered comes back).
_TURN_FIELDS = (
    "state",
    "handoff_reason",
    "handoff_at",
    "release_reason",
    "customer_id",
    "pending_retry",
)
HOLDING_REPLY = {
    "fr": "Désolé, je rencontre un petit souci. Votre message est bien noté, je reviens vers vous.",
    "en": "Sorry, I'm having a small problem. Your message is saved and I'll get back to you.",
}
# Before the answer, when the assistant takes back a conversation the shop left unanswered.
RELEASED_NOTICE = {
    "fr": "Personne de la boutique n'a encore pu vous répondre, alors je reprends la main.",
    "en": "No one from the shop has been able to answer yet, so I'm back to help.",
}
NO_OPERATOR_REPLY = "no_operator_reply"
_FRENCH_HINTS = frozenset(
    """
    bonjour bonsoir salut je j vous tu est avez combien prix quel quelle quels livraison merci
    oui non des les une un pour avec sans votre mon ma mes acheter commander voudrais veux
    """.split()
)
_ENGLISH_HINTS = frozenset(
    """
    hello hi the is are do does have how much what which price delivery thanks yes no want
    would like buy order you your my
    """.split()
)


@dataclass(frozen=True)
class TurnResult:
    session_id: str
    reply: str
    products: list[Product]
    lead: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "reply": self.reply,
            "products": [product_card(p) for p in self.products],
            "lead": self.lead,
        }


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["delta", "replace", "done"]
    data: dict[str, Any]


def product_card(product: Product) -> dict[str, Any]:
    # Shopify's own variant id (numeric, from products.json) lets the widget add to the cart.
    variant = next((v for v in product.variants if v.available), product.variants[0])
    return {
        "id": product.id,
        "title": product.title,
        "price": price_number(product.price),
        "currency": product.currency,
        "url": product.url,
        "image": product.image,
        "variant_id": variant.id if variant.id.isdigit() else None,
    }


def detect_language(text: str, shop: Shop) -> str:
    words = set(fold(text).replace("'", " ").split())
    french, english = len(words & _FRENCH_HINTS), len(words & _ENGLISH_HINTS)
    if french != english:
        return "fr" if french > english else "en"
    return shop.languages[0] if shop.languages else "fr"


class ChatService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        llm_for: Callable[[Shop], LLM],
        *,
        enqueue: Callable[[WorkItem], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``enqueue`` hands work to the worker (telling the operator of a web handoff);
        ``clock`` is the time of the shop's hours and of handoffs (tests pass a frozen one)."""
        self.settings = settings
        self.store = store
        self.llm_for = llm_for
        self.enqueue = enqueue
        self.clock = clock
        self.catalog = CatalogCache(store)
        self._shops: dict[str, tuple[float, Shop]] = {}
        self._shops_lock = threading.Lock()
        self._over_limit: dict[tuple[str, str], float] = {}  # (scope, key) -> its window's end
        self._over_limit_lock = threading.Lock()

    def shop(self, shop_id: str | None) -> Shop:
        shop_id = shop_id or self.settings.default_shop
        now = time.monotonic()
        cached = self._shops.get(shop_id)
        if cached is not None and now - cached[0] < SHOP_CACHE_SECONDS:
            return cached[1]
        doc = self.store.get(shop_id, "shops", shop_id) if _valid_shop_id(shop_id) else None
        if doc is None:
            raise UnknownShopError(f"unknown shop {shop_id!r}")
        shop = Shop.from_doc(doc)
        with self._shops_lock:
            self._shops[shop_id] = (now, shop)
        return shop

    def check_rate(self, shop: Shop, session_id: str | None, client: str) -> None:
        """Fixed one-minute windows per client address and per session, counted in the store so
        every instance sees the same numbers. A client's count is one for every shop (kept in
        the default shop's scope): naming another shop does not buy more requests. A key found
        over its limit is remembered here until its window ends, so a client that keeps
        calling costs no further store writes on this instance."""
        now = time.time()
        window = int(now // 60)
        window_end = (window + 1) * 60.0
        client_key = (self.settings.default_shop, f"client:{_digest(client)}:{window}")
        checks = [(client_key, self.settings.client_rate_limit_per_minute)]
        if session_id:
            session_key = (shop.id, f"session:{_digest(session_id)}:{window}")
            checks.append((session_key, self.settings.rate_limit_per_minute))
        refused = RateLimitedError("too many requests, wait a moment", int(window_end - now) + 1)
        if any(key in self._over_limit for key, _ in checks):
            raise refused
        for key, limit in checks:
            scope, name = key
            count = self.store.increment(scope, "ratelimits", name, "n", expires_at=window_end + 60)
            if count > limit:
                with self._over_limit_lock:
                    # Keys carry their window, so entries of past windows are only dropped.
                    for stale in [k for k, end in self._over_limit.items() if end <= now]:
                        del self._over_limit[stale]
                    self._over_limit[key] = window_end
                raise refused

    def validate(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise InvalidInputError("message is empty")
        if len(text) > self.settings.max_message_chars:
            raise MessageTooLongError(f"message over {self.settings.max_message_chars} characters")
        return text

    def turn(
        self, shop: Shop, session_id: str | None, text: str, *, channel: Channel = "web"
    ) -> dict[str, Any]:
        """The whole turn at once: the reply as the JSON API returns it."""
        events = self.stream(shop, session_id, text, channel=channel)
        return next(e for e in events if e.kind == "done").data

    def stream(
        self, shop: Shop, session_id: str | None, text: str, *, channel: Channel = "web"
    ) -> Iterator[TurnEvent]:
        """A web turn: store the message, then answer it."""
        text = self.validate(text)
        now = self.clock()
        conversation, version = self._open_conversation(shop, session_id, channel, now)
        inbound = Message(id=new_sortable_id(), role="user", text=text, at=now)
        self.store.put(shop.id, _messages(conversation.id), inbound.id, inbound.to_doc())
        yield from self.respond(shop, conversation, version, [inbound], stored_in_recent=False)

    def respond(
        self,
        shop: Shop,
        conversation: Conversation,
        version: int,
        pending: list[Message],
        *,
        stored_in_recent: bool,
        inputs: list[ChatMessage] | None = None,
    ) -> Iterator[TurnEvent]:
        """Answer the customer's ``pending`` messages (already stored) in one reply.

        A channel worker calls this with every message that arrived since the last answer, so
        two quick messages get one coherent reply. ``stored_in_recent`` says whether they are
        already on the conversation's ``recent`` list (the webhooks put them there). ``inputs``
        are the pending messages as the model should read them when that differs from their
        stored text (a voice note transcribed, an image attached).

        While the conversation is with the shop ("human") the bot stays silent, unless nobody
        from the shop answered within HANDOFF_RELEASE_MINUTES of the handoff: then it takes the
        conversation back, says so, and answers.
        """
        inbound_at = pending[-1].at
        new_messages = [] if stored_in_recent else list(pending)
        preface = ""
        if conversation.state == "human":
            if not self._handoff_expired(conversation):
                self._save_conversation(
                    shop, conversation, conversation, version, new_messages, inbound_at
                )
                yield TurnEvent("done", TurnResult(conversation.id, "", []).to_json())
                return
            released = conversation.model_copy(
                update={"state": "bot", "handoff_reason": "", "release_reason": NO_OPERATOR_REPLY}
            )
            conversation, version = self._save_conversation(
                shop, conversation, released, version, [], inbound_at
            )
            log_event("handoff_released", shop=shop.id, reason=NO_OPERATOR_REPLY)
            lang = detect_language("\n".join(m.text for m in pending), shop)
            preface = RELEASED_NOTICE.get(lang, RELEASED_NOTICE["en"])
        try:
            yield from self._answer(
                shop, conversation, version, pending, new_messages, inputs, inbound_at, preface
            )
        except Exception:
            # The message is stored; keep it in the conversation's context and flag the turn,
            # then let the caller answer the error (503, a retry by the queue...).
            flagged = conversation.model_copy(update={"pending_retry": True})
            with suppress(StoreError):
                self._save_conversation(
                    shop, conversation, flagged, version, new_messages, inbound_at
                )
            raise

    def _answer(
        self,
        shop: Shop,
        conversation: Conversation,
        version: int,
        pending: list[Message],
        new_messages: list[Message],
        inputs: list[ChatMessage] | None,
        inbound_at: float,
        preface: str = "",
    ) -> Iterator[TurnEvent]:
        pending_ids = {m.id for m in pending}
        earlier = [m for m in conversation.recent if m.id not in pending_ids]
        inputs = inputs if inputs is not None else [ChatMessage("user", m.text) for m in pending]
        text = "\n".join(m.text for m in inputs)
        lang = detect_language(text, shop)
        index = self.catalog.get(shop)
        products = index.search_products(text, PRODUCTS_PER_TURN)
        faq = index.search_faq(text, FAQ_PER_TURN)
        ctx = TurnContext(
            shop, self.store, index, conversation, conversation.channel, lang, now=self.clock()
        )
        ctx.show(*(p for p, _ in products))
        customer = self._customer(shop, conversation)
        system = render(
            shop.persona,
            conversation.channel,
            shop=shop,
            lang=lang,
            products=products,
            faq=faq,
            customer=customer,
            price=lambda p: format_price(p.price, p.currency, lang),
        )
        limit = self.settings.context_message_limit
        messages = [
            ChatMessage("system", system),
            *(ChatMessage(m.role, m.text) for m in (earlier[-limit:] if limit else [])),
            *inputs,
        ]
        # What the offline rules provider reads instead of the prompt, as plain data.
        retrieved = Retrieved.of_turn(shop, products, faq, lang)
        agent = Agent(
            self.llm_for(shop),
            TOOLS,
            max_steps=self.settings.llm_max_steps,
            deadline=time.monotonic() + self.settings.llm_turn_budget,
        )
        result = AgentResult(text="")
        sent_text = False
        try:
            events = agent.run(ctx, messages, retrieved.context, [entry for entry, _ in faq])
            for event in _prefaced(events, preface):
                if isinstance(event, TextDelta):
                    sent_text = True
                    yield TurnEvent("delta", {"text": event.text})
                elif isinstance(event, Replace):
                    yield TurnEvent("replace", {"text": event.text})
                else:
                    result = event
        except LLMError:
            # Every provider failed: the message is saved; answer politely, mark for retry.
            result = AgentResult(text="")
        if result.text:
            ctx.conversation = ctx.conversation.model_copy(update={"pending_retry": False})
        else:  # every provider failed, or the model said nothing
            result = AgentResult(text=HOLDING_REPLY.get(lang, HOLDING_REPLY["en"]))
            ctx.conversation = ctx.conversation.model_copy(update={"pending_retry": True})
            yield TurnEvent("replace" if sent_text else "delta", {"text": result.text})

        outbound = _reply(conversation, pending, result.text).model_copy(
            update={
                "tokens_in": result.usage.prompt_tokens,
                "tokens_out": result.usage.completion_tokens,
            }
        )
        self.store.put(shop.id, _messages(conversation.id), outbound.id, outbound.to_doc())
        new_messages.append(outbound)
        self._save_conversation(
            shop, conversation, ctx.conversation, version, new_messages, inbound_at
        )
        if ctx.handoff_reason is not None and conversation.channel == "web":
            self._notify_operator(shop, conversation, outbound.id)
        cards = _mentioned(result.text, list(ctx.products.values()))
        yield TurnEvent("done", TurnResult(conversation.id, result.text, cards, ctx.lead).to_json())

    def record_reply(
        self,
        shop: Shop,
        conversation: Conversation,
        version: int,
        pending: list[Message],
        text: str,
    ) -> Message:
        """Store ``text`` as the answer to ``pending`` (already on ``recent``) without asking the
        model: a channel's fixed reply (an opt-out confirmation, a request for text)."""
        outbound = _reply(conversation, pending, text)
        self.store.put(shop.id, _messages(conversation.id), outbound.id, outbound.to_doc())
        self._save_conversation(
            shop, conversation, conversation, version, [outbound], pending[-1].at
        )
        return outbound

    def history(self, shop: Shop, session_id: str) -> list[Message]:
        doc = (
            self.store.get(shop.id, "conversations", session_id)
            if is_session_id(session_id)
            else None
        )
        # A channel conversation is not the web's to read, even by someone who knows its id.
        if doc is None or doc.data.get("channel", "web") != "web":
            raise UnknownSessionError("unknown session")
        page = self.store.query(
            shop.id, _messages(session_id), descending=True, limit=HISTORY_LIMIT
        )
        return [Message.from_doc(d) for d in reversed(page.items)]

    def _open_conversation(
        self, shop: Shop, session_id: str | None, channel: Channel, now: float
    ) -> tuple[Conversation, int]:
        if session_id is not None and is_session_id(session_id):
            doc = self.store.get(shop.id, "conversations", session_id)
            if doc is not None and doc.data.get("channel", "web") == channel:
                return Conversation.from_doc(doc), doc.version
        # Unknown or malformed ids get a fresh random one: a client cannot choose its session id.
        while True:
            conversation = Conversation(
                id=new_session_id(), channel=channel, created_at=now, updated_at=now
            )
            try:
                doc = self.store.create(
                    shop.id, "conversations", conversation.id, conversation.to_doc()
                )
            except AlreadyExistsError:  # 192 random bits: practically never
                continue
            return conversation, doc.version

    def _handoff_expired(self, conversation: Conversation) -> bool:
        """Handed to the shop longer ago than HANDOFF_RELEASE_MINUTES, and nobody from the shop
        has answered since."""
        minutes = self.settings.handoff_release_minutes
        handed, replied = conversation.handoff_at, conversation.operator_replied_at
        if not minutes or (replied is not None and replied >= (handed or 0.0)):
            return False
        # No handoff time: handed over before it was recorded, long enough ago.
        return handed is None or self.clock() - handed > minutes * 60

    def _notify_operator(self, shop: Shop, conversation: Conversation, reply_id: str) -> None:
        """The worker tells the shop's operator (``notify_operator``) that the web reply
        ``reply_id`` handed the conversation over. A channel reply queues the same as it is sent
        (shared/channels/turn.py)."""
        item = WorkItem(
            kind="notify_operator",
            shop=shop.id,
            group=conversation.id,
            dedup_id=f"handoff:{reply_id}",
            payload={"conversation": conversation.id, "reply": reply_id},
        )
        try:
            self.enqueue(item)
        except QueueError:
            # The reply is stored and on its way to the customer: failing the turn now would
            # not bring the notice back. HANDOFF_RELEASE_MINUTES still returns it to the bot.
            log_event("handoff_not_queued", shop=shop.id)

    def _save_conversation(
        self,
        shop: Shop,
        loaded: Conversation,
        current: Conversation,
        version: int,
        new_messages: list[Message],
        inbound_at: float,
    ) -> tuple[Conversation, int]:
        """Append this turn's messages to the conversation's recent list and apply what this
        turn changed (``current`` against ``loaded``), without undoing a concurrent turn's
        changes: on a version conflict, re-read and apply the same changes to that. Returns
        the conversation as saved and its version."""
        changes = {
            k: getattr(current, k)
            for k in _TURN_FIELDS
            if getattr(current, k) != getattr(loaded, k)
        }
        base = loaded
        for _ in range(SAVE_ATTEMPTS):
            updated = base.model_copy(
                update={
                    **changes,
                    "recent": [*base.recent, *new_messages][-RECENT_KEPT:],
                    "updated_at": time.time(),
                    "last_inbound_at": max(inbound_at, base.last_inbound_at or 0.0),
                }
            )
            try:
                saved = self.store.update(
                    shop.id, "conversations", base.id, updated.to_doc(), if_version=version
                )
                return updated, saved.version
            except PreconditionFailedError:
                doc = self.store.get(shop.id, "conversations", base.id)
                if doc is None:
                    return updated, version
                base, version = Conversation.from_doc(doc), doc.version
        raise StoreUnavailableError("the conversation kept changing")

    def _customer(self, shop: Shop, conversation: Conversation) -> Customer | None:
        # Only the customer this conversation belongs to: never one it was merely linked to.
        return crm.conversation_customer(self.store, shop.id, conversation)


def _messages(conversation_id: str) -> str:
    return f"conversations/{conversation_id}/messages"


def _reply(conversation: Conversation, pending: list[Message], text: str) -> Message:
    # A channel reply starts "pending": the worker sends it after it is stored.
    return Message(
        id=new_sortable_id(),
        role="assistant",
        text=text,
        at=time.time(),
        reply_to=pending[-1].id,
        delivery="pending" if conversation.channel != "web" else None,
    )


def _prefaced(events: Iterator[AgentEvent], preface: str) -> Iterator[AgentEvent]:
    """The agent's events with ``preface`` before its answer, in the stream and in the text."""
    if not preface:
        yield from events
        return
    yield TextDelta(preface + "\n\n")
    for event in events:
        if isinstance(event, Replace):
            yield Replace(f"{preface}\n\n{event.text}")
        elif isinstance(event, AgentResult) and event.text:
            yield replace(event, text=f"{preface}\n\n{event.text}")
        else:  # text deltas; an empty answer stays empty (the holding reply replaces it)
            yield event


def _mentioned(text: str, products: list[Product]) -> list[Product]:
    """The products the reply names, in the order it names them: they become cards."""
    folded = fold(text)
    positions = [(folded.find(fold(p.title)), p) for p in products]
    return [p for position, p in sorted(positions, key=lambda x: x[0]) if position >= 0]


def _digest(value: str) -> str:
    # Rate-limit keys hold a digest: no client address or session id is stored in clear.
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _valid_shop_id(shop_id: str) -> bool:
    try:
        check_shop(shop_id)
    except InvalidKeyError:
        return False
    return True
