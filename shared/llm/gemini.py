"""Google Gemini, through the ``google-genai`` SDK (Gemini Developer API, ``v1beta``).

The SDK is imported when a ``GeminiLLM`` is built, not with this module: it costs ~0.5 s, paid
only by deployments that use Gemini.

Wire mapping: system messages become ``systemInstruction``; assistant turns are ``model``
contents with ``functionCall`` parts; tool results are ``user`` contents of ``functionResponse``
parts named after the tool (Gemini matches results to calls by name and order). A call that
comes without an id (Gemini's usually do) gets a random one, unique across the steps of a
conversation, so that a signature (below) is never paired with another call.

Gemini 3 models refuse (400) a history whose function calls come back without the opaque
``thoughtSignature`` they were returned with. ``ToolCall`` has no room for it, so this object
remembers the signatures of the calls it returned, by call id, and puts them back when that
history is sent again (the agent loop's next step). Calls it does not know (another provider's,
or a previous process's) get Google's documented placeholder instead, which skips the check.

Embeddings go through ``batchEmbedContents`` (``embed_content``), 100 texts a request at most,
``outputDimensionality`` long when ``embed_dimensions`` is set.

The SDK neither retries nor continues on its own here: retries and fallbacks belong to the
caller, which sees every failure as an ``LLMError``.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.exceptions import (
    ConfigError,
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
    from google.genai import Client, types

_API_VERSION = "v1beta"  # the SDK defaults to v1; tools and systemInstruction live in v1beta
# Google's placeholder for function calls the model did not sign; the SDK sends bytes as
# URL-safe base64, so these bytes go out as the documented string itself.
_SKIP_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
_MAX_SIGNATURES = 256  # a turn's steps need only their own; older ones fall back to the placeholder
_TRANSCRIBE = (
    "Transcribe this voice message word for word, in its own language. "
    "Reply with the transcript only."
)


class GeminiLLM(LLM):
    name = "gemini"
    supports_images = True
    supports_audio = True  # audio is an input like images: transcribed by the model itself
    embed_batch_size = 100  # batchEmbedContents' limit

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
        client: Client | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.timeout = timeout  # a call's longest; a request's deadline may cut it shorter
        self.embed_model = embed_model
        self.embed_dimensions = embed_dimensions
        self.supports_embeddings = bool(embed_model)
        self._signatures: dict[str, bytes] = {}  # call id -> thoughtSignature
        if client is not None:
            self._client = client
            return
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=base_url,  # None: Google's endpoint
            api_version=_API_VERSION,
            timeout=_milliseconds(timeout),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        try:
            # vertexai=False: GOOGLE_GENAI_USE_VERTEXAI in the environment must not switch APIs.
            self._client = genai.Client(vertexai=False, api_key=api_key, http_options=options)
        except ValueError as exc:  # no key given nor found in GEMINI_API_KEY / GOOGLE_API_KEY
            raise ConfigError(f"{provider}: no API key (set GEMINI_API_KEY)") from exc

    def complete(self, request: LLMRequest) -> Completion:
        contents, config = self._request(request)
        with _errors():
            response = self._client.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        reply = _Reply()
        reply.add(response)
        return self._completion(reply)

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        contents, config = self._request(request)
        reply = _Reply()
        with _errors():  # the request is sent, and fails, on the first iteration
            for chunk in self._client.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            ):
                for text in reply.add(chunk):
                    yield TextDelta(text)
        yield self._completion(reply)

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        from google.genai import types

        parts = [
            types.Part.from_text(text=_TRANSCRIBE),
            types.Part.from_bytes(data=audio, mime_type=mime_type.split(";")[0].strip()),
        ]
        config = types.GenerateContentConfig(
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
        )
        with _errors():
            response = self._client.models.generate_content(
                model=self.model, contents=[types.Content(role="user", parts=parts)], config=config
            )
        reply = _Reply()
        reply.add(response)
        return "".join(reply.texts).strip()

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        from google.genai import types

        config = types.EmbedContentConfig(output_dimensionality=self.embed_dimensions)
        with _errors():
            response = self._client.models.embed_content(
                model=self.embed_model, contents=texts, config=config
            )
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            raise LLMUnavailableError("gemini: embeddings do not match the inputs")
        return [list(embedding.values or []) for embedding in embeddings]

    def _request(
        self, request: LLMRequest
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        from google.genai import types

        messages, tools = request.messages, request.tools
        system = "\n\n".join(m.text for m in messages if m.role == "system" and m.text)
        config = types.GenerateContentConfig(
            # Per request, over the client's options: a stalled call ends at the deadline.
            http_options=types.HttpOptions(timeout=_milliseconds(request.timeout(self.timeout))),
            system_instruction=system or None,
            tools=[
                types.Tool(
                    function_declarations=[
                        # JSON Schema as is: no conversion to Gemini's OpenAPI subset.
                        types.FunctionDeclaration(
                            name=t.name,
                            description=t.description,
                            parameters_json_schema=t.parameters,
                        )
                        for t in tools
                    ]
                )
            ]
            if tools
            else None,
            # One HTTP request per call: no function calling nor continuation by the SDK.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )
        return self._contents(messages), config

    def _contents(self, messages: Sequence[ChatMessage]) -> list[types.Content]:
        from google.genai import types

        names = {c.id: c.name for m in messages for c in m.tool_calls}
        contents: list[types.Content] = []
        results: list[types.Part] = []  # consecutive tool results: one content
        for message in messages:
            if message.role == "tool":
                results.append(
                    types.Part.from_function_response(
                        name=message.tool_name or names.get(message.tool_call_id, ""),
                        response=_tool_response(message.text),
                    )
                )
                continue
            if results:
                contents.append(types.Content(role="user", parts=results))
                results = []
            parts: list[types.Part] = []
            if message.text and message.role != "system":
                parts.append(types.Part.from_text(text=message.text))
            if message.role == "user":
                parts += [
                    types.Part.from_bytes(data=i.data, mime_type=i.mime_type)
                    for i in message.images
                ]
                contents.append(types.Content(role="user", parts=parts))
            elif message.role == "assistant":
                parts += self._call_parts(message.tool_calls)
                if parts:
                    contents.append(types.Content(role="model", parts=parts))
        if results:
            contents.append(types.Content(role="user", parts=results))
        return [c for c in contents if c.parts]

    def _call_parts(self, calls: Sequence[ToolCall]) -> list[types.Part]:
        from google.genai import types

        known = [self._signatures.get(c.id) for c in calls]
        if calls and not any(known):
            known[0] = _SKIP_SIGNATURE  # Gemini checks the first call of a step
        return [
            types.Part(
                function_call=types.FunctionCall(name=c.name, args=c.arguments),
                thought_signature=signature,
            )
            for c, signature in zip(calls, known, strict=True)
        ]

    def _completion(self, reply: _Reply) -> Completion:
        calls: list[ToolCall] = []
        for call, signature in reply.calls:
            call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
            calls.append(ToolCall(call_id, call.name or "", dict(call.args or {})))
            if signature:
                self._remember(call_id, signature)
        return Completion(
            text="".join(reply.texts),
            tool_calls=tuple(calls),
            usage=reply.usage,
            model=reply.model or self.model,
        )

    def _remember(self, call_id: str, signature: bytes) -> None:
        self._signatures[call_id] = signature
        while len(self._signatures) > _MAX_SIGNATURES:
            self._signatures.pop(next(iter(self._signatures)), None)


class _Reply:
    """What one response, or the chunks of a streamed one, carried."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[tuple[types.FunctionCall, bytes | None]] = []
        self.usage = Usage()
        self.model = ""

    def add(self, response: types.GenerateContentResponse) -> list[str]:
        """Record a response (or chunk); return its new answer text, thoughts left out."""
        texts: list[str] = []
        candidate = response.candidates[0] if response.candidates else None
        for part in (candidate and candidate.content and candidate.content.parts) or []:
            if part.function_call is not None:
                self.calls.append((part.function_call, part.thought_signature))
            elif part.text and not part.thought:
                texts.append(part.text)
        self.texts += texts
        if (meta := response.usage_metadata) is not None:
            # Each chunk's usage is the running total; thinking is billed as output.
            self.usage = Usage(
                (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0),
                (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
            )
        self.model = response.model_version or self.model
        return texts


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))  # the SDK's unit; 0 would mean no timeout


