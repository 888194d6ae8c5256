"""``link_account`` and ``verify_link``: prove a web or Telegram conversation is the customer of
a WhatsApp number with a one-time code sent there (``shared/linking.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.exceptions import ConfigError, InvalidInputError, ToolError
from shared.tools.base import Tool, TurnContext


class LinkAccountArgs(BaseModel):
    phone: str = Field(description="The customer's WhatsApp number, as they gave it.")


class LinkAccount(Tool):
    name = "link_account"
    description = (
        "When the customer asks to link this conversation to their WhatsApp number (to find "
        "their orders and preferences): send a 6-digit code to that number on WhatsApp. "
        "Nothing is linked until they type the code here (then call verify_link)."
    )
    Args = LinkAccountArgs

    def offered(self, ctx: TurnContext) -> bool:
        return ctx.linking is not None and ctx.channel != "whatsapp"  # WhatsApp is verified

    def run(self, ctx: TurnContext, args: LinkAccountArgs) -> dict[str, Any]:
        if ctx.linking is None:
            raise ToolError("linking is not available here")
        try:
            ctx.conversation = ctx.linking.start(ctx.shop, ctx.conversation, args.phone, ctx.lang)
        except (InvalidInputError, ConfigError) as exc:
            raise ToolError(f"no code sent: {exc}") from exc
        return {"code_sent": True, "expires_in_minutes": 10}


class VerifyLinkArgs(BaseModel):
    code: str = Field(description="The 6-digit code the customer typed.")


class VerifyLink(Tool):
    name = "verify_link"
    description = (
        "Check the 6-digit code the customer received on WhatsApp after link_account; the "
        "right code links this conversation to that customer."
    )
    Args = VerifyLinkArgs

    def offered(self, ctx: TurnContext) -> bool:
        pending = ctx.conversation.pending_link
        return ctx.linking is not None and pending is not None and bool(pending.code_hash)

    def run(self, ctx: TurnContext, args: VerifyLinkArgs) -> dict[str, Any]:
        if ctx.linking is None:
            raise ToolError("linking is not available here")
        try:
            verified = ctx.linking.verify(ctx.shop, ctx.conversation, args.code)
        except (InvalidInputError, ConfigError) as exc:
            raise ToolError(f"not linked: {exc}") from exc
        if verified.conversation is not None:
            ctx.conversation = verified.conversation
        result: dict[str, Any] = {"linked": verified.outcome == "linked"}
        if verified.outcome != "linked":
            result["reason"] = verified.outcome
            result["tries_left"] = verified.tries_left
        return result
