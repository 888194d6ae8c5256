"""The LLM port: one turn in, one reply out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from shared.models import FaqEntry, Message, Product, Shop


@dataclass(frozen=True)
class LLMRequest:
    shop: Shop
    system: str  # the rendered prompt (persona, context, retrieved products and FAQ)
    history: list[Message]
    text: str  # the customer's new message
    lang: str
    products: list[tuple[Product, float]] = field(default_factory=list)  # retrieved, scored
    faq: list[tuple[FaqEntry, float]] = field(default_factory=list)  # retrieved with scores


@dataclass(frozen=True)
class LLMReply:
    text: str
    product_ids: list[str] = field(default_factory=list)  # products to show as cards


class LLM(ABC):
    name: ClassVar[str]

    @abstractmethod
    def reply(self, request: LLMRequest) -> LLMReply:
        """Answer the turn; raises LLMError when the provider fails."""
