"""The offline responder: the embedded default LLM. Deterministic, French and English.

It answers from what retrieval put in the request (catalogue products and FAQ entries), so every
price it states is a catalogue price. No key, no network.
"""

from __future__ import annotations

from typing import ClassVar

from shared.catalog.retrieval import tokens
from shared.llm.base import LLM, LLMReply, LLMRequest
from shared.money import format_price

GREETINGS = frozenset(
    """
    bonjour bonsoir salut coucou hello hi hey salam salaam good morning evening
    """.split()
)
FAQ_MIN_SCORE = 2.0
TEXTS = {
    "fr": {
        "greeting": "Bonjour et bienvenue chez {shop} ! Que puis-je vous aider à trouver ?",
        "products": "Voici ce que j'ai trouvé :",
        "unknown": (
            "Je n'ai pas trouvé de réponse précise à votre question. "
            "Vous pouvez joindre la boutique : {contact}."
        ),
        "out": "épuisé",
        "from": "à partir de",
    },
    "en": {
        "greeting": "Hello and welcome to {shop}! What can I help you find?",
        "products": "Here is what I found:",
        "unknown": (
            "I couldn't find a precise answer to your question. "
            "You can reach the shop at {contact}."
        ),
        "out": "sold out",
        "from": "from",
    },
}


class OfflineResponder(LLM):
    name: ClassVar[str] = "offline"

    def reply(self, request: LLMRequest) -> LLMReply:
        texts = TEXTS[request.lang if request.lang in TEXTS else "en"]
        words = set(tokens(request.text))
        faq_score = request.faq[0][1] if request.faq else 0.0
        product_score = request.products[0][1] if request.products else 0.0
        if faq_score >= FAQ_MIN_SCORE and faq_score >= product_score:
            return LLMReply(request.faq[0][0].answer)
        if request.products:
            lines = [texts["products"]]
            for product, _score in request.products:
                prefix = f"{texts['from']} " if len({v.price for v in product.variants}) > 1 else ""
                stock = "" if product.available else f" ({texts['out']})"
                price = format_price(product.price, product.currency, request.lang)
                lines.append(f"- **{product.title}** : {prefix}{price}{stock}")
            return LLMReply("\n".join(lines), [p.id for p, _score in request.products])
        if words & GREETINGS or not words:
            return LLMReply(texts["greeting"].format(shop=request.shop.name))
        contact = request.shop.contact or request.shop.url or request.shop.name
        return LLMReply(texts["unknown"].format(contact=contact))
