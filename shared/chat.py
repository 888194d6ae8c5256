"""A chat turn: conversation, retrieval, prompt, agent loop with tools, price guard, persistence.

The customer's message is written before any model call, so a model, tool or channel failure
after that point never loses it. A turn streams events (``delta``, ``replace``, ``done``); the
JSON API simply waits for ``done``.

A turn yields typed events and ends with a ``TurnResult`` (the reply, its id, the products as
models, the lead): the HTTP function and the channel senders turn it into JSON or a message.
The message is validated at the edge that received it (``functions/chat.py``, the webhooks).

Store operations on a typical turn: 2 rate-limit counters (the client's read first, its shards
in one call), 1 conversation read (it carries the recent messages), 1 inbound write, 1 outbound
write, 1 conversation write; with daily quotas (``shared/quotas.py``) 1 counter, and for a shop
selling plans 1 subscription read (and 1 customer read once the conversation has one); a turn
with a customer reads its memory (1 read). The shop comes from the instance's cache
(``shared.shops``); the catalogue index is kept per catalogue version.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Literal

from shared import conversations, crm, marketing, memory, quotas
from shared.agent import Agent, AgentEvent, AgentResult, Replace
from shared.catalog.embeddings import query_vector
from shared.catalog.retrieval import CatalogCache, CatalogIndex, fold
from shared.catalog.snapshot import CatalogSnapshots
from shared.checkout import PaymentLink, Payments
from shared.exceptions import (
    LLMError,
    QueueError,
    RateLimitedError,
    StoreError,
    UnknownSessionError,
)
from shared.ids import is_session_id, new_sortable_id
from shared.language import customer_language
from shared.linking import Linking
from shared.llm import LLM, ChatMessage, TextDelta
from shared.log import log_event
from shared.models import (
    Channel,
    Conversation,
    Customer,
    Lead,
    Message,
    PaymentButton,
    Product,
    Shop,
    ShownProduct,
    Variant,
    card_variant,
)
from shared.money import format_price
from shared.prompts import PromptMemory, render
from shared.queue.base import WorkItem
from shared.rules import Retrieved
from shared.settings import Settings
from shared.store import Store
from shared.tools import TOOLS
from shared.tools.base import TurnContext
from shared.tools.web_search import SearXNG

HISTORY_LIMIT = 200
# A client address's per-minute count is spread over this many documents (see _counted).
CLIENT_COUNTER_SHARDS = 8
PRODUCTS_PER_TURN = 4
CARDS_PER_TURN = 5  # a reply's cards, kept with it for the history
FAQ_PER_TURN = 2
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


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended: the last event of ``stream`` and ``respond``."""

    conversation: Conversation  # as saved at the end of the turn
    reply: str  # empty when the assistant stays silent (the conversation is with the shop)
    reply_id: str | None  # the stored reply; None when silent
    products: list[Product]  # the products the reply names, in that order: its cards
    lead: Lead | None = None  # the order captured this turn
    lang: str | None = None  # the reply's language; None when silent or a channel's fixed text
    payment: PaymentLink | None = None  # a payment link made this turn: the reply's "Pay" button

    @property
    def session_id(self) -> str:
        return self.conversation.id


@dataclass(frozen=True)
class HistoryMessage:
    """A stored message as the history shows it: a reply's cards come from today's catalogue
    (today's prices; a product deleted since is left out), each offering the variant it offered
    then while that one is still in stock."""

    message: Message
    cards: list[tuple[Product, Variant]]


@dataclass(frozen=True)
class History:
    """A web conversation as the widget reloads it: who answers it now, and its messages."""

    state: Literal["bot", "human"]
    messages: list[HistoryMessage]


def with_cards(store: Store, shop: str, messages: list[Message]) -> list[HistoryMessage]:
    """``messages`` with their cards, from one batch read of the products they showed (not the
    whole catalogue: a reload on a cold instance stays cheap, and a price changed since the
    reply shows as it is now)."""
    shown = [s for m in messages for s in m.products or []]
    docs = store.get_many(shop, "products", [s.id for s in shown])
    products = {product_id: Product.from_doc(doc) for product_id, doc in docs.items()}

    def cards(message: Message) -> list[tuple[Product, Variant]]:
        found = [(products.get(s.id), s.variant_id) for s in message.products or []]
        return [(p, card_variant(p, variant_id)) for p, variant_id in found if p is not None]

    return [HistoryMessage(m, cards(m)) for m in messages]


