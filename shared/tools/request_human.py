"""``request_human``: hand the conversation to the shop's staff."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared import conversations, hours
from shared.tools.base import Tool, TurnContext

REASON_CHARS = 300


class RequestHumanArgs(BaseModel):
    reason: str = Field(description="Why a person from the shop is needed, in a short sentence.")


class RequestHuman(Tool):
    name = "request_human"
    description = (
        "Hand the conversation to a person from the shop when the customer asks for one, "
        "complains, or needs something you cannot do. You stop answering afterwards: tell the "
        "customer someone from the shop will reply here. If the result says the shop is closed "
        "(shop_open false), say so and that someone will answer as soon as it opens "
        "(opens: when, already in the customer's language)."
    )
    Args = RequestHumanArgs

    def run(self, ctx: TurnContext, args: RequestHumanArgs) -> dict[str, Any]:
        reason = args.reason.strip()[:REASON_CHARS] or "the customer asked for a person"
        # Written now, not at the end of the turn: a message arriving meanwhile already finds
        # the conversation with the shop. ``handoff_at`` starts the wait before the assistant
        # takes the conversation back (HANDOFF_RELEASE_MINUTES).
        ctx.conversation = conversations.hand_off(
            ctx.store, ctx.shop.id, ctx.conversation.id, reason, ctx.now
        )
        ctx.handoff_reason = reason
        shop = ctx.shop
        opening = hours.next_opening(shop.business_hours, shop.timezone, ctx.now)
        if opening is None:
            return {"handed_off": True}
        opens = hours.when(opening, ctx.now, ctx.lang)
        return {"handed_off": True, "shop_open": False, "opens": opens}
