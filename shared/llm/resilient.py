"""Retries with backoff, then the next provider: ``LLM_FALLBACKS`` made real.

A retryable failure (timeout, 429, 5xx, unreachable) is retried on the same provider with
exponential backoff and full jitter; a request the provider refuses (4xx) moves on at once.
When every provider has failed, the last error is raised and the caller answers with a holding
reply. A stream that fails after its first piece of text is not replayed elsewhere (the
customer has seen part of it): the error goes to the caller, which replaces the text. With a
``budget``, no new attempt starts once a call has spent it (an attempt in flight still has its
provider timeout). A request's ``deadline`` bounds everything: each attempt's timeout is the time
left (the provider cuts it there), and no retry or fallback starts with less than
``MIN_CALL_SECONDS`` left, so a turn ends with a holding reply before the platform cuts it off.

Embeddings go to the first provider of the chain that has them, retried the same way but never
handed to a fallback: vectors of two models do not compare, so an index built with one model is
searched with that model or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

from shared.backoff import Backoff
from shared.exceptions import LLMError, LLMTimeoutError
from shared.llm.base import LLM, MIN_CALL_SECONDS, Completion, LLMRequest, TextDelta


class ResilientLLM(LLM):
    name: ClassVar[str] = "resilient"

    def __init__(
        self,
        chain: Sequence[LLM],
        *,
        retries: int = 2,
        base_delay: float = 0.25,
        max_delay: float = 4.0,
        budget: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not chain:
            raise ValueError("at least one provider")
        self.chain = list(chain)
        self.backoff = Backoff(
            attempts=retries + 1, base_delay=base_delay, max_delay=max_delay, sleep=sleep
        )
        self.budget = budget  # seconds one call may spend on retries and fallbacks
        self.model = chain[0].model
        self.supports_images = chain[0].supports_images
        self.supports_audio = any(llm.supports_audio for llm in chain)
        self._embedder = next((llm for llm in chain if llm.supports_embeddings), None)
        self.supports_embeddings = self._embedder is not None
        self.embed_model = self._embedder.embed_model if self._embedder else ""
        self.embed_dimensions = self._embedder.embed_dimensions if self._embedder else None

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        """The first provider of the chain that can transcribe does; the next if it fails."""
        last_error: LLMError | None = None
        for llm in self.chain:
            if llm.supports_audio:
                try:
                    return llm.transcribe(audio, mime_type)
                except LLMError as error:
                    last_error = error
        if last_error is None:
            return super().transcribe(audio, mime_type)
        raise last_error

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._embedder is None:
            return super().embed(texts)
        began = time.monotonic()
        attempt = 1
        while True:
            try:
                return self._embedder.embed(texts)
            except LLMError as error:
                delay = self.backoff.delay(attempt)
                last = attempt == self.backoff.attempts
                if not error.retryable or last or self._spent(began, delay):
                    raise
            self.backoff.sleep(delay)
            attempt += 1

    def complete(self, request: LLMRequest) -> Completion:
        events = self._attempts(request, streaming=False)
        completion = next(e for e in events if isinstance(e, Completion))
        return completion

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        return self._attempts(request, streaming=True)

    def _attempts(
        self, request: LLMRequest, *, streaming: bool
    ) -> Iterator[TextDelta | Completion]:
        last_error: LLMError | None = None
        began = time.monotonic()
        for llm in self.chain:
            for attempt in range(1, self.backoff.attempts + 1):
                if _too_late(request) or (last_error is not None and self._spent(began)):
                    # The customer would wait too long: answer them now.
                    raise last_error or LLMTimeoutError("too little time left for a model call")
                started = False
                try:
                    if not streaming:
                        yield llm.complete(request)
                        return
                    for event in llm.stream(request):
                        started = started or isinstance(event, TextDelta)
                        yield event
                    return
                except LLMError as error:
                    if started:
                        raise
                    last_error = error
                    if not error.retryable or attempt == self.backoff.attempts:
                        break
                    delay = self.backoff.delay(attempt)
                    if self._spent(began, delay) or _too_late(request, delay):
                        raise
                    self.backoff.sleep(delay)
        assert last_error is not None
        raise last_error

    def _spent(self, began: float, delay: float = 0.0) -> bool:
        return self.budget is not None and time.monotonic() - began + delay >= self.budget


def _too_late(request: LLMRequest, delay: float = 0.0) -> bool:
    """Whether an attempt starting after ``delay`` would have too little time to answer."""
    left = request.time_left()
    return left is not None and left - delay < MIN_CALL_SECONDS
