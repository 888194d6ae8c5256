"""A rule-based "model" for the loopback OpenAI server: it plays the conversation set's dialogues
through the tool-calling path.

It reads the request as a model would (the system prompt's language and offer, the FAQ extract,
the tool results) but takes its decisions from the dialogue being played: a request for a person
calls ``request_human``; the turn that completes an order searches the product and calls
``capture_lead`` with the dialogue's expected fields (or the refused ones, which the tool must
turn down); a product question calls ``search_products`` and lists what it returned, prices
from the tool result; an FAQ question answers with the entry's answer when retrieval put it in
the prompt. So the scores measure what the pipeline does with a model's tool calls: the agent
loop, tool validation, CRM writes, the price guard, the prompt's language and extract.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from shared.money import format_price
from tests.conversations import Dialogue, Turn
from tests.llm.script import Reply, SeenRequest

_HESITATION = re.compile(r"\b(?:cher|expensive|h[eé]site|not sure)\b", re.IGNORECASE)
_OFFER = re.compile(r"you may offer: (.+?)\.?\s*$", re.MULTILINE)
_CONTACT = re.compile(r"give the shop's contact: (.+?)\.?\s*$", re.MULTILINE)
_GREETING = re.compile(r"^\W*(?:bonjour|bonsoir|salut|salam|hello|hi|hey|merci|thanks)\b", re.I)
TEXTS = {
    "fr": {
        "hello": "Bonjour ! Que puis-je faire pour vous ?",
        "found": "Voici ce que j'ai trouvé :",
        "sizes": "disponible en",
        "none": "Je n'ai pas trouvé ce produit dans notre catalogue.",
        "unknown": "Je n'ai pas la réponse ; vous pouvez joindre la boutique : {contact}",
        "sold_out": "épuisé",
        "offer": "Bonne nouvelle : {offer}.",
        "ask": "Pour commander, il me faut votre nom, votre numéro et votre adresse.",
        "ask_whatsapp": "Pour commander, il me faut votre nom et votre adresse.",
        "confirm": (
            "Merci {name} ! Je récapitule : {quantity} × {title}{variant}, total {total}, "
            "livraison à {address}, téléphone {phone}."
        ),
        "refused": "Désolé, ce n'est pas possible : {error}",
        "handoff": "Je transmets votre demande à un conseiller de la boutique.",
    },
    "en": {
        "hello": "Hello! What can I do for you?",
        "found": "Here is what I found:",
        "sizes": "available in",
        "none": "I couldn't find that product in our catalogue.",
        "unknown": "I don't have the answer; you can contact the shop: {contact}",
        "sold_out": "sold out",
        "offer": "Good news: {offer}.",
        "ask": "To order, I need your name, your phone number and your address.",
        "ask_whatsapp": "To order, I need your name and your address.",
        "confirm": (
            "Thank you {name}! Here is your order: {quantity} × {title}{variant}, total {total}, "
            "delivered to {address}, phone {phone}."
        ),
        "refused": "Sorry, that is not possible: {error}",
        "handoff": "I'm passing your request to someone from the shop.",
    },
}


class StubModel:
    """Set ``play`` before each customer message; ``respond`` answers the server's requests."""

    def __init__(self) -> None:
        self.dialogue: Dialogue | None = None
        self.turn_number = 0

    def play(self, dialogue: Dialogue, turn_number: int) -> None:
        self.dialogue, self.turn_number = dialogue, turn_number

    @property
    def turn(self) -> Turn:
        assert self.dialogue is not None
        return self.dialogue.turns[self.turn_number]

    def order(self) -> dict[str, Any] | None:
        """The order to submit at this turn: the dialogue's last turn places it."""
        assert self.dialogue is not None
        if self.turn_number != len(self.dialogue.turns) - 1:
            return None
        if isinstance(self.dialogue.lead, dict):
            return self.dialogue.lead
        return self.dialogue.refused

    def respond(self, request: SeenRequest) -> Reply:
        system = request.messages[0]["text"] if request.messages else ""
        lang = "fr" if "Answer in French" in system else "en"
        last = request.messages[-1]
        if last["role"] == "tool":
            called = next(m for m in reversed(request.messages) if m["tool_calls"])
            return self._after(called["tool_calls"][0], json.loads(last["text"]), system, lang)
        assert self.dialogue is not None
        order = self.order()
        if self.dialogue.handoff and self.turn_number == len(self.dialogue.turns) - 1:
            return Reply(tool_calls=[("request_human", {"reason": "the customer asked"})])
        if order is not None:
            return Reply(tool_calls=[("search_products", {"query": order["product"]})])
        turn = self.turn
        if turn.scores_product or turn.search:
            return Reply(tool_calls=[("search_products", {"query": turn.search or turn.say})])
        contact = _CONTACT.search(system)
        unknown = TEXTS[lang]["unknown"].format(contact=contact.group(1) if contact else "")
        if isinstance(turn.faq, str):
            return Reply(text=_faq_answer(system) or unknown)
        if isinstance(self.dialogue.lead, dict) or self.dialogue.refused is not None:
            # An order in progress: ask for the details (WhatsApp gives the phone already).
            ask = "ask_whatsapp" if self.dialogue.channel == "whatsapp" else "ask"
            return Reply(text=TEXTS[lang][ask])
        if _GREETING.search(turn.say):
            return Reply(text=_with_offer(TEXTS[lang]["hello"], turn, system, lang))
        return Reply(text=_with_offer(unknown, turn, system, lang))

    def _after(self, tool: str, result: dict[str, Any], system: str, lang: str) -> Reply:
        texts = TEXTS[lang]
        if tool == "request_human":
            return Reply(text=texts["handoff"])
        if tool == "capture_lead":
            if "error" in result:
                return Reply(text=texts["refused"].format(error=result["error"]))
            variant = f" ({result['variant']})" if result.get("variant") else ""
            total = format_price(Decimal(str(result["total"])), result["currency"], lang)
            return Reply(
                text=texts["confirm"].format(
                    name=result["name"],
                    quantity=result["quantity"],
                    title=result["product_title"],
                    variant=variant,
                    total=total,
                    address=result["address"],
                    phone=result["phone"],
                )
            )
        products = result.get("products", [])
        order = self.order()
        if order is not None:
            chosen = next((p for p in products if p["title"] == order["product"]), None)
            if chosen is None:
                return Reply(text=texts["none"])
            arguments = {
                "name": order["name"],
                "phone": order["phone"],
                "address": order["address"],
                "product_id": chosen["id"],
                "quantity": order["quantity"],
            }
            if order["variant"]:
                arguments["variant"] = order["variant"]
            return Reply(tool_calls=[("capture_lead", arguments)])
        if not products:
            return Reply(text=texts["none"])
        lines = [texts["found"]]
        for product in products[:3]:
            def price(amount: Any, currency: str = product["currency"]) -> str:
                return format_price(Decimal(str(amount)), currency, lang)

            variants = [
                f"{v['title']} : {price(v['price'])}"
                for v in product.get("variants", [])
                if v["available"]
            ]
            stock = f" ({texts['sizes']} {', '.join(variants)})" if variants else ""
            sold_out = "" if product["available"] else f" ({texts['sold_out']})"
            lines.append(f"- **{product['title']}** : {price(product['price'])}{stock}{sold_out}")
        return Reply(text=_with_offer("\n".join(lines), self.turn, system, lang))


def _faq_answer(system: str) -> str | None:
    """The answer of an FAQ entry the prompt's extract holds, the first one (the best match)."""
    answers = re.findall(r"^\s+A: (.+)$", system, re.MULTILINE)
    return answers[0] if answers else None


def _with_offer(text: str, turn: Turn, system: str, lang: str) -> str:
    """A hesitating customer hears the shop's offer, when the prompt gives one."""
    offer = _OFFER.search(system)
    if offer is None or not _HESITATION.search(turn.say):
        return text
    return f"{TEXTS[lang]['offer'].format(offer=offer.group(1))}\n{text}"
