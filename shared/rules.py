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
from shared.intents import Intent, intent_of, size_named, variant_asked, wants_to_buy
from shared.language import language_of
from shared.linking import is_code
from shared.llm.base import LLM, ChatMessage, Completion, LLMRequest, ToolCall
from shared.models import FaqEntry, Product, Shop
from shared.money import format_price
from shared.order_form import OrderForm, VariantChoice, choose_variant, read_order
from shared.when import reminder_request

FAQ_MIN_SCORE = 2.0
REMEMBERED_SAID = 3  # memory items a greeting quotes back
TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "greeting": "Bonjour et bienvenue chez {shop} ! Que puis-je vous aider à trouver ?",
        "welcome_back": "Re-bonjour {name}, ravi de vous retrouver chez {shop} !",
        "remembered": "La dernière fois, vous m'aviez dit : {facts}.",
        "what_now": "Que puis-je pour vous aujourd'hui ?",
        "found": "Voici ce que j'ai trouvé :",
        "none": "Je n'ai pas trouvé ce produit dans notre catalogue. Pouvez-vous préciser ?",
        "unknown": (
            "Je ne sais pas répondre à cela, désolé. Vous pouvez joindre la boutique : {contact}."
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
        "pay": "Vous pouvez payer {total} en ligne avec le bouton « Payer » ci-dessous.",
        "already_paid": "Cette commande est déjà payée, merci !",
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
        "thanks": "Avec plaisir ! N'hésitez pas si vous avez une autre question.",
        "cheaper": "Si vous cherchez moins cher que **{than}**, **{title}** est à {price}.",
        "ordering": "**{title}** : {price}.",
        "which_product": (
            "De quel article parlez-vous ? Donnez-moi son nom et je vous dis les tailles, "
            "couleurs et le stock."
        ),
        "in_stock": "Pour **{title}**, en stock : {values}.",
        "has_value": "Oui, **{title}** est disponible en {value}.",
        "sold_out_value": "Désolé, **{title}** est épuisé en {value}. En stock : {values}.",
        "no_value": "**{title}** n'existe pas en {value}. En stock : {values}.",
        "available": "Oui, **{title}** est en stock.",
        "all_sold_out": "Désolé, **{title}** est épuisé pour le moment.",
        "link_sent": (
            "Je viens d'envoyer un code à 6 chiffres sur ce numéro WhatsApp : tapez-le ici "
            "(il expire dans 10 minutes)."
        ),
        "link_failed": (
            "Je n'ai pas pu envoyer de code sur ce numéro WhatsApp. Vérifiez le numéro, ou "
            "écrivez-nous d'abord sur WhatsApp, puis réessayez."
        ),
        "linked": (
            "C'est fait : cette conversation est reliée à votre compte WhatsApp, avec vos "
            "préférences et vos commandes."
        ),
        "wrong_code": "Ce code n'est pas le bon. Essais restants : {tries}.",
        "code_void": "Trop d'essais : ce code n'est plus valable. Demandez-moi un nouveau code.",
        "code_expired": "Ce code a expiré. Demandez-moi un nouveau code.",
        "no_code": "Aucun code n'est en attente ici : donnez-moi votre numéro WhatsApp.",
        "reminder_set": "C'est noté : je vous le rappellerai ici {when}.",
        "reminder_when": "Pour quand voulez-vous ce rappel ? Par exemple « demain à 9h ».",
        "reminder_failed": "Je n'ai pas pu programmer ce rappel, désolé.",
    },
    "en": {
        "greeting": "Hello and welcome to {shop}! What can I help you find?",
        "welcome_back": "Hello again {name}, good to see you back at {shop}!",
        "remembered": "Last time you told me: {facts}.",
        "what_now": "What can I do for you today?",
        "found": "Here is what I found:",
        "none": "I couldn't find that product in our catalogue. Could you tell me more?",
        "unknown": "Sorry, I don't know the answer to that. You can reach the shop at {contact}.",
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
        "pay": "You can pay {total} online with the “Pay” button below.",
        "already_paid": "This order is already paid, thank you!",
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
        "thanks": "You're welcome! Let me know if you have any other question.",
        "cheaper": "If you'd like something less expensive than **{than}**, **{title}** is "
        "{price}.",
        "ordering": "**{title}**: {price}.",
        "which_product": (
            "Which item do you mean? Tell me its name and I'll give you its sizes, colours "
            "and stock."
        ),
        "in_stock": "For **{title}**, in stock: {values}.",
        "has_value": "Yes, **{title}** is available in {value}.",
        "sold_out_value": "Sorry, **{title}** is sold out in {value}. In stock: {values}.",
        "no_value": "**{title}** doesn't come in {value}. In stock: {values}.",
        "available": "Yes, **{title}** is in stock.",
        "all_sold_out": "Sorry, **{title}** is sold out at the moment.",
        "link_sent": (
            "I've just sent a 6-digit code to that WhatsApp number: type it here (it expires "
            "in 10 minutes)."
        ),
        "link_failed": (
            "I couldn't send a code to that WhatsApp number. Check the number, or write to us "
            "on WhatsApp first, then try again."
        ),
        "linked": (
            "Done: this conversation is linked to your WhatsApp account, with your preferences "
            "and orders."
        ),
        "wrong_code": "That code isn't right. Tries left: {tries}.",
        "code_void": "Too many tries: that code is no longer valid. Ask me for a new one.",
        "code_expired": "That code has expired. Ask me for a new one.",
        "no_code": "No code is waiting here: give me your WhatsApp number.",
        "reminder_set": "Noted: I'll remind you here {when}.",
        "reminder_when": "When would you like the reminder? For example “tomorrow at 9am”.",
        "reminder_failed": "Sorry, I couldn't set that reminder.",
    },
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
    link_pending: bool = False  # a link code was sent: a 6-digit message is that code
    # A returning customer: their name, and what their memory holds for this message (quoted
    # back to them when they greet: the memory is theirs).
    customer_name: str = ""
    remembered: list[str] = field(default_factory=list)

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
        link_pending: bool = False,
        customer_name: str = "",
        remembered: Sequence[str] = (),
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
            link_pending=link_pending,
            customer_name=customer_name,
            remembered=list(remembered)[:REMEMBERED_SAID],
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
        if context.link_pending and is_code(user) and "verify_link" in offered:
            return self._call(messages, "verify_link", {"code": "".join(user.split())})
        linking_to = _link_request(user)
        if linking_to and "link_account" in offered:
            return self._call(messages, "link_account", {"phone": linking_to})
        reminder = reminder_request(user)
        if reminder is not None and "schedule_reminder" in offered:
            said, what = reminder
            return self._call(messages, "schedule_reminder", {"when": said, "text": what})
        form = _order(messages, context)
        if form is not None and "capture_lead" in offered:
            if "search_products" not in offered:
                return self._ask(form.missing(), lang)
            # Find the product the customer named first: its variants are asked with the rest.
            return self._call(messages, "search_products", {"query": form.product_query})
        intent = intent_of(user)
        if intent == "human" and "request_human" in offered:
            return self._call(
                messages, "request_human", {"reason": "the customer asked for a person"}
            )
        if intent == "greeting":
            return self._reply(_greeting(context, lang), lang)
        if intent == "thanks":
            return self._reply(texts["thanks"], lang)
        if intent in ("hesitation", "variant"):
            return self._about_product(messages, user, intent, offered, context, lang)
        faq_score = context.faq[0][1] if context.faq else 0.0
        product_score = context.products[0][1] if context.products else 0.0
        if faq_score >= FAQ_MIN_SCORE and faq_score >= product_score:
            return self._reply(context.faq[0][0], lang)
        if context.products:
            if "search_products" in offered:
                return self._call(messages, "search_products", {"query": user})
            items = [_product_item(p, Decimal(str(p["price"]))) for p, _ in context.products]
            return self._reply(_product_list(items, lang), lang)
        if not tokens(user):
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

    # --- a question about one product: its variants, or its price ---------------------------

    def _about_product(
        self,
        messages: Sequence[ChatMessage],
        user: str,
        intent: Intent,
        offered: set[str],
        context: Retrieved,
        lang: str,
    ) -> Completion:
        """The product in question is the one this message names, else the one the last reply
        showed (looked up with the tools, as a model would)."""
        named = _named_product(user, context)
        if named is not None:
            return self._on_product(messages, user, intent, named, offered, context, lang)
        shown = _last_shown_title(messages)
        if shown and {"search_products", "get_product"} <= offered:
            return self._call(messages, "search_products", {"query": shown})
        if intent == "variant":
            return self._reply(TEXTS[lang]["which_product"], lang)
        return self._hesitation_reply(None, context, lang)

    def _on_product(
        self,
        messages: Sequence[ChatMessage],
        user: str,
        intent: Intent,
        product: dict[str, Any],
        offered: set[str],
        context: Retrieved,
        lang: str,
    ) -> Completion:
        if intent == "variant":
            return self._reply(_variant_answer(product, user, lang), lang)
        if "search_products" not in offered:
            return self._hesitation_reply(None, context, lang)
        # Something comparable for less: the same category (or else the same words), cheaper.
        category = str(product.get("category") or "")
        arguments: dict[str, Any] = {
            "query": category or str(product["title"]),
            "max_price": float(Decimal(str(product["price"]))),
        }
        if category:
            arguments["category"] = category
        return self._call(messages, "search_products", arguments)

    def _product_followup(
        self,
        messages: Sequence[ChatMessage],
        user: str,
        intent: Intent,
        offered: set[str],
        context: Retrieved,
        lang: str,
    ) -> Completion:
        """The next step of ``_about_product`` once a tool answered: the shown product's details
        (get_product), then, for a hesitation, the cheaper products (search with max_price)."""
        last = messages[-1]
        result = _json(last.text)
        if last.tool_name == "get_product" and "variants" in result:
            return self._on_product(messages, user, intent, result, offered, context, lang)
        products = result.get("products") or []
        reference = _turn_product(messages) or _named_product(user, context)
        if reference is not None:  # the search for something cheaper answered
            cheaper = _cheaper(reference, products)
            return self._hesitation_reply(cheaper, context, lang, than=reference)
        if products and "get_product" in offered:
            return self._call(messages, "get_product", {"id": products[0]["id"]})
        if intent == "variant":
            return self._reply(TEXTS[lang]["which_product"], lang)
        return self._hesitation_reply(None, context, lang)

    def _hesitation_reply(
        self,
        cheaper: dict[str, Any] | None,
        context: Retrieved,
        lang: str,
        than: Mapping[str, Any] | None = None,
    ) -> Completion:
        texts = TEXTS[lang]
        offer = _in_language(context.offer, lang).strip().rstrip(".!")
        reply = texts["offer"].format(offer=offer) if offer else texts["no_offer"]
        if cheaper is not None and than is not None:
            price = format_price(Decimal(str(cheaper["price"])), cheaper["currency"], lang)
            reply += " " + texts["cheaper"].format(
                than=than["title"], title=cheaper["title"], price=price
            )
        return self._reply(reply, lang)

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
            confirmed = result.get("status") != "draft"
            if confirmed and "create_payment_link" in offered:
                return self._call(messages, "create_payment_link", {"order_id": result["id"]})
            return self._reply(self._summary(result, form, lang), lang)
        if last.tool_name == "create_payment_link":
            captured = _tool_result(messages, "capture_lead")
            summary = self._summary(captured, _order(messages, context), lang)
            if result.get("paid"):
                return self._reply(f"{summary}\n{texts['already_paid']}", lang)
            if "error" in result:  # no online payment: the shop calls, as the summary says
                return self._reply(summary, lang)
            total = format_price(Decimal(str(result["amount"])), str(result["currency"]), lang)
            return self._reply(f"{summary}\n{texts['pay'].format(total=total)}", lang)
        if last.tool_name == "link_account":
            return self._reply(texts["link_failed" if "error" in result else "link_sent"], lang)
        if last.tool_name == "verify_link":
            return self._reply(_link_outcome(result, lang), lang)
        if last.tool_name == "schedule_reminder":
            if "error" not in result:
                return self._reply(texts["reminder_set"].format(when=result["when"]), lang)
            understood = "when not understood" not in str(result["error"])
            return self._reply(texts["reminder_failed" if understood else "reminder_when"], lang)
        if last.tool_name == "request_human":
            if result.get("opens"):  # the shop is closed: say when someone will answer
                return self._reply(texts["handoff_closed"].format(opens=result["opens"]), lang)
            return self._reply(texts["handoff"], lang)
        products = result.get("products") or ([result] if "variants" in result else [])
        form = _order(messages, context)
        if form is not None and "capture_lead" in offered:
            return self._order_step(messages, form, products, lang)
        user = next((m.text for m in reversed(messages) if m.role == "user"), "")
        intent = intent_of(user)
        if intent in ("hesitation", "variant"):
            return self._product_followup(messages, user, intent, offered, context, lang)
        if not products:
            return self._reply(texts["none"], lang)
        items = [_product_item(p, Decimal(str(p["price"]))) for p in products[:3]]
        return self._reply(_product_list(items, lang) + "\n" + texts["order_hint"], lang)

    def _summary(self, result: Mapping[str, Any], form: OrderForm | None, lang: str) -> str:
        """The order ``capture_lead`` returned, read back (a draft) or confirmed."""
        texts = TEXTS[lang]
        draft = result.get("status") == "draft"
        phone = result["phone"]
        if form is not None and form.known_phone and draft:
            phone = texts["other_phone" if form.other_phone else "channel_phone"].format(
                phone=phone
            )
        variant = f" ({result['variant']})" if result.get("variant") else ""
        total = format_price(Decimal(str(result["total"])), result["currency"], lang)
        return texts["readback" if draft else "confirm"].format(
            name=result["name"],
            quantity=result["quantity"],
            title=result["product_title"],
            variant=variant,
            total=total,
            phone=phone,
            address=result["address"],
        )

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
            question = self._ask(form.missing(), lang, wanted)
            if _named_before(messages, str(product["title"])):
                return question
            # The first answer to an order names what is ordered and its catalogue price.
            chosen = choice.variant or product
            price = format_price(Decimal(str(chosen["price"])), str(product["currency"]), lang)
            named = texts["ordering"].format(title=product["title"], price=price)
            return self._reply(f"{named}\n{question.text}", lang)
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


