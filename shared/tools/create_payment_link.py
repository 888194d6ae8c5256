"""``create_payment_link``: a link where the customer pays a confirmed order.

The amount is never the model's: ``shared.checkout`` recomputes the order's total from the
catalogue and asks the shop's provider (``payment_provider``) for one checkout per order; a
second call gets the same link back, a paid order none. The link goes on the turn
(``TurnContext.payment``): the widget shows a "Pay" button, WhatsApp a URL button, Telegram an
inline URL button.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.checkout import AlreadyPaidError
from shared.exceptions import InvalidInputError, NotFoundError, ToolError
from shared.money import price_number
from shared.payments.exceptions import PaymentError
from shared.tools.base import Tool, TurnContext


class CreatePaymentLinkArgs(BaseModel):
    order_id: str = Field(description="The id capture_lead returned for the confirmed order.")


class CreatePaymentLink(Tool):
    name = "create_payment_link"
    description = (
        "Make the link where the customer pays their order online, once capture_lead confirmed "
        "it (confirmed=true). A button with the link is shown under your reply: tell the "
        "customer the amount returned and that they can pay with the button."
    )
    Args = CreatePaymentLinkArgs

    def run(self, ctx: TurnContext, args: CreatePaymentLinkArgs) -> dict[str, Any]:
        if ctx.payments is None:
            raise ToolError("online payment is not available: the shop will call the customer")
        try:
            link = ctx.payments.link(
                ctx.shop, args.order_id.strip(), ctx.catalog, ctx.now, ctx.conversation.id
            )
        except AlreadyPaidError:
            return {"order_id": args.order_id, "paid": True}
        except NotFoundError:
            raise ToolError(f"order_id: no order {args.order_id!r}: use capture_lead's") from None
        except InvalidInputError as exc:
            raise ToolError(f"order_id: {exc}") from None
        except PaymentError:
            # The provider's words stay in the logs' error type; the model gets what to say.
            raise ToolError("the payment service is unavailable: the shop will call") from None
        ctx.payment = link
        return {
            "order_id": link.order_id,
            "amount": price_number(link.amount),
            "currency": link.currency,
            "payment_button": True,
        }