def _tool_response(text: str) -> dict[str, Any]:
    """A functionResponse's ``response`` must be a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


@contextmanager
def _errors() -> Iterator[None]:
    """Translate the SDK's errors: the one place they cross. Messages name the status only,
    never the request's text nor the key."""
    from google.genai import errors

    # The SDK sends through httpx2 or httpx (GOOGLE_GENAI_HTTP_CLIENT picks), whichever it loaded.
    http = [sys.modules[name] for name in ("httpx2", "httpx") if name in sys.modules]
    timeouts = tuple(module.TimeoutException for module in http)
    transport = tuple(module.TransportError for module in http)
    try:
        yield
    except errors.ClientError as exc:
        if exc.code == 429:
            raise LLMRateLimitedError(f"gemini: {exc.code} {exc.status}") from exc
        if exc.code == 408:
            raise LLMTimeoutError(f"gemini: {exc.code} {exc.status}") from exc
        raise LLMRequestError(f"gemini: {exc.code} {exc.status}") from exc
    except errors.APIError as exc:  # 5xx, or a status the SDK does not classify
        raise LLMUnavailableError(f"gemini: {exc.code} {exc.status}") from exc
    except timeouts as exc:
        raise LLMTimeoutError(f"gemini: no answer in time ({type(exc).__name__})") from exc
    except transport as exc:  # refused, reset, DNS, TLS...
        raise LLMUnavailableError(f"gemini: cannot reach the API ({type(exc).__name__})") from exc
    except errors.UnknownApiResponseError as exc:  # a body that is not JSON
        raise LLMUnavailableError("gemini: malformed response") from exc
