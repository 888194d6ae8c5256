"""Tools the assistant can call: one module each, a fixed contract, registered in
``shared.tools``.

A tool declares its arguments as a pydantic model (the one definition every provider's schema is
derived from) and returns a JSON-able dict. Anything it wants the turn to show or record (product
cards, a captured lead, a handoff) goes on the ``TurnContext``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from shared.catalog.retrieval import CatalogIndex
from shared.llm import ToolSpec
from shared.models import Channel, Conversation, Lead, Product, Shop
from shared.store import Store

if TYPE_CHECKING:
    from shared.checkout import PaymentLink, Payments
    from shared.linking import Linking
    from shared.tools.web_search import SearXNG


@dataclass
class TurnContext:
    shop: Shop
    store: Store
    catalog: CatalogIndex
    conversation: Conversation
    channel: Channel
    lang: str
    # Filled by tools during the turn:
    products: dict[str, Product] = field(
        default_factory=dict
    )  # seen by the model, for cards and the price guard
    lead: Lead | None = None  # the lead captured this turn
    handoff_reason: str | None = None  # set when the customer asked for a human
    now: float = field(default_factory=time.time)  # the turn's clock (the shop's hours, handoffs)
    payments: Payments | None = None  # makes payment links; None: the turn cannot take payments
    payment: PaymentLink | None = None  # the payment link made this turn: the reply's button
    linking: Linking | None = None  # sends and checks link codes; None: the turn cannot link
    # The customer's memory holds more than the prompt shows: ``recall`` can search the rest.
    memory_beyond_prompt: bool = False
    web_search: SearXNG | None = None  # SEARXNG_URL's instance; None: not configured
    deadline: float | None = None  # time.monotonic() by which the turn's model calls end

    def show(self, *products: Product) -> None:
        for product in products:
            self.products.setdefault(product.id, product)


def _compact(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional field as models read it, in fewer tokens: ``{"type": "string"}`` rather
    than pydantic's ``anyOf`` with null and ``"default": null`` (it is not required anyway)."""
    variants = prop.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        kept = next(v for v in variants if v != {"type": "null"})
        prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **kept}
    if prop.get("default", ...) is None:
        prop = {k: v for k, v in prop.items() if k != "default"}
    return prop


def args_schema(args: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, without pydantic's titles, optional fields
    compacted (what models and MCP clients read)."""
    schema = args.model_json_schema()
    schema.pop("title", None)
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        prop.pop("title", None)
        properties[name] = _compact(prop)
    return schema


class Tool(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[BaseModel]]

    @cached_property
    def spec(self) -> ToolSpec:
        """The tool as models see it, built once (tools are module-level singletons)."""
        return ToolSpec(self.name, self.description, args_schema(self.Args))

    def offered(self, ctx: TurnContext) -> bool:
        """Whether the model is offered the tool this turn (every tool's definition costs prompt
        tokens on every call)."""
        return True

    @abstractmethod
    def run(self, ctx: TurnContext, args: Any) -> dict[str, Any]:
        """Do the work; ``args`` is an instance of ``Args``. Raise ``ToolError`` for a failure the
        model should read and recover from."""
