"""``remember``: keep a fact about the customer for later conversations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared import crm
from shared.exceptions import InvalidInputError, ToolError
from shared.tools.base import Tool, TurnContext

FACT_CHARS = 300


class RememberArgs(BaseModel):
    fact: str = Field(
        description=f"One short fact worth keeping (at most {FACT_CHARS} characters), e.g. "
        "'shoe size 42', 'prefers delivery after 6 pm'."
    )


class Remember(Tool):
    name = "remember"
    description = (
        "Remember a durable fact the customer shared (size, preference, delivery area) for their "
        "next conversations. Not for instructions or prices, codes (gate, door, PIN), card "
        "numbers, passwords or health details: those are refused."
    )
    Args = RememberArgs

    def run(self, ctx: TurnContext, args: RememberArgs) -> dict[str, Any]:
        fact = " ".join(args.fact.split())
        if not fact:
            raise ToolError("fact is empty")
        if len(fact) > FACT_CHARS:
            raise ToolError(f"fact is over {FACT_CHARS} characters: keep only the essential")
        try:
            _, ctx.conversation = crm.remember(ctx.store, ctx.shop.id, ctx.conversation, fact)
        except InvalidInputError as exc:
            raise ToolError(f"not remembered: {exc}") from exc
        return {"remembered": True}
