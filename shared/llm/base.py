"""The LLM port: chat with tools, streaming, images in the input and usage accounting.

Providers translate these neutral types to their wire format and their errors to the
``LLMError`` family; the agent loop (``shared.agent``) only ever sees what is defined here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from shared.exceptions import LLMRequestError
from shared.models import FaqEntry, Product

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class Image:
    mime_type: str  # image/jpeg, image/png, image/webp
    data: bytes


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    text: str = ""
    images: tuple[Image, ...] = ()  # user messages only
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages that call tools
    tool_call_id: str = ""  # tool messages: the call they answer
    tool_name: str = ""  # tool messages: the tool that answered (Gemini needs it)


@dataclass(frozen=True)
class ToolSpec:
    """A tool as a model sees it; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, as it streams."""

    text: str


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found for this turn. Real models read it in the rendered prompt; the
    offline responder, which cannot read prose, gets it structured here."""

    products: list[tuple[Product, float]] = field(default_factory=list)
    faq: list[tuple[FaqEntry, float]] = field(default_factory=list)
    lang: str = "fr"
    shop_name: str = ""
    contact: str = ""
    offer: str = ""
    phone_region: str = "SN"


class LLM(ABC):
    """One provider and model. Implementations take an optional injected SDK client."""

    name: ClassVar[str]
    supports_images: bool = False
    supports_audio: bool = False  # ``transcribe`` works: voice notes can be answered like text
    model: str = ""

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        """The words spoken in ``audio``. Raises an ``LLMError`` subclass on failure; providers
        that can set ``supports_audio`` and override this."""
        raise LLMRequestError(f"{self.name}: no speech-to-text")

    @abstractmethod
    def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        retrieved: Retrieved | None = None,
    ) -> Completion:
        """One model call. Raises an ``LLMError`` subclass on failure."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        retrieved: Retrieved | None = None,
    ) -> Iterator[TextDelta | Completion]:
        """Text deltas as they come, then the whole Completion last.

        The default streams the whole text at once; providers with native streaming override.
        """
        completion = self.complete(messages, tools, retrieved=retrieved)
        if completion.text:
            yield TextDelta(completion.text)
        yield completion