_LINK_WORDS = re.compile(
    r"\b(?:lier|liez|relier|reliez|relie|associer|associez|link|connect)\b"
    r".*\b(?:compte|account|whatsapp|numero|number)\b"
)
_PHONE = re.compile(r"\+?\d[\d .-]{6,}\d")


def _link_request(user: str) -> str | None:
    """The number in a request to link this conversation to a WhatsApp number, if it is one."""
    if not _LINK_WORDS.search(fold(user)):
        return None
    found = _PHONE.search(user)
    return found.group() if found else None


def _link_outcome(result: Mapping[str, Any], lang: str) -> str:
    texts = TEXTS[lang]
    if result.get("linked"):
        return texts["linked"]
    reason = result.get("reason")
    if reason == "wrong_code":
        return texts["wrong_code"].format(tries=result.get("tries_left", 0))
    if reason == "void":
        return texts["code_void"]
    if reason == "expired":
        return texts["code_expired"]
    return texts["no_code"]


def _order(messages: Sequence[ChatMessage], context: Retrieved) -> OrderForm | None:
    """The open order in the conversation, read from its messages (``shared.order_form``)."""
    return read_order(
        [(m.role, m.text) for m in messages if m.role in ("user", "assistant") and m.text],
        context.phone_region,
        starts_order=wants_to_buy,
        known_phone=context.known_phone or None,
    )


