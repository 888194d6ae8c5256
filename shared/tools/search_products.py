"""``search_products``: find products in the shop's catalogue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared.models import Product, Shop
from shared.money import price_number
from shared.tools.base import Tool, TurnContext

MAX_RESULTS = 5
LANGUAGE_NAMES = {"fr": "French", "en": "English", "es": "Spanish", "pt": "Portuguese"}


class SearchProductsArgs(BaseModel):
    query: str = Field(description="What the customer is looking for, in their own words.")
    max_price: float | None = Field(
        None, description="Only products whose lowest price is at most this, in shop currency."
    )
    category: str | None = Field(None, description="Only this category or tag, e.g. 'chaussures'.")


def product_summary(product: Product) -> dict[str, Any]:
    """A product in few tokens; variants only when there is a choice to make."""
    summary: dict[str, Any] = {
        "id": product.id,
        "title": product.title,
        "price": price_number(product.price),
        "currency": product.currency,
        "available": product.available,
    }
    if len(product.variants) > 1:
        summary["variants"] = [
            {
                "id": v.id,
                "title": v.title,
                "price": price_number(v.price),
                "available": v.available,
                **({"options": v.options} if v.options else {}),
            }
            for v in product.variants
        ]
    summary["url"] = product.url
    return summary


class SearchProducts(Tool):
    name = "search_products"
    description = (
        "Search the shop's catalogue (typos and accents are tolerated). Returns up to 5 products "
        "with id, lowest price, availability and variants. Never quote a price or product that "
        "no tool returned."
    )
    Args = SearchProductsArgs

    def run(self, ctx: TurnContext, args: SearchProductsArgs) -> dict[str, Any]:
        # Decimal from the float's shortest repr: 19.99 stays 19.99, not its binary expansion.
        max_price = None if args.max_price is None else Decimal(str(args.max_price))
        found = ctx.catalog.search_products(
            args.query, MAX_RESULTS, max_price=max_price, category=args.category
        )
        products = [product for product, _ in found]
        ctx.show(*products)
        if not products:
            return {"products": [], "note": "no match", "hint": rewrite_hint(ctx.shop)}
        return {"products": [product_summary(p) for p in products]}


def rewrite_hint(shop: Shop) -> str:
    """What a model should try when a search finds nothing: the customer's words may not be the
    catalogue's language (its first language, ``Shop.languages``); a tool-calling model then
    searches again in that language, within the agent's step limit."""
    code = shop.languages[0] if shop.languages else "fr"
    language = LANGUAGE_NAMES.get(code, code)
    return (
        f"The catalogue is written in {language}: if the query was not, "
        f"search again with {language} words."
    )
