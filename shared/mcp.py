"""The shop's tools for AI agents, over MCP (JSON-RPC 2.0; ``functions/mcp_server.py`` carries it).

Stateless: no session, every request stands alone (any instance answers any call). Served:
``initialize`` (the handshake revisions of the protocol; a client asking for another gets our
latest), ``ping``, ``tools/list`` (the tools the API key's scopes allow) and ``tools/call``. The
tools are the assistant's own (``shared/tools``, their ``Args`` the input schemas) plus an FAQ
search and an order's status; an order is reached only through the customer the key is bound to,
or with the phone number the order was placed with. Every amount a tool returns is checked
against the catalogue (the price guard's ``PriceFacts``) before it leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from shared import log
from shared.apikeys import ApiKey, Scope
from shared.exceptions import InvalidInputError, NotFoundError, ScopeError, ToolError
from shared.models import Conversation, Lead, Shop
from shared.orders import get_order
from shared.price_guard import PriceFacts
from shared.tools.base import Tool, TurnContext, args_schema
from shared.tools.create_payment_link import CreatePaymentLink, CreatePaymentLinkArgs
from shared.tools.get_product import GetProduct
from shared.tools.search_products import SearchProducts

if TYPE_CHECKING:
    from shared.app import App

# The revisions with the ``initialize`` handshake, oldest first: the mcp SDK's
# HANDSHAKE_PROTOCOL_VERSIONS. Its newest revision, 2026-07-28, drops the handshake for a
# per-request envelope (``server/discover``); its clients fall back to ``initialize`` when
# ``server/discover`` is an unknown method, as here.
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_PROTOCOL_VERSION = PROTOCOL_VERSIONS[-1]
SERVER_INFO = {"name": "comptoir", "version": "1.0.0"}

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
FAQ_RESULTS = 3


class RpcError(Exception):
    """A JSON-RPC error answered to the request that caused it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Caller:
    """Who calls: the key's shop and grants, and the services a call needs."""

    app: App
    shop: Shop
    key: ApiKey
    now: float

    def allows(self, scope: Scope) -> bool:
        # Who may change orders may read them.
        granted = set(self.key.scopes)
        return scope in granted or (scope == "orders:read" and "orders:write" in granted)

    def context(self, conversation_id: str) -> TurnContext:
        """A turn's context for a tool: nothing of it is stored (the conversation is a shell
        naming the order's, which ``create_payment_link`` checks the order against)."""
        conversation = Conversation(id=conversation_id, created_at=self.now, updated_at=self.now)
        return TurnContext(
            shop=self.shop,
            store=self.app.store,
            catalog=self.app.chat.catalog.get(self.shop),
            conversation=conversation,
            channel="web",
            lang=self.shop.languages[0] if self.shop.languages else "fr",
            now=self.now,
            payments=self.app.payments,
        )


class OrderProof(BaseModel):
    """How an agent shows an order is its customer's when its key is bound to no customer."""

    phone: str | None = Field(
        None,
        description="The phone number the order was placed with (needed unless the API key "
        "is bound to the customer).",
    )


class SearchFaqArgs(BaseModel):
    query: str = Field(description="The customer's question, in their own words.")


class OrderStatusArgs(OrderProof):
    reference: str = Field(description="The order's reference (its id, as capture_lead gave it).")


class PaymentLinkArgs(CreatePaymentLinkArgs, OrderProof):
    pass


Run = Callable[[Caller, Any], dict[str, Any]]


@dataclass(frozen=True)
class McpTool:
    name: str
    description: str
    scope: Scope
    args: type[BaseModel]
    run: Run

    def listing(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": args_schema(self.args),
        }


def _catalogue_tool(tool: Tool) -> Run:
    def run(caller: Caller, args: BaseModel) -> dict[str, Any]:
        ctx = caller.context(f"mcp:{caller.key.id[:16]}")
        result = tool.run(ctx, args)
        guard_prices(result, ctx, ())
        return result

    return run


def _search_faq(caller: Caller, args: SearchFaqArgs) -> dict[str, Any]:
    catalog = caller.app.chat.catalog.get(caller.shop)
    found = catalog.search_faq(args.query, FAQ_RESULTS)
    entries = [{"question": e.question, "answer": e.answer, "lang": e.lang} for e, _ in found]
    return {"entries": entries} if entries else {"entries": [], "note": "no match"}


def owned_order(caller: Caller, reference: str, phone: str | None) -> Lead:
    """The order, if the caller may see it; the same ToolError whether it does not exist or
    belongs to someone else (a key must not tell which references exist)."""
    from shared.crm import normalise_phone  # lazy: phone number tables

    unknown = ToolError("no order with that reference for this customer")
    try:
        order = get_order(caller.app.store, caller.shop.id, reference.strip())
    except NotFoundError:
        raise unknown from None
    if caller.key.customer_id is not None:
        if order.customer_id != caller.key.customer_id:
            raise unknown
        return order
    if not phone:
        raise ToolError("phone: the phone number the order was placed with is required")
    try:
        typed = normalise_phone(phone, caller.shop.phone_region)
    except InvalidInputError:
        raise unknown from None
    if typed != order.phone:
        raise unknown
    return order


def _order_status(caller: Caller, args: OrderStatusArgs) -> dict[str, Any]:
    order = owned_order(caller, args.reference, args.phone)
    checkout = order.checkout
    return {
        "reference": order.id,
        "status": order.status,
        "product": order.product_title,
        "variant": order.variant_title,
        "quantity": order.quantity,
        "total": float(order.total),
        "currency": order.currency,
        "payment_url": checkout.url if checkout is not None and order.status != "paid" else None,
        "updated_at": order.updated_at,
    }