@dataclass(frozen=True)
class TurnEvent:
    """Text as it streams: more of the reply (``delta``), or the whole reply again
    (``replace``, when the price guard rewrote it)."""

    kind: Literal["delta", "replace"]
    text: str


def detect_language(text: str, shop: Shop, earlier: Sequence[str] = ()) -> str:
    """The language to answer ``text`` in: its own, else that of the customer's ``earlier``
    messages (latest first), else the shop's first language."""
    return customer_language(text, earlier, shop.languages[0] if shop.languages else "fr")


class ChatService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        llm_for: Callable[[Shop], LLM],
        *,
        enqueue: Callable[[WorkItem], None],
        clock: Callable[[], float] = time.time,
        payments: Payments | None = None,
        catalog_snapshots: CatalogSnapshots | None = None,
    ) -> None:
        """``enqueue`` hands work to the worker (telling the operator of a web handoff);
        ``clock`` is the time of the shop's hours, of handoffs and of rate-limit windows (tests
        pass a frozen one); ``payments`` makes the payment links of ``create_payment_link``;
        ``catalog_snapshots`` gives a cold instance its catalogue indexes without a scan."""
        self.settings = settings
        self.payments = payments if payments is not None else Payments(store, settings)
        self.linking = Linking(store, settings, clock=clock)
        self.web_search = SearXNG(settings.searxng_url) if settings.searxng_url else None
        self.store = store
        self.llm_for = llm_for
        self.enqueue = enqueue
        self.clock = clock
        self.catalog = CatalogCache(store, catalog_snapshots)
        self._over_limit: dict[tuple[str, str], float] = {}  # (scope, key) -> its window's end
        self._over_limit_lock = threading.Lock()

    def check_rate(self, shop: Shop, session_id: str | None, client: str) -> None:
        """Fixed one-minute windows per client address and per session, counted in the store so
        every instance sees the same numbers. A client's count is one for every shop (kept in
        the default shop's scope): naming another shop does not buy more requests. A key found
        over its limit is remembered here until its window ends, so a client that keeps
        calling costs no further store operation on this instance."""
        now = self.clock()
        window = int(now // 60)
        window_end = (window + 1) * 60.0
        client_key = (self.settings.default_shop, f"client:{_digest(client)}:{window}")
        checks = [(client_key, self.settings.client_rate_limit_per_minute, CLIENT_COUNTER_SHARDS)]
        if session_id:
            session_key = (shop.id, f"session:{_digest(session_id)}:{window}")
            checks.append((session_key, self.settings.rate_limit_per_minute, 1))
        refused = RateLimitedError("too many requests, wait a moment", int(window_end - now) + 1)
        if any(key in self._over_limit for key, _, _ in checks):
            raise refused
        for key, limit, shards in checks:
            if not self._counted(key, limit, shards, expires_at=window_end + 60):
                with self._over_limit_lock:
                    # Keys carry their window, so entries of past windows are only dropped.
                    for stale in [k for k, end in self._over_limit.items() if end <= now]:
                        del self._over_limit[stale]
                    self._over_limit[key] = window_end
                raise refused

    def _counted(self, key: tuple[str, str], limit: int, shards: int, *, expires_at: float) -> bool:
        """Count one request against ``key``'s limit; False when it is over.

        A session's counter is its customer's alone: one atomic increment. A client address
        may be a carrier NAT shared by thousands of phones, so its count is spread over
        ``shards`` documents (one picked at random takes the write: Firestore sustains about
        one write a second per document) and read first, so that once the window is full no
        instance writes to it again. Concurrent first requests may pass the limit by the few
        that read the same total at once; the count seen by later ones stays exact."""
        scope, name = key
        if shards == 1:
            count = self.store.increment(scope, "ratelimits", name, "n", expires_at=expires_at)
            return count <= limit
        names = [f"{name}:{shard}" for shard in range(shards)]
        found = self.store.get_many(scope, "ratelimits", names)
        counts = {doc_id: int(doc.data["n"]) for doc_id, doc in found.items()}
        total = sum(counts.values())
        if total >= limit:
            return False
        picked = random.choice(names)
        picked_now = self.store.increment(scope, "ratelimits", picked, "n", expires_at=expires_at)
        return total - counts.get(picked, 0) + picked_now <= limit

    def turn(
        self, shop: Shop, session_id: str | None, text: str, *, channel: Channel = "web"
    ) -> TurnResult:
        """The whole turn at once."""
        return result_of(self.stream(shop, session_id, text, channel=channel))

    def stream(
        self, shop: Shop, session_id: str | None, text: str, *, channel: Channel = "web"
    ) -> Iterator[TurnEvent | TurnResult]:
        """A web turn: store the message (``text``, validated by the caller), then answer it."""
        now = self.clock()
        conversation, version = conversations.open_session(
            self.store, shop.id, session_id, channel, now
        )
        inbound = Message(id=new_sortable_id(), role="user", text=text, at=now)
        conversations.add_message(
            self.store, shop.id, conversation.id, inbound, channel=conversation.channel
        )
        opt_out = marketing.marketing_keyword(text)
        if opt_out is not None:  # STOP/START typed alone: recorded and confirmed, no model
            marketing.record_choice(self.store, shop.id, conversation, opt_out, now)
            lang = _pending_language(shop, conversation, [inbound])
            reply = marketing.confirmation(opt_out, lang)
            yield TurnEvent("delta", reply)
            # ``version`` may be stale now: the save re-reads the conversation and appends.
            yield self.record_reply(
                shop, conversation, version, [inbound], reply, new_messages=[inbound], lang=lang
            )
            return
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
    ) -> Iterator[TurnEvent | TurnResult]:
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
                store = self.store
                saved, _ = conversations.save_turn(
                    store, shop.id, conversation, conversation, version, new_messages, inbound_at
                )
                yield TurnResult(saved, "", None, [])
                return
            released = conversation.model_copy(
                update={"state": "bot", "handoff_reason": "", "release_reason": NO_OPERATOR_REPLY}
            )
            conversation, version = conversations.save_turn(
                self.store, shop.id, conversation, released, version, [], inbound_at
            )
            log_event("handoff_released", shop=shop.id, reason=NO_OPERATOR_REPLY)
            lang = _pending_language(shop, conversation, pending)
            preface = RELEASED_NOTICE.get(lang, RELEASED_NOTICE["en"])
        # Plans and daily quotas: past the customer's quota the limit message is the answer.
        # The conversation's own customer, read once: the quota and the prompt's memory use it.
        customer = crm.conversation_customer(self.store, shop.id, conversation)
        usage = quotas.count_turn(
            self.store, shop, conversation, customer, len(pending), self.clock()
        )
        if usage is not None and (usage.exceeded or usage.warning_due):
            lang = _pending_language(shop, conversation, pending)
            if usage.exceeded:
                text = quotas.limit_message(self.payments, shop, usage, lang, self.clock())
                yield TurnEvent("delta", text)
                yield self.record_reply(
                    shop, conversation, version, pending, text, new_messages=new_messages, lang=lang
                )
                return
            preface = "\n\n".join(filter(None, [preface, quotas.warning(usage, lang)]))
        try:
            yield from self._answer(
                shop,
                conversation,
                customer,
                version,
                pending,
                new_messages,
                inputs,
                inbound_at,
                preface,
            )
        except Exception:
            # The message is stored; keep it in the conversation's context and flag the turn,
            # then let the caller answer the error (503, a retry by the queue...).
            flagged = conversation.model_copy(update={"pending_retry": True})
            with suppress(StoreError):
                conversations.save_turn(
                    self.store, shop.id, conversation, flagged, version, new_messages, inbound_at
                )
            raise

    def _answer(
        self,
        shop: Shop,
        conversation: Conversation,
        customer: Customer | None,
        version: int,
        pending: list[Message],
        new_messages: list[Message],
        inputs: list[ChatMessage] | None,
        inbound_at: float,
        preface: str = "",
    ) -> Iterator[TurnEvent | TurnResult]:
        pending_ids = {m.id for m in pending}
        earlier = [m for m in conversation.recent if m.id not in pending_ids]
        inputs = inputs if inputs is not None else [ChatMessage("user", m.text) for m in pending]
        text = "\n".join(m.text for m in inputs)
        lang = _pending_language(shop, conversation, pending, text)
        deadline = time.monotonic() + self.settings.llm_turn_budget  # the query's vector included
        llm = self.llm_for(shop)
        index = self.catalog.get(shop)
        vector = query_vector(llm, index.embed_model, index.embed_dimensions, text, shop.id)
        products = index.search_products(text, PRODUCTS_PER_TURN, query_vector=vector)
        faq = index.search_faq(text, FAQ_PER_TURN, lang, query_vector=vector)
        ctx = self.turn_context(shop, conversation, lang, index, deadline)
        ctx.show(*(p for p, _ in products))
        recalled, name = None, ""
        if customer is not None:
            kept, _ = memory.load(self.store, shop.id, customer)
            items = memory.recall_for_turn(kept, text, llm, shop.id, vector, index.embed_model)
            recalled = PromptMemory(kept.summary, [item.text for item in items])
            ctx.memory_beyond_prompt = len(kept.items) > len(items)
            name = memory.remembered_name(kept) or customer.name  # what they said, first
        system = render(
            shop.persona,
            conversation.channel,
            shop=shop,
            lang=lang,
            products=products,
            faq=faq,
            customer=customer,
            memory=recalled,
            price=lambda p: format_price(p.price, p.currency, lang),
            web_search=TOOLS["web_search"].offered(ctx),  # its rules, when offered
        )
        limit = self.settings.context_message_limit
        messages = [
            ChatMessage("system", system),
            *(ChatMessage(m.role, m.text) for m in (earlier[-limit:] if limit else [])),
            *inputs,
        ]
        # What the offline rules provider reads instead of the prompt, as plain data: on a
        # channel that verified the customer's phone (WhatsApp), that phone is never asked for.
        verified = customer.phone if customer is not None and customer.phone_verified else None
        pending_link = conversation.pending_link
        retrieved = Retrieved.of_turn(
            shop,
            products,
            faq,
            lang,
            channel=conversation.channel,
            known_phone=verified or "",
            link_pending=pending_link is not None and bool(pending_link.code_hash),
            customer_name=name,
            remembered=recalled.facts if recalled is not None else (),
        )
        offered = {name: tool for name, tool in TOOLS.items() if tool.offered(ctx)}
        agent = Agent(llm, offered, max_steps=self.settings.llm_max_steps, deadline=deadline)
        result = AgentResult(text="")
        sent_text = False
        try:
            events = agent.run(ctx, messages, retrieved.context, [entry for entry, _ in faq])
            for event in _prefaced(events, preface):
                if isinstance(event, TextDelta):
                    sent_text = True
                    yield TurnEvent("delta", event.text)
                elif isinstance(event, Replace):
                    yield TurnEvent("replace", event.text)
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
            yield TurnEvent("replace" if sent_text else "delta", result.text)

        cards = _mentioned(result.text, list(ctx.products.values()))[:CARDS_PER_TURN]
        outbound = _reply(conversation, pending, result.text).model_copy(
            update={
                "tokens_in": result.usage.prompt_tokens,
                "tokens_out": result.usage.completion_tokens,
                "products": [ShownProduct.of(p) for p in cards] or None,
                "lang": lang,
                "payment": _button(ctx.payment),
            }
        )
        conversations.add_message(self.store, shop.id, conversation.id, outbound,
                                  channel=conversation.channel,
                                  tools=[use.to_json() for use in result.tools])  # fmt: skip
        new_messages.append(outbound)
        saved, _ = conversations.save_turn(
            self.store, shop.id, conversation, ctx.conversation, version, new_messages, inbound_at
        )
        if ctx.handoff_reason is not None and conversation.channel == "web":
            self._notify_operator(shop, conversation, outbound.id)
        yield TurnResult(saved, result.text, outbound.id, cards, ctx.lead, lang, ctx.payment)

    def turn_context(
        self,
        shop: Shop,
        conversation: Conversation,
        lang: str,
        index: CatalogIndex | None = None,
        deadline: float | None = None,
    ) -> TurnContext:
        """What the tools of a turn on ``conversation`` work with (a chat turn's, a voice
        call's tool calls: ``shared/voice.py``)."""
        return TurnContext(
            shop,
            self.store,
            index if index is not None else self.catalog.get(shop),
            conversation,
            conversation.channel,
            lang,
            now=self.clock(),
            payments=self.payments,
            linking=self.linking,
            web_search=self.web_search,
            deadline=deadline,
        )

    def record_reply(
        self,
        shop: Shop,
        conversation: Conversation,
        version: int,
        pending: list[Message],
        text: str,
        *,
        new_messages: list[Message] | None = None,
        lang: str | None = None,
    ) -> TurnResult:
        """Store ``text`` as the answer to ``pending`` without asking the model: a channel's
        fixed reply (an opt-out confirmation, a request for text), the limit message past a
        quota. ``new_messages`` are those of ``pending`` not on ``recent`` yet (a web turn's)."""
        outbound = _reply(conversation, pending, text).model_copy(update={"lang": lang})
        conversations.add_message(
            self.store, shop.id, conversation.id, outbound, channel=conversation.channel
        )
        saved, _ = conversations.save_turn(
            self.store,
            shop.id,
            conversation,
            conversation,
            version,
            [*(new_messages or []), outbound],
            pending[-1].at,
        )
        return TurnResult(saved, text, outbound.id, [], lang=lang)

    def history(self, shop: Shop, session_id: str, after: str | None = None) -> History:
        """A web conversation's state and its last messages (only those after the message
        ``after``, when given: what a widget polling for an operator's replies asks)."""
        conversation = (
            conversations.get(self.store, shop.id, session_id)
            if is_session_id(session_id)
            else None
        )
        # A channel conversation is not the web's to read, even by someone who knows its id.
        if conversation is None or conversation.channel != "web":
            raise UnknownSessionError("unknown session")
        if after is None:
            messages = conversations.latest_messages(self.store, shop.id, session_id, HISTORY_LIMIT)
        else:
            messages = conversations.messages_after(
                self.store, shop.id, session_id, after, HISTORY_LIMIT
            )
        return History(conversation.state, with_cards(self.store, shop.id, messages))

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


