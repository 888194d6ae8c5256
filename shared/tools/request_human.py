"""``request_human``: hand the conversation to the shop's staff."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared import crm
from shared.tools.base import Tool, TurnContext

REASON_CHARS = 300


class RequestHumanArgs(BaseModel):
    reason: str = Field(description="Why a person from the shop is needed, in a short sentence.")


class RequestHuman(Tool):
    name = "request_human"
    description = (
        "Hand the conversation to a person from the shop when the customer asks for one, "
        "complains, or needs something you cannot do. You stop answering afterwards: tell the "
        "customer someone from the shop will reply here."
    )
    Args = RequestHumanArgs

    def run(self, ctx: TurnContext, args: RequestHumanArgs) -> dict[str, Any]:
        reason = args.reason.strip()[:REASON_CHARS] or "the customer asked for a person"
        # Written now, not at the end of the turn: a message arriving meanwhile already finds
        # the conversation with the shop.
        ctx.conversation = crm.set_state(
            ctx.store, ctx.shop.id, ctx.conversation.id, "human", reason
        )
        ctx.handoff_reason = reason
        return {"handed_off": True}
