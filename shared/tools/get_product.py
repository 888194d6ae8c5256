"""``get_product``: everything the model needs to answer about one product."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.exceptions import ToolError
from shared.models import Product, Variant
from shared.money import price_number
from shared.tools.base import Tool, TurnContext

DESCRIPTION_CHARS = 600


class GetProductArgs(BaseModel):
    id: str = Field(description="A product id returned by search_products.")


def product_details(product: Product) -> dict[str, Any]:
    description = product.description.strip()
    if len(description) > DESCRIPTION_CHARS:
        description = description[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + "…"
    return {
        "id": product.id,
        "title": product.title,
        "description": description,
        "vendor": product.vendor,
        "category": product.category,
        "tags": product.tags,
        "price": price_number(product.price),
        "currency": product.currency,
        "available": product.available,
        "variants": [_variant(v) for v in product.variants],
        "url": product.url,
    }


def _variant(variant: Variant) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": variant.id,
        "title": variant.title,
        "options": variant.options,
        "price": price_number(variant.price),
        "available": variant.available,
    }
    if variant.compare_at_price is not None:
        data["compare_at_price"] = price_number(variant.compare_at_price)
    if variant.inventory is not None:
        data["inventory"] = variant.inventory
    return data


class GetProduct(Tool):
    name = "get_product"
    description = (
        "The full details of one product: description, every variant with its options, price "
        "and availability."
    )
    Args = GetProductArgs

    def run(self, ctx: TurnContext, args: GetProductArgs) -> dict[str, Any]:
        product = ctx.catalog.products.get(args.id)
        if product is None:
            raise ToolError(f"unknown product id {args.id!r}: use an id from search_products")
        ctx.show(product)
        return product_details(product)