def result_of(events: Iterator[TurnEvent | TurnResult]) -> TurnResult:
    """The result a turn ends with, its text events passed over."""
    return next(e for e in events if isinstance(e, TurnResult))


def _pending_language(
    shop: Shop, conversation: Conversation, pending: list[Message], text: str | None = None
) -> str:
    """The language to answer ``pending`` in: that of ``text`` (what the model reads of them,
    by default their stored text), else of the customer's earlier messages."""
    pending_ids = {m.id for m in pending}
    said_before = [
        m.text
        for m in reversed(conversation.recent)
        if m.role == "user" and m.id not in pending_ids
    ]
    if text is None:
        text = "\n".join(m.text for m in pending)
    return detect_language(text, shop, said_before)


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


def _button(link: PaymentLink | None) -> PaymentButton | None:
    if link is None:
        return None
    return PaymentButton(url=link.url, amount=link.amount, currency=link.currency)


def _mentioned(text: str, products: list[Product]) -> list[Product]:
    """The products the reply names, in the order it names them: they become cards."""
    folded = fold(text)
    positions = [(folded.find(fold(p.title)), p) for p in products]
    return [p for position, p in sorted(positions, key=lambda x: x[0]) if position >= 0]


def _digest(value: str) -> str:
    # Rate-limit keys hold a digest: no client address or session id is stored in clear.
    return hashlib.sha256(value.encode()).hexdigest()[:24]