def _tool_result(messages: Sequence[ChatMessage], tool_name: str) -> dict[str, Any]:
    """What the last call of ``tool_name`` returned this turn."""
    found = next(
        (m for m in reversed(messages) if m.role == "tool" and m.tool_name == tool_name), None
    )
    return _json(found.text) if found is not None else {}


def _named_before(messages: Sequence[ChatMessage], title: str) -> bool:
    """Whether an earlier reply of the assistant named ``title``."""
    return any(m.role == "assistant" and title in m.text for m in messages)


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


# --- the product in question --------------------------------------------------------------

# A retrieved product counts as named by the message when a word of its title is in it, or when
# it matched this strongly (BM25) without one.
NAMED_PRODUCT_SCORE = 6.0
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
# Option names that hold a size or a colour, folded.
_SIZE_OPTIONS = frozenset({"taille", "pointure", "size", "shoe size", "age", "longueur", "length"})
_COLOUR_OPTIONS = frozenset({"couleur", "coloris", "color", "colour", "teinte"})


def _named_product(user: str, context: Retrieved) -> dict[str, Any] | None:
    if not context.products:
        return None
    product, score = context.products[0]
    if score >= NAMED_PRODUCT_SCORE or set(tokens(str(product["title"]))) & set(tokens(user)):
        return product
    return None


