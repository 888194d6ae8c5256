"""What a loopback model server answers: a queue of scripted steps, shared by every protocol.

A protocol server (OpenAI Chat Completions, Gemini generateContent) pops the next step for each
request and renders it in its own wire format, streamed when the request asks for streaming; an
embeddings request answered by a ``Reply`` gets ``vector_of`` each input (or the vector a test
chose for a word in it, ``Script.vectors``). When the queue is empty it calls ``responder`` (if
set) with the neutral view of the request, so a test can play a whole conversation. Every
request is recorded for assertions.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, args)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    chunks: int = 3  # how many pieces the text is cut into when streamed


@dataclass(frozen=True)
class Fail:
    status: int  # 429, 500, 503, 400, 401...
    message: str = "scripted failure"


@dataclass(frozen=True)
class Stall:
    """Answer ``then`` only after ``seconds``: long enough for the client to time out."""

    seconds: float
    then: Reply = field(default_factory=Reply)


Step = Reply | Fail | Stall


@dataclass(frozen=True)
class SeenRequest:
    """A neutral view of what the client sent."""

    path: str
    model: str
    stream: bool
    messages: list[dict[str, Any]]  # [{"role", "text", "images": int, "tool_calls", ...}]
    tools: list[str]  # tool names offered
    headers: dict[str, str]
    raw: dict[str, Any]
    inputs: list[str] = field(default_factory=list)  # the texts of an embeddings request


def vector_of(text: str, dimensions: int = 8) -> list[float]:
    """The embedding the loopback servers give ``text``: distinct per text, exact in float32."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(byte - 128) / 256 for byte in digest[:dimensions]]


@dataclass
class Script:
    steps: deque[Step] = field(default_factory=deque)
    responder: Callable[[SeenRequest], Step] | None = None
    seen: list[SeenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Chosen embeddings: a text holding one of these words (case-insensitive) gets its vector,
    # so a test can make two texts close ("kaftan" and "Boubou brodé"); others get vector_of.
    vectors: dict[str, list[float]] = field(default_factory=dict)

    def vector(self, text: str) -> list[float]:
        folded = text.casefold()
        chosen = (v for word, v in self.vectors.items() if word.casefold() in folded)
        return next(chosen, None) or vector_of(text)

    def embedded(self) -> list[str]:
        """Every text embedding requests asked for, in order."""
        return [text for request in self.seen for text in request.inputs]

    def then(self, *steps: Step) -> Script:
        self.steps.extend(steps)
        return self

    def next_step(self, request: SeenRequest) -> Step:
        with self.lock:
            self.seen.append(request)
            if self.steps:
                return self.steps.popleft()
        if self.responder is not None:
            return self.responder(request)
        return Fail(500, "the test script has no step left")

    def reset(self) -> None:
        with self.lock:
            self.steps.clear()
            self.seen.clear()
            self.responder = None
            self.vectors.clear()
