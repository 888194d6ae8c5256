"""A chat turn: load the conversation, retrieve, prompt, reply, persist.

The customer's message is written before the model is called, so a model or store failure
after that point never loses it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from shared.catalog.retrieval import CatalogCache, fold
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidKeyError,
    LLMError,
    MessageTooLongError,
    RateLimitedError,
    UnknownSessionError,
    UnknownShopError,
)
from shared.ids import is_session_id, new_session_id, new_sortable_id
from shared.llm import LLM, LLMReply, LLMRequest
from shared.models import Channel, Conversation, Message, Product, Shop
from shared.money import format_price, price_number
from shared.prompts import render
from shared.settings import Settings
from shared.store import Store
from shared.store.base import check_shop

HISTORY_LIMIT = 200
PRODUCTS_PER_TURN = 3
FAQ_PER_TURN = 2
HOLDING_REPLY = {
    "fr": "Désolé, je rencontre un petit souci. Votre message est bien noté, je reviens vers vous.",
    "en": "Sorry, I'm having a small problem. Your message is saved and I'll get back to you.",
}
_FRENCH_HINTS = frozenset(
    """
    bonjour bonsoir salut je j vous tu est avez combien prix quel quelle quels livraison
    merci oui non des les une un pour avec sans votre mon ma mes acheter commander voudrais
    veux
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
    lang: str
    lead: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "reply": self.reply,
            "products": [product_card(p) for p in self.products],
            "lead": self.lead,
        }


def product_card(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "title": product.title,
        "price": price_number(product.price),
        "currency": product.currency,
        "url": product.url,
        "image": product.image,
    }


def detect_language(text: str, shop: Shop) -> str:
    words = set(fold(text).replace("'", " ").split())
    french, english = len(words & _FRENCH_HINTS), len(words & _ENGLISH_HINTS)
    if french != english:
        return "fr" if french > english else "en"
    return shop.languages[0] if shop.languages else "fr"


class ChatService:
    def __init__(self, settings: Settings, store: Store, llm: LLM) -> None:
        self.settings = settings
        self.store = store
        self.llm = llm
        self.catalog = CatalogCache(store)

    def shop(self, shop_id: str | None) -> Shop:
        shop_id = shop_id or self.settings.default_shop
        doc = self.store.get(shop_id, "shops", shop_id) if _valid_shop_id(shop_id) else None
        if doc is None:
            raise UnknownShopError(f"unknown shop {shop_id!r}")
        return Shop.from_doc(doc)

    def check_rate(self, shop: Shop, session_id: str | None, client: str) -> None:
        """Fixed one-minute windows per session and per client, counted in the store so every
        instance sees the same numbers."""
        now = time.time()
        window = int(now // 60)
        expires = (window + 2) * 60.0
        checks = [(f"client:{_digest(client)}", self.settings.client_rate_limit_per_minute)]
        if session_id:
            checks.append((f"session:{_digest(session_id)}", self.settings.rate_limit_per_minute))
        for key, limit in checks:
            count = self.store.increment(
                shop.id, "ratelimits", f"{key}:{window}", "n", expires_at=expires
            )
            if count > limit:
                raise RateLimitedError(
                    "too many messages, wait a moment", int(expires - 60 - now) + 1
                )

    def turn(
        self,
        shop: Shop,
        session_id: str | None,
        text: str,
        *,
        channel: Channel = "web",
    ) -> TurnResult:
        text = text.strip()
        if not text:
            raise InvalidInputError("message is empty")
        if len(text) > self.settings.max_message_chars:
            raise MessageTooLongError(f"message over {self.settings.max_message_chars} characters")
        now = time.time()
        conversation = self._open_conversation(shop, session_id, channel, now)
        collection = f"conversations/{conversation.id}/messages"
        history = self._recent_messages(shop, collection, self.settings.context_message_limit)
        inbound = Message(id=new_sortable_id(), role="user", text=text, at=now)
        self.store.put(shop.id, collection, inbound.id, inbound.to_doc())

        lang = detect_language(text, shop)
        index = self.catalog.get(shop)
        products = [(p, s) for p, s in index.search_products(text, PRODUCTS_PER_TURN)]
        faq = index.search_faq(text, FAQ_PER_TURN)
        system = render(
            shop.persona,
            channel,
            shop=shop,
            lang=lang,
            products=products,
            faq=faq,
            price=lambda p: format_price(p.price, p.currency, lang),
        )
        request = LLMRequest(shop, system, history, text, lang, products, faq)
        try:
            reply = self.llm.reply(request)
        except LLMError:
            reply = LLMReply(HOLDING_REPLY[lang])
        outbound = Message(id=new_sortable_id(), role="assistant", text=reply.text, at=time.time())
        self.store.put(shop.id, collection, outbound.id, outbound.to_doc())
        self.store.put(
            shop.id,
            "conversations",
            conversation.id,
            conversation.model_copy(
                update={"updated_at": outbound.at, "last_inbound_at": now}
            ).to_doc(),
        )
        shown = [index.products[i] for i in reply.product_ids if i in index.products]
        return TurnResult(conversation.id, reply.text, shown, lang)

    def history(self, shop: Shop, session_id: str) -> list[Message]:
        if (
            not is_session_id(session_id)
            or self.store.get(shop.id, "conversations", session_id) is None
        ):
            raise UnknownSessionError("unknown session")
        return self._recent_messages(shop, f"conversations/{session_id}/messages", HISTORY_LIMIT)

    def _open_conversation(
        self, shop: Shop, session_id: str | None, channel: Channel, now: float
    ) -> Conversation:
        if session_id is not None and is_session_id(session_id):
            doc = self.store.get(shop.id, "conversations", session_id)
            if doc is not None:
                return Conversation.from_doc(doc)
        # Unknown or malformed ids get a fresh random one: a client cannot choose its session id.
        while True:
            conversation = Conversation(
                id=new_session_id(), channel=channel, created_at=now, updated_at=now
            )
            try:
                self.store.create(shop.id, "conversations", conversation.id, conversation.to_doc())
            except AlreadyExistsError:  # 192 random bits: practically never
                continue
            return conversation

    def _recent_messages(self, shop: Shop, collection: str, limit: int) -> list[Message]:
        if limit == 0:
            return []
        page = self.store.query(shop.id, collection, descending=True, limit=limit)
        return [Message.from_doc(d) for d in reversed(page.items)]


def _digest(value: str) -> str:
    # Rate-limit keys hold a digest: no client address or session id is stored in clear.
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _valid_shop_id(shop_id: str) -> bool:
    try:
        check_shop(shop_id)
    except InvalidKeyError:
        return False
    return True