def _last_shown_title(messages: Sequence[ChatMessage]) -> str | None:
    """The first product the latest reply that showed products named (in bold)."""
    for message in reversed(messages[:-1]):
        if message.role == "assistant" and (match := _BOLD_RE.search(message.text)):
            return match.group(1)
    return None


def _turn_product(messages: Sequence[ChatMessage]) -> dict[str, Any] | None:
    """The product ``get_product`` gave since the customer's last message, if any."""
    for message in reversed(messages):
        if message.role == "user":
            return None
        if message.role == "tool" and message.tool_name == "get_product":
            result = _json(message.text)
            return result if "variants" in result else None
    return None


def _in_language(text: str, lang: str) -> str:
    """Of a shop text written in several languages ("Livraison offerte. / Free delivery."), the
    part in ``lang``; the whole text when no part is."""
    return next((part for part in text.split(" / ") if language_of(part) == lang), text)


def _cheaper(reference: dict[str, Any], found: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The best match of ``found`` that is another product, in stock and cheaper."""
    price = Decimal(str(reference["price"]))
    return next(
        (
            p
            for p in found
            if p["id"] != reference["id"]
            and p.get("available", True)
            and Decimal(str(p["price"])) < price
        ),
        None,
    )


def _variant_answer(product: dict[str, Any], user: str, lang: str) -> str:
    """Sizes, colours or stock of ``product`` from its variants, as the customer asked."""
    texts = TEXTS[lang]
    title = str(product["title"])
    variants = product.get("variants") or []
    asked = variant_asked(user) or "stock"
    in_stock = [v for v in variants if v.get("available", True)]
    if not in_stock:
        return texts["all_sold_out"].format(title=title)
    values = _values_of(in_stock, asked)
    if not values:  # one model only
        return texts["available"].format(title=title)
    listed = ", ".join(values)
    folded = fold(user)
    every = {fold(value): value for value in _values_of(variants, "stock")}
    named = next(
        (
            every[value]
            for value in sorted(every, key=len, reverse=True)
            if re.search(rf"(?<![\w']){re.escape(value)}(?![\w'])", folded)
        ),
        None,
    )
    if named is not None:
        having = [v for v in variants if named in _values_of([v], "stock")]
        if any(v.get("available", True) for v in having):
            return texts["has_value"].format(title=title, value=named)
        return texts["sold_out_value"].format(title=title, value=named, values=listed)
    if (wanted := size_named(user)) is not None:
        return texts["no_value"].format(title=title, value=wanted.upper(), values=listed)
    return texts["in_stock"].format(title=title, values=listed)


def _values_of(variants: Sequence[dict[str, Any]], asked: str) -> list[str]:
    """The distinct option values of ``variants`` for what was asked (sizes, colours), else
    every value and variant title."""
    names = {"size": _SIZE_OPTIONS, "colour": _COLOUR_OPTIONS}.get(asked, frozenset())
    values: list[str] = []
    for variant in variants:
        options: dict[str, str] = variant.get("options") or {}
        chosen = [v for k, v in options.items() if fold(k) in names]
        if not chosen:
            chosen = list(options.values()) or [
                part.strip() for part in str(variant.get("title", "")).split("/")
            ]
        values.extend(value for value in chosen if value and value not in values)
    return values


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


def _greeting(context: Retrieved, lang: str) -> str:
    """Welcome; a customer the shop remembers (a name from the channel alone is not enough: a
    first WhatsApp message has one) is welcomed back with what their memory holds."""
    texts, shop = TEXTS[lang], context.shop_name or "notre boutique"
    name = context.customer_name.split()[0] if context.customer_name.split() else ""
    if not (name and context.remembered):
        return texts["greeting"].format(shop=shop)
    said = [_said(fact, lang) for fact in context.remembered if not fact.startswith("name ")]
    facts = ", ".join(said)
    if not facts:
        return " ".join([texts["welcome_back"].format(name=name, shop=shop), texts["what_now"]])
    return " ".join(
        [
            texts["welcome_back"].format(name=name, shop=shop),
            texts["remembered"].format(facts=facts),
            texts["what_now"],
        ]
    )


# A preference as the memory keeps it ("size 40") as the customer reads it ("taille 40").
_PREFERENCE_WORDS = {
    "fr": {"size": "taille", "colour": "couleur", "budget": "budget", "language": "langue"},
    "en": {"size": "size", "colour": "colour", "budget": "budget", "language": "language"},
}


def _said(fact: str, lang: str) -> str:
    key, _, value = fact.rstrip(".").partition(" ")
    word = _PREFERENCE_WORDS[lang].get(key)
    return f"{word} {value}" if word and value else fact.rstrip(".")
