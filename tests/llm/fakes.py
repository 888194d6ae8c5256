"""An in-process LLM that plays a ``Script`` (the same steps the loopback servers play), for
tests of the layers above the port: the agent loop, fallbacks, the chat service."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

from shared.exceptions import (
    LLMError,
    LLMRateLimitedError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from shared.llm import LLM, Completion, LLMRequest, TextDelta, ToolCall, Usage
from tests.llm.script import Fail, Reply, Script, SeenRequest, Stall


def error_for(status: int) -> LLMError:
    if status == 429:
        return LLMRateLimitedError("429")
    if status >= 500:
        return LLMUnavailableError(str(status))
    return LLMRequestError(str(status))


class ScriptedLLM(LLM):
    name: ClassVar[str] = "scripted"
    supports_images = True

    def __init__(
        self, script: Script | None = None, model: str = "scripted-model", embed_model: str = ""
    ) -> None:
        self.script = script or Script()
        self.model = model
        self.embed_model = embed_model
        self.supports_embeddings = bool(embed_model)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.supports_embeddings:
            return super().embed(texts)
        seen = SeenRequest("in-process", self.embed_model, False, [], [], {}, {}, list(texts))
        self._play(self.script.next_step(seen))
        return [self.script.vector(text) for text in texts]

    def _step(self, request: LLMRequest, stream: bool) -> Reply:
        seen = SeenRequest(
            path="in-process",
            model=self.model,
            stream=stream,
            messages=[
                {
                    "role": m.role,
                    "text": m.text,
                    "images": len(m.images),
                    "tool_calls": [c.name for c in m.tool_calls],
                    "tool_call_id": m.tool_call_id,
                }
                for m in request.messages
            ],
            tools=[t.name for t in request.tools],
            headers={},
            raw={},
        )
        return self._play(self.script.next_step(seen))

    def _play(self, step: Reply | Fail | Stall) -> Reply:
        if isinstance(step, Fail):
            raise error_for(step.status)
        if isinstance(step, Stall):
            raise LLMTimeoutError("stalled")
        return step

    def complete(self, request: LLMRequest) -> Completion:
        return _completion(self._step(request, False), self.model)

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        reply = self._step(request, True)
        size = max(1, -(-len(reply.text) // max(1, reply.chunks)))
        for start in range(0, len(reply.text), size):
            yield TextDelta(reply.text[start : start + size])
        yield _completion(reply, self.model)


def _completion(reply: Reply, model: str) -> Completion:
    return Completion(
        text=reply.text,
        tool_calls=tuple(
            ToolCall(f"call_{i}", name, args) for i, (name, args) in enumerate(reply.tool_calls)
        ),
        usage=Usage(reply.prompt_tokens, reply.completion_tokens),
        model=model,
    )
