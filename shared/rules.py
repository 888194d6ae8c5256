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
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, ClassVar

from shared.catalog.retrieval import fold, tokens
from shared.llm.base import LLM, ChatMessage, Completion, LLMRequest, ToolCall
from shared.models import FaqEntry, Product, Shop
from shared.money import format_price
from shared.order_form import OrderForm, VariantChoice, choose_variant, read_order

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
        "variant": "{option} ({values})",
        "size": "la taille",
        "shoe_size": "la pointure",
        "colour": "la couleur",
        "option": "le modèle",
        "or": " ou ",
        "and": " et ",
        "readback": (
            "Voici le récapitulatif de votre commande :\n- {quantity} × {title}{variant} : "
            "{total}\n- Nom : {name}\n- Téléphone : {phone}\n- Adresse de livraison : {address}"
            "\nTout est correct ? Répondez « oui » pour confirmer, ou dites-moi ce qu'il faut "
            "changer."
        ),
        "channel_phone": "{phone} (ce numéro WhatsApp)",
        "other_phone": "{phone} (et non celui de ce WhatsApp : est-ce bien le bon ?)",
        "confirm": (
            "Merci {name} ! Votre commande est confirmée : {quantity} × {title}{variant}, "
            "total {total}. Nous vous contacterons au {phone} pour la livraison à {address}."
        ),
        "unknown_variant": (
            "Désolé, {title} n'existe pas en {wanted}. En stock : {values}. "
            "Que choisissez-vous ?"
        ),
        "sold_out_variant": (
            "Désolé, {title} en {wanted} est épuisé. En stock : {values}. "
            "Que choisissez-vous ?"
        ),
        "product_sold_out": "Désolé, {title} est épuisé pour le moment.",
        "bad_phone": "Ce numéro de téléphone ne semble pas valide : pouvez-vous le vérifier ?",
        "bad_quantity": (
            "Je peux enregistrer de 1 à 100 articles par commande : combien en voulez-vous ?"
        ),
        "lead_error": (
            "Je n'ai pas pu enregistrer la commande. Pouvez-vous vérifier vos informations ?"
        ),
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
        "variant": "{option} ({values})",
        "size": "the size",
        "shoe_size": "the shoe size",
        "colour": "the colour",
        "option": "which one you want",
        "or": " or ",
        "and": " and ",
        "readback": (
            "Here is the summary of your order:\n- {quantity} × {title}{variant}: {total}\n"
            "- Name: {name}\n- Phone: {phone}\n- Delivery address: {address}\nIs everything "
            "correct? Reply “yes” to confirm, or tell me what to change."
        ),
        "channel_phone": "{phone} (this WhatsApp number)",
        "other_phone": "{phone} (not this WhatsApp number: is that the right one?)",
        "confirm": (
            "Thank you {name}! Your order is confirmed: {quantity} × {title}{variant}, "
            "total {total}. We will call you on {phone} to deliver to {address}."
        ),
        "unknown_variant": (
            "Sorry, {title} doesn't come in {wanted}. In stock: {values}. "
            "Which one would you like?"
        ),
        "sold_out_variant": (
            "Sorry, {title} in {wanted} is sold out. In stock: {values}. "
            "Which one would you like?"
        ),
        "product_sold_out": "Sorry, {title} is sold out at the moment.",
        "bad_phone": "That phone number doesn't look valid: could you check it?",
        "bad_quantity": "I can record 1 to 100 items per order: how many would you like?",
        "lead_error": "I couldn't record the order. Could you check your details?",
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
_INTENT_RE = re.compile(
    r"\bje (?:veux|voudrais|souhaite|souhaiterais|vais|aimerais)\b.{0,40}?"
    r"\b(?:commander|acheter|prendre|avoir)\b"
    r"|\bj'aimerais\b.{0,40}?\b(?:commander|acheter|prendre)\b"
    r"|\bje (?:le |la |les )?(?:prends|commande|achete)\b"
    r"|\bi(?:'d| would)? (?:like|want|wanna) to (?:buy|order|get)\b"
    r"|\bi'll (?:take|buy|order)\b|\bplace an order\b"
)
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
    channel: str = "web"
    known_phone: str = ""  # the phone the channel verified (WhatsApp): never asked for

    @classmethod
    def of_turn(
        cls,
        shop: Shop,
        products: Sequence[tuple[Product, float]],
        faq: Sequence[tuple[FaqEntry, float]],
        lang: str,
        *,
        channel: str = "web",
        known_phone: str = "",
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
            channel=channel,
            known_phone=known_phone,
        )

    @property
    def context(self) -> dict[str, Any]:
        """The request's ``context`` (not ``asdict``: its deep copy costs half a millisecond)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Retrieved:
        return cls(**{f.name: context[f.name] for f in fields(cls) if f.name in context})


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
        form = _order(messages, context)
        if form is not None and "capture_lead" in offered:
            if "search_products" not in offered:
                return self._ask(form.missing(), lang)
            # Find the product the customer named first: its variants are asked with the rest.
            return self._call(messages, "search_products", {"query": form.product_query})
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

    def _ask(self, missing: Sequence[str], lang: str, extra: Sequence[str] = ()) -> Completion:
        """One message asking for every missing detail (``extra``: labels already worded)."""
        texts = TEXTS[lang]
        parts = [*(texts[f] for f in missing), *extra]
        return self._reply(texts["ask"].format(missing=_listed(parts, texts["and"])), lang)

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
            form = _order(messages, context)
            if "error" in result:
                return self._lead_error(str(result["error"]), messages, form, lang)
            summary = texts["readback" if result.get("status") == "draft" else "confirm"]
            phone = result["phone"]
            if form is not None and form.known_phone and result.get("status") == "draft":
                phone = texts["other_phone" if form.other_phone else "channel_phone"].format(
                    phone=phone
                )
            variant = f" ({result['variant']})" if result.get("variant") else ""
            total = format_price(Decimal(str(result["total"])), result["currency"], lang)
            return self._reply(
                summary.format(
                    name=result["name"],
                    quantity=result["quantity"],
                    title=result["product_title"],
                    variant=variant,
                    total=total,
                    phone=phone,
                    address=result["address"],
                ),
                lang,
            )
        if last.tool_name == "request_human":
            if result.get("opens"):  # the shop is closed: say when someone will answer
                return self._reply(texts["handoff_closed"].format(opens=result["opens"]), lang)
            return self._reply(texts["handoff"], lang)
        products = result.get("products") or ([result] if "variants" in result else [])
        form = _order(messages, context)
        if form is not None and "capture_lead" in offered:
            return self._order_step(messages, form, products, lang)
        if not products:
            return self._reply(texts["none"], lang)
        items = [_product_item(p, Decimal(str(p["price"]))) for p in products[:3]]
        return self._reply(_product_list(items, lang) + "\n" + texts["order_hint"], lang)

    def _order_step(
        self,
        messages: Sequence[ChatMessage],
        form: OrderForm,
        products: Sequence[dict[str, Any]],
        lang: str,
    ) -> Completion:
        """With the product found: ask for what is missing (its variant included), else record
        the order, as a draft to read back or, once the customer said yes, confirmed."""
        texts = TEXTS[lang]
        if not products:
            return self._ask([*form.missing(), "product"], lang)
        product = products[0]
        choice = choose_variant(product, form.said)
        if choice.problem in ("unknown", "sold_out"):
            problem = _variant_problem(product, choice, lang)
            if not form.missing():
                return self._reply(problem, lang)
            asking = texts["ask"].format(
                missing=_listed([texts[f] for f in form.missing()], texts["and"])
            )
            return self._reply(f"{problem}\n{asking}", lang)
        wanted = [_variant_label(choice, lang)] if choice.problem == "choose" else []
        if form.missing() or wanted:
            return self._ask(form.missing(), lang, wanted)
        arguments: dict[str, Any] = {
            "name": form.name,
            "phone": form.phone,
            "address": form.address,
            "product_id": product["id"],
            "quantity": form.quantity,
            "confirmed": form.confirmed,
        }
        if choice.variant is not None:
            arguments["variant"] = str(choice.variant["id"])
        return self._call(messages, "capture_lead", arguments)

    def _lead_error(
        self, error: str, messages: Sequence[ChatMessage], form: OrderForm | None, lang: str
    ) -> Completion:
        """The tool's error (written for a model) said to the customer in their words."""
        texts = TEXTS[lang]
        field_name = re.split(r"[ :]", error, maxsplit=1)[0]
        product = _searched_product(messages)
        if field_name == "variant" and product is not None and form is not None:
            choice = choose_variant(product, form.said)
            if choice.problem:
                return self._reply(_variant_problem(product, choice, lang), lang)
        if field_name == "product_id" and product is not None and "out of stock" in error:
            return self._reply(texts["product_sold_out"].format(title=product["title"]), lang)
        if field_name == "phone" and "empty" not in error:
            return self._reply(texts["bad_phone"], lang)
        if field_name == "quantity":
            return self._reply(texts["bad_quantity"], lang)
        if field_name in ("name", "phone", "address"):
            return self._ask([field_name], lang)
        return self._reply(texts["lead_error"], lang)

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


