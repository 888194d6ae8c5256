"""A message's parts as JSON: its author, a product as a card and its "Pay" button, as the
widget shows them (``functions/chat.py``) and the console (``shared/admin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from shared.models import Message, PaymentButton, Product, Variant, card_variant
from shared.money import price_number

if TYPE_CHECKING:
    from shared.checkout import PaymentLink


def product_card(product: Product, variant: Variant | None = None) -> dict[str, Any]:
    """A product's card, offering ``variant`` (else the one ``card_variant`` picks)."""
    variant = variant or card_variant(product)
    # Shopify's own variant id (numeric, from products.json) lets the widget add to the cart.
    return {
        "id": product.id,
        "title": product.title,
        "price": price_number(product.price),
        "currency": product.currency,
        "url": product.url,
        "image": product.image,
        "variant_id": variant.id if variant.id.isdigit() else None,
    }


def payment_json(link: PaymentLink | PaymentButton) -> dict[str, Any]:
    """A reply's "Pay" button: where to pay, and how much."""
    return {"url": link.url, "amount": price_number(link.amount), "currency": link.currency}


def author(message: Message) -> Literal["customer", "assistant", "operator"]:
    """Who wrote ``message``: the customer, the assistant, or a person of the shop."""
    if message.role == "user":
        return "customer"
    return "operator" if message.operator is not None else "assistant"
