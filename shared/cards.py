"""A product as a card and a reply's "Pay" button, as JSON: what the widget shows under a reply
(``functions/chat.py``) and the console under the same message (``shared/admin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.models import PaymentButton, Product, Variant, card_variant
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