def _order(messages: Sequence[ChatMessage], context: Retrieved) -> OrderForm | None:
    """The open order in the conversation, read from its messages (``shared.order_form``)."""
    return read_order(
        [(m.role, m.text) for m in messages if m.role in ("user", "assistant") and m.text],
        context.phone_region,
        starts_order=lambda text: bool(_INTENT_RE.search(fold(text))),
        known_phone=context.known_phone or None,
    )


def _searched_product(messages: Sequence[ChatMessage]) -> dict[str, Any] | None:
    """The product the order is for: the first the last catalogue search returned."""
    for message in reversed(messages):
        if message.role == "tool" and message.tool_name == "search_products":
            products = _json(message.text).get("products") or []
            return dict(products[0]) if products else None
    return None


_OPTION_KINDS = {
    "taille": "size",
    "size": "size",
    "pointure": "shoe_size",
    "shoe size": "shoe_size",
    "couleur": "colour",
    "coloris": "colour",
    "color": "colour",
    "colour": "colour",
}


def _variant_label(choice: VariantChoice, lang: str) -> str:
    """"la taille (S, M ou L)": the option to choose and the values in stock."""
    texts = TEXTS[lang]
    option = texts[_OPTION_KINDS.get(fold(choice.option), "option")]
    return texts["variant"].format(option=option, values=_listed(choice.in_stock, texts["or"]))


def _variant_problem(product: Mapping[str, Any], choice: VariantChoice, lang: str) -> str:
    texts = TEXTS[lang]
    if not choice.in_stock:
        return texts["product_sold_out"].format(title=product["title"])
    if choice.problem == "choose":
        return texts["ask"].format(missing=_variant_label(choice, lang))
    return texts[f"{choice.problem}_variant"].format(
        title=product["title"], wanted=choice.wanted, values=", ".join(choice.in_stock)
    )


def _listed(parts: Sequence[str], last_joint: str) -> str:
    """"a, b and c"."""
    return ", ".join(parts[:-1]) + last_joint + parts[-1] if len(parts) > 1 else "".join(parts)


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
