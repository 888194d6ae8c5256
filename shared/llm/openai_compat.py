"""The providers that speak OpenAI Chat Completions: OpenAI, DeepSeek, Qwen, Mistral, Ollama, Z.ai.

The ``openai`` SDK is imported only when a client is built (it costs about half a second of cold
start). The SDK never retries (``max_retries=0``): retries and fallbacks belong to our own layer,
which sees only the ``LLMError`` family. Embeddings go through ``/embeddings`` in batches
(``embed_model``; none when it is empty), ``dimensions`` long when ``embed_dimensions`` is set.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.exceptions import (
    LLMError,
    LLMRateLimitedError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from shared.llm.base import (
    LLM,
    ChatMessage,
    Completion,
    LLMRequest,
    TextDelta,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import CompletionUsage
    from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

# Mistral refuses ``stream_options`` (422, extra inputs are not permitted) and sends the usage in
# its last chunk anyway.
_STREAM_OPTIONS: dict[str, dict[str, Any]] = {"mistral": {}}
_IDENTIFIER = re.compile(r"[\w.\[\]-]{1,64}", re.ASCII)
# Providers with an OpenAI-style /audio/transcriptions endpoint, and the model used there.
_TRANSCRIPTION_MODELS = {"openai": "gpt-4o-mini-transcribe"}
# The endpoint reads the audio format from the file name.
_AUDIO_EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/wav": "wav",
}
# Texts per /embeddings request: OpenAI takes up to 2048, DashScope (Qwen) 10.
_EMBED_BATCH = {"qwen": 10}
_EMBED_BATCH_DEFAULT = 256


class OpenAICompatLLM(LLM):
    name = "openai"  # the family; ``self.provider`` says which compatible provider
    supports_images = True

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        embed_model: str = "",
        embed_dimensions: int | None = None,
        client: OpenAI | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.timeout = timeout  # a call's longest; a request's deadline may cut it shorter
        self.embed_model = embed_model
        self.embed_dimensions = embed_dimensions
        self.supports_audio = provider in _TRANSCRIPTION_MODELS
        self.supports_embeddings = bool(embed_model)
        self.embed_batch_size = _EMBED_BATCH.get(provider, _EMBED_BATCH_DEFAULT)
        if client is None:
            import openai  # lazy: only processes that use this provider pay for the import

            # Local servers (Ollama) take no key, but the SDK refuses to start without one.
            client = openai.OpenAI(
                api_key=api_key or "unused", base_url=base_url, timeout=timeout, max_retries=0
            )
        self._client = client

    def complete(self, request: LLMRequest) -> Completion:
        with _boundary(self.provider):
            response = self._client.chat.completions.create(**self._request(request))
        usage = _usage(response.usage)
        if not response.choices:
            return Completion("", usage=usage, model=response.model or self.model)
        message = response.choices[0].message
        calls = tuple(
            _tool_call(call.id, call.function.name, call.function.arguments, position)
            for position, call in enumerate(message.tool_calls or ())
            if call.type == "function"
        )
        return Completion(message.content or "", calls, usage, response.model or self.model)

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        text: list[str] = []
        calls = _StreamedCalls()
        usage = Usage()
        model = self.model
        # Errors can come when the request is sent and while chunks are read: both are translated.
        with _boundary(self.provider):
            chunks = self._client.chat.completions.create(
                **self._request(request),
                stream=True,
                **_STREAM_OPTIONS.get(self.provider, {"stream_options": {"include_usage": True}}),
            )
            with chunks:  # closes the response if the caller stops reading early
                for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage is not None:  # OpenAI: a last chunk with no choices
                        usage = _usage(chunk.usage)
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for piece in delta.tool_calls or ():
                        calls.add(piece)
        yield Completion("".join(text), calls.done(), usage, model)

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        model = _TRANSCRIPTION_MODELS.get(self.provider)
        if model is None:
            return super().transcribe(audio, mime_type)
        mime_type = mime_type.split(";")[0].strip().lower()
        name = f"voice.{_AUDIO_EXTENSIONS.get(mime_type, 'ogg')}"
        with _boundary(self.provider):
            result = self._client.audio.transcriptions.create(
                model=model, file=(name, audio, mime_type), response_format="json"
            )
        return result.text.strip()

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        # Sent only when set: not every compatible server knows the parameter.
        dimensions = self.embed_dimensions
        sized: dict[str, Any] = {"dimensions": dimensions} if dimensions else {}
        with _boundary(self.provider):
            response = self._client.embeddings.create(
                model=self.embed_model, input=texts, encoding_format="float", **sized
            )
        # Each item says which input it embeds; do not rely on the order they come in.
        ordered = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in ordered] != list(range(len(texts))):
            raise LLMUnavailableError(f"{self.provider}: embeddings do not match the inputs")
        return [list(item.embedding) for item in ordered]

    def _request(self, request: LLMRequest) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(message) for message in request.messages],
            # The SDK's per-request timeout: a stalled provider is cut at the turn's deadline.
            "timeout": request.timeout(self.timeout),
        }
        if request.tools:  # an empty list is refused: the key must be absent
            wire["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        return wire


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if message.tool_calls:
        return {
            "role": message.role,
            "content": message.text or None,  # an assistant that only calls tools has no content
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for call in message.tool_calls
            ],
        }
    if message.images:
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": message.text}] if message.text else []
        )
        parts.extend(
            {
                "type": "image_url",
                "image_url": {
                    "url": f"data:{image.mime_type};base64,"
                    + base64.b64encode(image.data).decode("ascii")
                },
            }
            for image in message.images
        )
        return {"role": message.role, "content": parts}
    return {"role": message.role, "content": message.text}


class _StreamedCalls:
    """Tool calls put back together from their streamed fragments."""

    def __init__(self) -> None:
        self._calls: list[list[str]] = []  # [id, name, arguments so far], in the order they came
        self._current: dict[int | None, int] = {}  # the stream's index -> place in _calls

    def add(self, piece: ChoiceDeltaToolCall) -> None:
        place = self._current.get(piece.index)
        # Some compatible servers give every call index 0 (or none): there, a new id starts a
        # new call instead of continuing the previous one.
        if place is None or (piece.id and self._calls[place][0] not in ("", piece.id)):
            self._current[piece.index] = place = len(self._calls)
            self._calls.append(["", "", ""])
        call = self._calls[place]
        call[0] = call[0] or piece.id or ""
        if piece.function is not None:
            call[1] = call[1] or piece.function.name or ""
            call[2] += piece.function.arguments or ""

    def done(self) -> tuple[ToolCall, ...]:
        return tuple(
            _tool_call(call_id, name, arguments, position)
            for position, (call_id, name, arguments) in enumerate(self._calls)
        )


def _tool_call(call_id: str | None, name: str, arguments: str, position: int) -> ToolCall:
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # The model wrote something that is not a JSON object: the agent reports it back to the
        # model instead of crashing the turn.
        parsed = {"_raw": arguments}
    # Some compatible servers leave the id out; the agent needs one to pair the tool's answer.
    return ToolCall(call_id or f"call_{position}", name, parsed)


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)


@contextmanager
def _boundary(provider: str) -> Iterator[None]:
    """Translate the SDK's errors into the ``LLMError`` family.

    The messages name the provider, the error class, the status and the provider's error code and
    param, never the provider's message: it may quote the customer's text or part of the key. The
    SDK error is not chained, for the same reason: tracebacks would print it.
    """
    import openai

    try:
        yield
    except openai.OpenAIError as err:
        raise _translate(provider, err) from None


def _translate(provider: str, err: Exception) -> LLMError:
    import openai

    what = f"{provider}: {type(err).__name__}"
    if isinstance(err, openai.APITimeoutError):
        return LLMTimeoutError(what)
    if isinstance(err, openai.APIConnectionError):
        return LLMUnavailableError(what)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        # The error's code and param are identifiers ("context_length_exceeded", "messages[2]"):
        # safe to keep, and what a developer needs to understand a refused request.
        details = [f"HTTP {status}"]
        details += [
            f for f in (err.code, err.param) if isinstance(f, str) and _IDENTIFIER.fullmatch(f)
        ]
        what += f" ({', '.join(details)})"
        if status == 408:
            return LLMTimeoutError(what)
        if status == 429:
            return LLMRateLimitedError(what)
        if status == 409 or status >= 500:  # 409: a lock timeout, which the SDK itself retries
            return LLMUnavailableError(what)
        return LLMRequestError(what)
    if isinstance(err, openai.APIError):  # an error event in the middle of a stream
        return LLMUnavailableError(what)
    return LLMRequestError(what)  # the SDK refused to send the request at all