def _payment_link(caller: Caller, args: PaymentLinkArgs) -> dict[str, Any]:
    order = owned_order(caller, args.order_id, args.phone)
    ctx = caller.context(order.conversation_id)
    result = CreatePaymentLink().run(ctx, args)
    if ctx.payment is not None:
        product = ctx.catalog.products.get(order.product_id)
        ctx.show(*([product] if product is not None else []))
        guard_prices(result, ctx, ((order.product_id, ctx.payment.amount, ctx.payment.currency),))
        result["payment_url"] = ctx.payment.url
    return result


_SEARCH, _GET = SearchProducts(), GetProduct()
TOOLS: dict[str, McpTool] = {
    tool.name: tool
    for tool in (
        McpTool(_SEARCH.name, _SEARCH.description, "catalog:read", _SEARCH.Args,
                _catalogue_tool(_SEARCH)),
        McpTool(_GET.name, _GET.description, "catalog:read", _GET.Args, _catalogue_tool(_GET)),
        McpTool("search_faq", "Search the shop's FAQ (delivery, payment, returns, hours): the "
                "best entries with their answers.", "catalog:read", SearchFaqArgs, _search_faq),
        McpTool("get_order_status", "The status of one order (draft, confirmed, "
                "awaiting_payment, paid, fulfilled, cancelled...), its product, total and "
                "payment link.", "orders:read", OrderStatusArgs, _order_status),
        McpTool(CreatePaymentLink.name, "Make (or get back) the link where the customer pays a "
                "confirmed order, for its catalogue total.", "orders:write", PaymentLinkArgs,
                _payment_link),
    )
}  # fmt: skip

PRICE_KEYS = frozenset({"price", "compare_at_price", "amount"})


def guard_prices(
    result: dict[str, Any], ctx: TurnContext, orders: tuple[tuple[str, Decimal, str], ...]
) -> None:
    """Refuse a result stating an amount the catalogue does not (the chat's price guard, on
    data instead of prose): a tool is the one source of prices an agent may quote."""
    products = tuple(ctx.products.values())
    facts = PriceFacts(products=products, currency=ctx.shop.currency, orders=orders)
    allowed = facts.allowed_for(products)
    for value in _amounts(result):
        if Decimal(str(value)).normalize() not in allowed:
            log.log_event("price_guard", outcome="mcp_refused")
            raise ToolError("a price could not be checked against the catalogue")


def _amounts(data: Any) -> list[int | float]:
    if isinstance(data, dict):
        return [
            found
            for key, value in data.items()
            for found in (
                [value] if key in PRICE_KEYS and isinstance(value, int | float) else _amounts(value)
            )
        ]
    if isinstance(data, list):
        return [found for item in data for found in _amounts(item)]
    return []


def handle(caller: Caller, payload: Any) -> Any:
    """The answer to a JSON-RPC message or batch: a response, a list of them, or None when
    there is nothing to answer (notifications and responses only)."""
    if isinstance(payload, list):
        if not payload:
            return _error(None, INVALID_REQUEST, "an empty batch")
        answers = [a for a in (_answer(caller, m) for m in payload) if a is not None]
        return answers or None
    return _answer(caller, payload)


def _answer(caller: Caller, message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
    request_id = message.get("id")
    if "method" not in message:  # a response (to a request we never send): nothing to say
        return None if "result" in message or "error" in message else _invalid(request_id)
    method, params = message["method"], message.get("params", {})
    valid_id = request_id is None or (
        isinstance(request_id, str | int) and not isinstance(request_id, bool)
    )
    if not isinstance(method, str) or not isinstance(params, dict) or not valid_id:
        return _invalid(request_id if valid_id else None)
    if "id" not in message:  # a notification: never answered
        return None
    try:
        return {"jsonrpc": "2.0", "id": request_id, "result": _call(caller, method, params)}
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message)


def _invalid(request_id: Any) -> dict[str, Any]:
    return _error(
        request_id,
        INVALID_REQUEST,
        "a request has a string method, object params and a string or number id",
    )


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _call(caller: Caller, method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        asked = params.get("protocolVersion")
        if not isinstance(asked, str):
            raise RpcError(INVALID_PARAMS, "protocolVersion: a string is required")
        return {
            "protocolVersion": asked if asked in PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
            "instructions": f"The tools of the shop {caller.shop.name or caller.shop.id}: "
            "quote only prices and products the tools return.",
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [t.listing() for t in TOOLS.values() if caller.allows(t.scope)]}
    if method == "tools/call":
        return _call_tool(caller, params)
    raise RpcError(METHOD_NOT_FOUND, f"no method {method[:80]!r}")


def _call_tool(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments", {})
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        raise RpcError(INVALID_PARAMS, f"unknown tool {str(name)[:80]!r}")
    if not caller.allows(tool.scope):
        raise ScopeError(f"the API key does not grant {tool.scope}, which {tool.name} needs")
    if not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "arguments: an object is required")
    try:
        args = tool.args.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise RpcError(INVALID_PARAMS, f"invalid arguments: {problems}") from None
    try:
        result = tool.run(caller, args)
    except ToolError as exc:  # what the agent should read and recover from
        return {"content": [{"type": "text", "text": str(exc)}], "isError": True}
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return {"content": [{"type": "text", "text": text}], "structuredContent": result}
