"""The offline responder: the embedded default LLM (``LLM_PROVIDER=offline``), a rules provider.
Deterministic, French and English, no key.

It plays the model's part with the same tool calls a real model makes, so the whole pipeline
(agent loop, tools, lead capture, price guard, persistence) runs with no provider: it searches
the catalogue with ``search_products`` and lists what the tool returned, answers FAQ entries
retrieval found, asks for every missing order detail in one message, reads the answers (names,
phone numbers in local or international form, addresses, quantities), then calls
``capture_lead`` and confirms. A hesitating customer is offered the shop's configured offer.

It cannot read the rendered prompt, so what retrieval found and the shop's facts come in the
request's ``context`` as plain data (``Retrieved.context``, built by the chat service). It lives
in the domain, not in the LLM port: its rules need the domain's text folding, phone numbers
and price formatting, and moving those under the port (or computing every price and phone
number it might need ahead of each call) would pull the domain into the port or change what the
chat service does on every turn. The port's provider table names it by string
(``shared.rules:RulesResponder``), imported only when chosen, so the port imports no domain
module and a new provider never sees a domain type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, ClassVar

from shared.catalog.retrieval import fold, tokens
from shared.crm import normalise_phone
from shared.exceptions import InvalidPhoneError
from shared.llm.base import LLM, ChatMessage, Completion, LLMRequest, ToolCall
from shared.models import FaqEntry, Product, Shop
from shared.money import format_price

FAQ_MIN_SCORE = 2.0
TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "greeting": "Bonjour et bienvenue chez {shop} ! Que puis-je vous aider à trouver ?",
        "found": "Voici ce que j'ai trouvé :",
        "none": "Je n'ai pas trouvé ce produit dans notre catalogue. Pouvez-vous préciser ?",
        "unknown": (
            "Je n'ai pas de réponse précise à cela. Vous pouvez joindre la boutique : {contact}."
        ),
        "from": "à partir de ",
        "sold_out": " (épuisé)",
        "ask": "Pour finaliser votre commande, il me manque : {missing}.",
        "name": "votre nom",
        "phone": "votre numéro de téléphone",
        "address": "votre adresse de livraison",
        "product": "le produit souhaité",
        "and": " et ",
        "confirm": (
            "Merci {name} ! Votre commande est enregistrée : {quantity} × {title}{variant}, "
            "total {total}. Nous vous contacterons au {phone} pour la livraison à {address}."
        ),
        "lead_error": "Je n'ai pas pu enregistrer la commande ({error}). Pouvez-vous corriger ?",
        "offer": "Je comprends ! Bonne nouvelle : {offer}. Souhaitez-vous commander ?",
        "no_offer": (
            "Je comprends. Nos articles sont faits main ; souhaitez-vous que je vous conseille ?"
        ),
        "handoff": (
            "Je transmets votre demande à un conseiller de la boutique, qui vous répondra ici."
        ),
        "handoff_closed": (
            "Je transmets votre demande à la boutique. La boutique est fermée ; un conseiller "
            "vous répondra ici dès l'ouverture, {opens}."
        ),
        "order_hint": "Pour commander, dites-moi simplement lequel vous intéresse.",
    },
    "en": {
        "greeting": "Hello and welcome to {shop}! What can I help you find?",
        "found": "Here is what I found:",
        "none": "I couldn't find that product in our catalogue. Could you tell me more?",
        "unknown": "I don't have a precise answer to that. You can reach the shop at {contact}.",
        "from": "from ",
        "sold_out": " (sold out)",
        "ask": "To complete your order, I still need {missing}.",
        "name": "your name",
        "phone": "your phone number",
        "address": "your delivery address",
        "product": "the product you want",
        "and": " and ",
        "confirm": (
            "Thank you {name}! Your order is recorded: {quantity} × {title}{variant}, "
            "total {total}. We will call you on {phone} to deliver to {address}."
        ),
        "lead_error": "I couldn't record the order ({error}). Could you correct it?",
        "offer": "I understand! Good news: {offer}. Would you like to order?",
        "no_offer": "I understand. Our items are handmade; shall I help you choose?",
        "handoff": "I'm passing your request to someone from the shop, who will answer you here.",
        "handoff_closed": (
            "I'm passing your request to the shop. The shop is closed; someone will answer you "
            "here as soon as it opens, {opens}."
        ),
        "order_hint": "To order, just tell me which one you like.",
    },
}
# Markers of the responder's own messages, read back from the history to know where the
# order form stands (the responder keeps no state of its own, like a real model).
_ASK_MARKERS = ("pour finaliser votre commande", "to complete your order")
_DONE_MARKERS = ("votre commande est enregistree", "your order is recorded")

_INTENT_RE = re.compile(
    r"\bje (?:veux|voudrais|souhaite|souhaiterais|vais|aimerais)\b.{0,40}?"
    r"\b(?:commander|acheter|prendre|avoir)\b"
    r"|\bj'aimerais\b.{0,40}?\b(?:commander|acheter|prendre)\b"
    r"|\bje (?:le |la |les )?(?:prends|commande|achete)\b"
    r"|\bi(?:'d| would)? (?:like|want|wanna) to (?:buy|order|get)\b"
    r"|\bi'll (?:take|buy|order)\b|\bplace an order\b"
)
_CANCEL_RE = re.compile(r"\b(?:annule[rz]?|laisse[rz]? tomber|cancel|never ?mind|forget it)\b")
_HUMAN_RE = re.compile(
    r"\b(?:humain|conseill(?:er|ere)|vendeu(?:r|se)|une (?:vraie )?personne|quelqu'un"
    r"|human|real person|someone|an agent|customer service|service client)\b"
)
_HESITATION_RE = re.compile(
    r"\b(?:trop cher|c'est cher|un peu cher|hesite|pas sur|pas convaincu"
    r"|too expensive|expensive|not sure|hesitat\w*)\b"
)
_GREETINGS = {
    "bonjour",
    "bonsoir",
    "salut",
    "coucou",
    "hello",
    "hi",
    "hey",
    "salam",
    "salaam",
    "good",
    "morning",
    "evening",
    "afternoon",
}
_NAME_RE = re.compile(
    r"(?:je m'appelle|je suis|mon nom(?: est| c'est)?|nom ?:|my name is|i am|i'm|name ?:)"
    r"\s*([A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'\- ]{1,58}[A-Za-zÀ-ÖØ-öø-ÿ])",
    re.IGNORECASE,
)
# Spaces around an optional colon. Not ``\s*:?\s*``: on a long run of spaces followed by no
# match, that form tries every split of the run between its two ``\s*`` (quadratic).
_COLON = r"\s*(?::\s*)?"
_ADDRESS_RE = re.compile(
    r"(?:adresse(?: de livraison)?|address|j'habite(?: a| au| aux)?|je vis a|je suis a"
    r"|livr(?:ez|er|aison)(?:-moi| moi)? (?:a|au|aux|chez)|deliver(?:y)? to|i live (?:at|in))"
    rf"{_COLON}(.+)",
    re.IGNORECASE,
)
_ADDRESS_WORDS = {
    "rue",
    "avenue",
    "av",
    "boulevard",
    "bd",
    "villa",
    "cite",
    "quartier",
    "immeuble",
    "appartement",
    "appt",
    "residence",
    "lot",
    "lotissement",
    "route",
    "allee",
    "place",
    "sicap",
    "hlm",
    "parcelles",
    "street",
    "st",
    "road",
    "rd",
    "apartment",
    "building",
}
_PHONE_RE = re.compile(r"(?:\+|00)?\d[\d .\-/]{6,}\d")
_QUANTITY_RE = re.compile(
    r"\b(\d{1,2}|un|une|deux|trois|quatre|cinq|one|two|three|four|five)\s*"
    r"(?:x\b|pieces?|paires?|unites?|exemplaires?|articles?|pcs|pairs?|units?|items?|pieces?)"
    r"|\bx\s*(\d{1,2})\b|\bquantite\s*:?\s*(\d{1,2})\b|\bquantity\s*:?\s*(\d{1,2})\b"
)
_NUMBER_WORDS = {
    "un": 1,
    "une": 1,
    "one": 1,
    "deux": 2,
    "two": 2,
    "trois": 3,
    "three": 3,
    "quatre": 4,
    "four": 4,
    "cinq": 5,
    "five": 5,
}
_BARE_QUANTITY_RE = re.compile(
    r"\b(\d{1,2}|deux|trois|quatre|cinq|two|three|four|five)\s+([a-z]{3,})"
)
_MEASURE_WORDS = {
    "cm",
    "mm",
    "kg",
    "ml",
    "litres",
    "heures",
    "jours",
    "ans",
    "hours",
    "days",
    "years",
    "min",
    "minutes",
    "fcfa",
    "cfa",
    "xof",
    "euros",
    "francs",
}
_VARIANT_CUE_RE = re.compile(rf"\b(?:taille|pointure|couleur|coloris|size|colou?r){_COLON}(\w+)")


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found for this turn and the shop's facts, as plain data: what the
    responder reads from a request's ``context``."""

    products: list[tuple[dict[str, Any], float]] = field(default_factory=list)  # (JSON, score)
    faq: list[tuple[str, float]] = field(default_factory=list)  # (answer, score)
    lang: str = "fr"
    shop_name: str = ""
    contact: str = ""
    offer: str = ""
    phone_region: str = "SN"

    @classmethod
    def of_turn(
        cls,
        shop: Shop,
        products: Sequence[tuple[Product, float]],
        faq: Sequence[tuple[FaqEntry, float]],
        lang: str,
    ) -> Retrieved:
        return cls(
            # The JSON form with the lowest price added, the way the catalogue tools answer.
            products=[
                ({**p.model_dump(mode="json"), "price": str(p.price)}, score)
                for p, score in products
            ],
            faq=[(entry.answer, score) for entry, score in faq],
            lang=lang,
            shop_name=shop.name,
            contact=shop.contact or shop.url,
            offer=shop.offer,
            phone_region=shop.phone_region,
        )

    @property
    def context(self) -> dict[str, Any]:
        """The request's ``context`` (not ``asdict``: its deep copy costs half a millisecond)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Retrieved:
        return cls(**{f.name: context[f.name] for f in fields(cls) if f.name in context})


@dataclass
class OrderForm:
    """What the customer has given so far, read from their messages since the purchase intent."""

    intent: str  # the message that started the order: the product is named there
    name: str | None
    phone: str | None
    address: str | None
    quantity: int
    variant_hint: str  # the whole form's text, to match a variant against

    def missing(self) -> list[str]:
        return [f for f in ("name", "phone", "address") if getattr(self, f) is None]


class RulesResponder(LLM):
    name: ClassVar[str] = "offline"

    def __init__(self, *, provider: str = "offline", model: str = "offline", **_: Any) -> None:
        self.model = model

    def complete(self, request: LLMRequest) -> Completion:
        messages = request.messages
        context = Retrieved.from_context(request.context)
        lang = context.lang if context.lang in TEXTS else "en"
        offered = {t.name for t in request.tools}
        if messages and messages[-1].role == "tool":
            return self._after_tools(messages, offered, context, lang)
        user = next((m.text for m in reversed(messages) if m.role == "user"), "")
        return self._answer(messages, user, offered, context, lang)

    # --- a customer message ----------------------------------------------------------------

    def _answer(
        self,
        messages: Sequence[ChatMessage],
        user: str,
        offered: set[str],
        context: Retrieved,
        lang: str,
    ) -> Completion:
        texts = TEXTS[lang]
        folded = fold(user)
        form = order_form(messages, context.phone_region)
        if form is not None and "capture_lead" in offered:
            if form.missing():
                return self._ask(form, lang)
            # Everything is there: find the product the customer named, then capture the lead.
            return self._call(messages, "search_products", {"query": form.intent})
        if _HUMAN_RE.search(folded) and "request_human" in offered:
            return self._call(
                messages, "request_human", {"reason": "the customer asked for a person"}
            )
        if _HESITATION_RE.search(folded):
            if context.offer:
                return self._reply(texts["offer"].format(offer=context.offer), lang)
            return self._reply(texts["no_offer"], lang)
        faq_score = context.faq[0][1] if context.faq else 0.0
        product_score = context.products[0][1] if context.products else 0.0
        if faq_score >= FAQ_MIN_SCORE and faq_score >= product_score:
            return self._reply(context.faq[0][0], lang)
        if context.products:
            if "search_products" in offered:
                return self._call(messages, "search_products", {"query": user})
            items = [_product_item(p, Decimal(str(p["price"]))) for p, _ in context.products]
            return self._reply(_product_list(items, lang), lang)
        words = set(tokens(user))
        if not words or words <= _GREETINGS or (words & _GREETINGS and len(words) <= 3):
            return self._reply(
                texts["greeting"].format(shop=context.shop_name or "notre boutique"), lang
            )
        return self._reply(
            texts["unknown"].format(contact=context.contact or context.shop_name), lang
        )

    def _ask(self, form: OrderForm, lang: str) -> Completion:
        texts = TEXTS[lang]
        parts = [texts[f] for f in form.missing()]
        missing = ", ".join(parts[:-1]) + texts["and"] + parts[-1] if len(parts) > 1 else parts[0]
        return self._reply(texts["ask"].format(missing=missing), lang)

    # --- after the tools answered ----------------------------------------------------------

    def _after_tools(
        self,
        messages: Sequence[ChatMessage],
        offered: set[str],
        context: Retrieved,
        lang: str,
    ) -> Completion:
        texts = TEXTS[lang]
        last = messages[-1]
        result = _json(last.text)
        if last.tool_name == "capture_lead":
            if "error" in result:
                return self._reply(texts["lead_error"].format(error=result["error"]), lang)
            variant = f" ({result['variant']})" if result.get("variant") else ""
            total = format_price(Decimal(str(result["total"])), result["currency"], lang)
            return self._reply(
                texts["confirm"].format(
                    name=result["name"],
                    quantity=result["quantity"],
                    title=result["product_title"],
                    variant=variant,
                    total=total,
                    phone=result["phone"],
                    address=result["address"],
                ),
                lang,
            )
        if last.tool_name == "request_human":
            if result.get("opens"):  # the shop is closed: say when someone will answer
                return self._reply(texts["handoff_closed"].format(opens=result["opens"]), lang)
            return self._reply(texts["handoff"], lang)
        products = result.get("products") or ([result] if "variants" in result else [])
        form = order_form(messages, context.phone_region)
        if form is not None and not form.missing() and "capture_lead" in offered:
            if not products:
                return self._ask_product(lang)
            chosen = products[0]
            arguments: dict[str, Any] = {
                "name": form.name,
                "phone": form.phone,
                "address": form.address,
                "product_id": chosen["id"],
                "quantity": form.quantity,
            }
            if variant_id := _pick_variant(chosen, form.variant_hint):
                arguments["variant"] = variant_id
            return self._call(messages, "capture_lead", arguments)
        if not products:
            return self._reply(texts["none"], lang)
        items = [_product_item(p, Decimal(str(p["price"]))) for p in products[:3]]
        return self._reply(_product_list(items, lang) + "\n" + texts["order_hint"], lang)

    def _ask_product(self, lang: str) -> Completion:
        return self._reply(TEXTS[lang]["ask"].format(missing=TEXTS[lang]["product"]), lang)

    # --- building completions --------------------------------------------------------------

    def _reply(self, text: str, lang: str) -> Completion:
        return Completion(text=text, model=self.model)

    def _call(
        self, messages: Sequence[ChatMessage], name: str, arguments: dict[str, Any]
    ) -> Completion:
        call_id = f"offline-{sum(1 for m in messages if m.role == 'tool')}-{name}"
        return Completion(
            text="", tool_calls=(ToolCall(call_id, name, arguments),), model=self.model
        )


# --- reading the conversation --------------------------------------------------------------


def order_form(messages: Sequence[ChatMessage], region: str) -> OrderForm | None:
    """The open order form, if the customer expressed a purchase intent that is not yet
    confirmed or cancelled."""
    dialogue = [m for m in messages if m.role in ("user", "assistant") and m.text]
    start = None
    for index, message in enumerate(dialogue):
        folded = fold(message.text)
        if message.role == "user" and _INTENT_RE.search(folded):
            start = index
        elif start is not None and (
            (message.role == "assistant" and any(k in folded for k in _DONE_MARKERS))
            or (message.role == "user" and _CANCEL_RE.search(folded))
        ):
            start = None
    if start is None:
        return None
    said = [m.text for m in dialogue[start:] if m.role == "user"]
    return OrderForm(
        intent=said[0],
        name=_find_name(said),
        phone=_find_phone(said, region),
        address=_find_address(said),
        quantity=_find_quantity(said),
        variant_hint=" ".join(said),
    )


def _segments(said: Sequence[str]) -> list[str]:
    return [s.strip() for text in said for s in re.split(r"[\n,;]+", text) if s.strip()]


def _find_phone(said: Sequence[str], region: str) -> str | None:
    found = None
    for text in said:
        for candidate in _PHONE_RE.findall(text):
            with suppress(InvalidPhoneError):
                found = normalise_phone(candidate, region)
    return found


def _find_name(said: Sequence[str]) -> str | None:
    for text in reversed(said):
        if match := _NAME_RE.search(text):
            return (
                match.group(1).strip().title()
                if match.group(1).islower()
                else match.group(1).strip()
            )
    for segment in _segments(said[1:]):  # a bare "Aminata Diop" given after the form was asked
        words = segment.split()
        if (
            1 < len(words) <= 4
            and all(w[0].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words)
            and not set(tokens(segment)) & _ADDRESS_WORDS
        ):
            return segment
    return None


def _find_address(said: Sequence[str]) -> str | None:
    for text in reversed(said):
        if match := _ADDRESS_RE.search(fold(text)):
            # Keep the customer's own spelling: cut the original text at the same place.
            start = len(text) - len(match.group(1))
            address = re.split(r"\n", text[start:])[0].strip(" .")
            if address:
                return address
    for segment in reversed(_segments(said)):
        words = set(tokens(segment))
        if words & _ADDRESS_WORDS and not _PHONE_RE.fullmatch(segment):
            return segment.strip(" .")
    return None


def _find_quantity(said: Sequence[str]) -> int:
    quantity = None
    for text in said:
        for match in _QUANTITY_RE.finditer(fold(text)):
            value = next(g for g in match.groups() if g)
            quantity = int(value) if value.isdigit() else _NUMBER_WORDS[value]
    if quantity is None and said:
        # "I'd like to buy 2 raffia bags": a small number before a word, in the intent message.
        for value, word in _BARE_QUANTITY_RE.findall(fold(said[0])):
            if word not in _ADDRESS_WORDS and word not in _MEASURE_WORDS:
                quantity = int(value) if value.isdigit() else _NUMBER_WORDS[value]
                break
    return max(1, min(quantity or 1, 100))


def _pick_variant(product: dict[str, Any], hint: str) -> str | None:
    variants = product.get("variants") or []
    folded = fold(hint)
    cues = set(_VARIANT_CUE_RE.findall(folded))
    for variant in variants:
        title = fold(str(variant.get("title", "")))
        parts = {p.strip() for p in re.split(r"[/,]", title)}
        if cues & parts or (len(title) > 1 and re.search(rf"\b{re.escape(title)}\b", folded)):
            return str(variant["id"])
    return None


def _product_item(data: dict[str, Any], price: Decimal) -> tuple[str, str, Decimal, bool, bool]:
    variants = data.get("variants") or []
    several_prices = len({str(v.get("price")) for v in variants}) > 1
    available = data.get("available", True)
    return data["title"], data["currency"], price, several_prices, bool(available)


def _product_list(items: Sequence[tuple[str, str, Decimal, bool, bool]], lang: str) -> str:
    texts = TEXTS[lang]
    lines = [texts["found"]]
    for title, currency, price, several_prices, available in items:
        prefix = texts["from"] if several_prices else ""
        stock = "" if available else texts["sold_out"]
        lines.append(f"- **{title}** : {prefix}{format_price(price, currency, lang)}{stock}")
    return "\n".join(lines)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
