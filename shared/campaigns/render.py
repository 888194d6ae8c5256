"""One campaign message for one customer: the brief rendered with their fields, personalised by
the shop's model and checked by the price guard, or the WhatsApp template's variables.

The brief is the operator's Jinja2, rendered in a sandbox with the customer's, the order's, the
product's and the shop's fields and ``lang``, the customer's language (a missing one renders
empty). With a real model the brief is rewritten for the customer (their name, their order, what
they last saw); a rewrite that states an amount the catalogue does not, or that fails, is dropped
for the rendered brief. The offline provider sends the rendered brief as it is. Every text ends
with the shop's opt-out hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from shared import marketing
from shared.campaigns.models import FIELDS, Campaign, Recipient, TemplateMessage
from shared.exceptions import ComptoirError, InvalidInputError
from shared.money import format_price
from shared.price_guard import PriceFacts
from shared.prompts import render_named

if TYPE_CHECKING:
    import jinja2

    from shared.llm import LLM
    from shared.models import Customer, Lead, Product, Shop, WhatsAppTemplate

PERSONALISED_CHARS = 700  # a rewrite longer than this is not a short marketing message
MEMORY_CHARS = 600  # of what is remembered of the customer, in the prompt


@dataclass(frozen=True)
class Subject:
    """What one message may speak of."""

    shop: Shop
    recipient: Recipient
    customer: Customer | None
    order: Lead | None
    product: Product | None
    memory: str = ""  # what the shop remembers of the customer (only read for a real model)


def fields(subject: Subject) -> dict[str, str]:
    """The values of ``models.FIELDS`` for this message."""
    shop, order, product = subject.shop, subject.order, subject.product
    name = (subject.customer.name if subject.customer else "") or subject.recipient.name
    lang = subject.recipient.lang
    return {
        "customer.name": name,
        "customer.first_name": name.split()[0] if name.split() else "",
        "shop.name": shop.name,
        "shop.url": shop.url,
        "shop.contact": shop.contact,
        "order.id": order.id if order else "",
        "order.product": order.product_title if order else "",
        "order.variant": (order.variant_title or "") if order else "",
        "order.quantity": str(order.quantity) if order else "",
        "order.total": format_price(order.total, order.currency, lang) if order else "",
        "product.title": product.title if product else "",
        "product.url": (product.url or (f"{shop.url}/products/{product.id}" if shop.url else ""))
        if product
        else "",
        "product.price": format_price(product.price, product.currency, lang) if product else "",
    }


def _nested(values: dict[str, str]) -> dict[str, dict[str, str]]:
    nested: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        group, name = key.split(".", 1)
        nested.setdefault(group, {})[name] = value
    return nested


@cache
def _sandbox() -> jinja2.sandbox.SandboxedEnvironment:
    import jinja2.sandbox  # lazy: only a campaign run pays for it

    return jinja2.sandbox.SandboxedEnvironment(autoescape=False)


def check_brief(brief: str) -> None:
    """InvalidInputError naming the problem if ``brief`` is not a template that renders."""
    import jinja2

    try:
        _sandbox().from_string(brief).render(lang="fr", **_nested(dict.fromkeys(FIELDS, "x")))
    except jinja2.TemplateError as exc:
        raise InvalidInputError(f"the brief is not a valid template: {exc}") from None


def brief_text(campaign: Campaign, subject: Subject) -> str:
    """The brief rendered for this customer, without the opt-out hint. ``lang`` is the
    customer's language (the recipes' briefs choose their wording by it)."""
    template = _sandbox().from_string(campaign.message.brief)
    try:
        return template.render(lang=subject.recipient.lang, **_nested(fields(subject))).strip()
    except Exception as exc:  # noqa: BLE001 - the operator's template failing for one customer
        raise InvalidInputError(f"the brief does not render ({type(exc).__name__})") from None


def personalised(llm: LLM | None, campaign: Campaign, subject: Subject, rendered: str) -> str:
    """The model's rewrite of ``rendered`` for this customer, if it says no amount the shop
    does not; else ``rendered`` (always, without a model that writes prose)."""
    from shared.llm import ChatMessage, LLMRequest

    if not campaign.message.personalise or llm is None:
        return rendered
    shop = subject.shop
    products = tuple(p for p in (subject.product,) if p is not None)
    orders = (
        ((subject.order.product_id, subject.order.total, subject.order.currency),)
        if subject.order
        else ()
    )
    prompt = render_named(
        "campaign.j2",
        shop=shop,
        lang=subject.recipient.lang,
        fields=fields(subject),
        memory=subject.memory,
        brief=rendered,
    )
    try:
        completion = llm.complete(
            LLMRequest(
                messages=[ChatMessage("system", prompt), ChatMessage("user", rendered)],
                context={"task": "campaign"},
            )
        )
    except ComptoirError:
        return rendered
    text = completion.text.strip()
    facts = PriceFacts(
        products=products, currency=shop.currency, shop_texts=(shop.offer, rendered), orders=orders
    )
    if not text or len(text) > PERSONALISED_CHARS or facts.problems(text):
        return rendered
    return text


def with_hint(shop: Shop, lang: str, text: str) -> str:
    return f"{text}\n\n{marketing.optout_hint(shop, lang)}"


def template_for(message: TemplateMessage, subject: Subject) -> WhatsAppTemplate:
    """The approved template with its body variables filled in."""
    from shared.models import WhatsAppTemplate

    values = fields(subject)
    components: list[dict[str, Any]] = []
    if message.variables:
        parameters = [{"type": "text", "text": values[v] or "-"} for v in message.variables]
        components.append({"type": "body", "parameters": parameters})
    return WhatsAppTemplate(name=message.name, language=message.language, components=components)


def template_preview(message: TemplateMessage, subject: Subject) -> str:
    """How a template message reads in a preview: its name and values."""
    values = fields(subject)
    filled = ", ".join(f"{v}={values[v]!r}" for v in message.variables)
    return f"[template {message.name} ({message.language})" + (f": {filled}]" if filled else "]")
