"""The LLM port: chat with tools, streaming, images in the input, usage accounting, embeddings.

A provider takes one ``LLMRequest`` per call, the way an httpx transport takes one request: what
to send (messages, tools) and the request's ``context``, plain data a provider may read or
ignore. Providers translate these neutral types to their wire format and their errors to the
``LLMError`` family; the agent loop (``shared.agent``) only ever sees what is defined here. The
port knows nothing of shops, catalogues or money: the domain puts what a provider needs into the
messages (the rendered prompt) or the context, as plain data.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from shared.exceptions import EmbeddingsUnavailableError, LLMRequestError, LLMTimeoutError

# A call, retry or fallback with less time than this left before the request's deadline does
# not start: it could not answer in time.
MIN_CALL_SECONDS = 0.5

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
class LLMRequest:
    """One model call. ``context`` is plain data about the turn (strings, numbers, lists and
    mappings of them, never the domain's objects): providers that read the rendered prompt
    ignore it; one that cannot read prose (the offline rules provider) reads its keys there.
    ``deadline`` (a ``time.monotonic()`` value) is when the caller stops waiting: a provider
    gives up on the call then, even before its own timeout (``timeout``)."""

    messages: Sequence[ChatMessage]
    tools: Sequence[ToolSpec] = ()
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    deadline: float | None = None

    def __post_init__(self) -> None:
        # A snapshot: the agent keeps appending to its conversation after the call.
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "tools", tuple(self.tools))

    def time_left(self) -> float | None:
        """Seconds until the deadline (negative once passed); None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def timeout(self, limit: float) -> float:
        """The seconds this call may take: the provider's ``limit`` (LLM_TIMEOUT), or the time
        left before the deadline when that is shorter. Raises ``LLMTimeoutError`` once the
        deadline has passed, without calling."""
        left = self.time_left()
        if left is None:
            return limit
        if left <= 0:
            raise LLMTimeoutError("the call's deadline has passed")
        return min(limit, left)


class LLM(ABC):
    """One provider and model. Implementations take an optional injected SDK client."""

    name: ClassVar[str]
    supports_images: bool = False
    supports_audio: bool = False  # ``transcribe`` works: voice notes can be answered like text
    supports_embeddings: bool = False  # ``embed`` works
    model: str = ""
    embed_model: str = ""  # the model behind ``embed``: vectors of two models do not compare
    # The vectors' length asked of ``embed_model`` (None: the model's own); nor do vectors of
    # two lengths.
    embed_dimensions: int | None = None
    embed_batch_size: int = 100  # texts per embeddings request, the provider's limit

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        """The words spoken in ``audio``. Raises an ``LLMError`` subclass on failure; providers
        that can set ``supports_audio`` and override this."""
        raise LLMRequestError(f"{self.name}: no speech-to-text")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (``embed_model``'s), ``embed_batch_size`` texts a
        request. Raises an ``LLMError`` subclass on failure, ``EmbeddingsUnavailableError`` when
        the provider has none; providers that can set ``supports_embeddings`` and override
        ``_embed_batch``."""
        if not self.supports_embeddings:
            raise EmbeddingsUnavailableError(f"{self.name}: no embeddings")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.embed_batch_size):
            vectors += self._embed_batch(list(texts[start : start + self.embed_batch_size]))
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        """One request's vectors, one per text, in order."""
        raise EmbeddingsUnavailableError(f"{self.name}: no embeddings")

    @abstractmethod
    def complete(self, request: LLMRequest) -> Completion:
        """One model call. Raises an ``LLMError`` subclass on failure."""

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        """Text deltas as they come, then the whole Completion last.

        The default streams the whole text at once; providers with native streaming override.
        """
        completion = self.complete(request)
        if completion.text:
            yield TextDelta(completion.text)
        yield completion
