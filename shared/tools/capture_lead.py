"""``capture_lead``: record an order in the CRM, first as a draft, then confirmed.

Every field the model passes is checked, and each error names the field so the model can ask the
customer for exactly that (these texts are for the model: the offline responder words its own for
customers). Prices come from the catalogue, never from the model.

An order is read back before it counts: the first call (``confirmed`` false) records a "draft"
lead and returns its summary, total included, for the model to read back; once the customer
agrees, the same call with ``confirmed`` true makes it "confirmed": the shop's to handle, and
payable (``create_payment_link``). Both update the conversation's one lead for the product in
place (``crm.save_lead``), so a correction between them changes the draft, and the shop also
sees what was never confirmed.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from shared import conversations, crm
from shared.catalog.retrieval import words
from shared.exceptions import InvalidPhoneError, ToolError
from shared.ids import new_sortable_id
from shared.models import Lead, OrderStatus, Product, StatusChange, Variant
from shared.order_form import mention
from shared.tools.base import Tool, TurnContext

NAME_CHARS = 100
ADDRESS_CHARS = 300
NOTES_CHARS = 500
MAX_QUANTITY = 100


class CaptureLeadArgs(BaseModel):
    name: str = Field(description="The customer's name.")
    phone: str | None = Field(
        None,
        description=(
            "The customer's phone number, local or international form. Leave empty on WhatsApp: "
            "the number they write from is used unless they give another one."
        ),
    )
    address: str = Field(description="The delivery address.")
    product_id: str = Field(description="A product id returned by search_products.")
    variant: str | None = Field(
        None, description="The chosen variant: its id, title or option value (size, colour...)."
    )
    # Bounds shown to the model; checked in run() so an error names the field.
    quantity: int = Field(
        1, description="How many.", json_schema_extra={"minimum": 1, "maximum": MAX_QUANTITY}
    )
    notes: str | None = Field(None, description="Anything else the shop should know.")
    confirmed: bool = Field(
        False,
        description=(
            "False: record a draft and read the returned summary back to the customer. True: "
            "only after the customer said the summary is right."
        ),
    )


def _text(value: str, field: str, limit: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise ToolError(f"{field} is empty: ask the customer for it")
    if len(text) > limit:
        raise ToolError(f"{field} is too long (at most {limit} characters)")
    return text


def _words(text: str) -> str:
    """Order-, case- and accent-insensitive form: '40 / Noir' and 'noir 40' are the same."""
    return " ".join(sorted(words(text)))


def _names(variant: Variant) -> set[str]:
    """Every way a customer may name a variant: id, title, options together or one value."""
    options = variant.options.items()
    return {
        _words(variant.id),
        _words(variant.title),
        _words(" ".join(variant.options.values())),
        *(_words(value) for _, value in options),
        *(_words(f"{option} {value}") for option, value in options),
    }


def pick_variant(product: Product, wanted: str) -> Variant:
    key = _words(wanted)
    matches = [v for v in product.variants if key in _names(v)] if key else []
    if key and not matches:  # "rouge" for "Red", "size M": a value named another way
        matches = [
            v
            for v in product.variants
            if v.options and all(mention(value, wanted) >= 0 for value in v.options.values())
        ]
    if len(matches) == 1:
        return matches[0]
    if len(product.variants) == 1:
        raise ToolError(
            f"variant: {product.title} comes in one version only; leave variant empty and put "
            "the customer's wish in notes"
        )
    choices = ", ".join(repr(v.title or v.id) for v in product.variants)
    problem = "matches several variants" if matches else "matches no variant"
    raise ToolError(f"variant {wanted!r} {problem} of {product.id}; choose one of: {choices}")


def _label(product: Product, variant: Variant | None) -> str | None:
    """How the customer and the shop name the variant; None when there was nothing to choose."""
    if variant is None or len(product.variants) == 1:
        return None
    return variant.title or " / ".join(variant.options.values()) or variant.id


class CaptureLead(Tool):
    name = "capture_lead"
    description = (
        "Record the customer's order once you have their name, phone number, delivery address, "
        "the product and, if it has several variants, the variant. The shop confirms by phone. "
        "Repeat the returned total to the customer."
    )
    Args = CaptureLeadArgs

    def run(self, ctx: TurnContext, args: CaptureLeadArgs) -> dict[str, Any]:
        name = _text(args.name, "name", NAME_CHARS)
        address = _text(args.address, "address", ADDRESS_CHARS)
        phone = _phone(ctx, args.phone)
        product = ctx.catalog.products.get(args.product_id)
        if product is None:
            raise ToolError(
                f"product_id: unknown product {args.product_id!r}; use an id from search_products"
            )
        if not 1 <= args.quantity <= MAX_QUANTITY:
            raise ToolError(f"quantity must be between 1 and {MAX_QUANTITY}")
        notes = [" ".join(args.notes.split())[:NOTES_CHARS]] if args.notes else []

        variant = None
        if args.variant and args.variant.strip():
            variant = pick_variant(product, args.variant)
        elif len(product.variants) == 1:
            variant = product.variants[0]
        if variant is not None and not variant.available:
            raise ToolError(f"variant: {variant.title or product.title} is out of stock")
        if not product.available:
            raise ToolError(f"product_id: {product.title} is out of stock")
        if variant is None:
            # Allowed, to be settled when the shop calls back: priced at the lowest available.
            unit_price = min(v.price for v in product.variants if v.available)
            notes.insert(0, "variant not chosen yet")
        else:
            unit_price = variant.price

        # The typed phone is a claim: it goes on the lead and this conversation's own contact.
        customer, ctx.conversation = crm.contact_for_order(
            ctx.store, ctx.shop.id, ctx.conversation, phone, name
        )
        now = time.time()
        status: OrderStatus = "confirmed" if args.confirmed else "draft"
        lead = crm.save_lead(
            ctx.store,
            ctx.shop.id,
            Lead(
                id=new_sortable_id(),
                customer_id=customer.id,
                conversation_id=ctx.conversation.id,
                channel=ctx.channel,
                name=name,
                phone=phone,
                address=address,
                product_id=product.id,
                product_title=product.title,
                variant_id=variant.id if variant else None,
                variant_title=_label(product, variant),
                quantity=args.quantity,
                unit_price=unit_price,
                currency=product.currency,
                total=unit_price * args.quantity,
                notes="; ".join(notes),
                status=status,
                history=[StatusChange(status=status, at=now, actor="customer")],
                campaign_id=conversations.answering_campaign(ctx.conversation, now),
                created_at=now,
                updated_at=now,
            ),
        )
        ctx.show(product)
        ctx.lead = lead
        result: dict[str, Any] = {**crm.lead_json(lead), "confirmation": True}
        if variant is None:
            result["note"] = "no variant chosen: the lowest price is shown; ask which one"
        if not args.confirmed:
            result["next"] = "read this summary back; call again with confirmed=true once agreed"
        return result


def _phone(ctx: TurnContext, typed: str | None) -> str:
    """The typed number in E.164, or the one the channel verified (WhatsApp) when none was."""
    if typed is None or not typed.strip():
        customer = crm.conversation_customer(ctx.store, ctx.shop.id, ctx.conversation)
        if customer is not None and customer.phone_verified and customer.phone:
            return customer.phone
        raise ToolError("phone is empty: ask the customer for it")
    try:
        return crm.normalise_phone(typed, ctx.shop.phone_region)
    except InvalidPhoneError as exc:
        raise ToolError(f"phone: {exc}; ask the customer for their number again") from exc
