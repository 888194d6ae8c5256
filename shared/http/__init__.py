"""Cloud-neutral HTTP functions.

A function is a set of routes under one mount path (``/chat`` serves ``/chat`` and
``/chat/history``); a route's ``{name}`` segment matches one path segment, passed to the handler
decoded as ``request.params["name"]``. Adapters (``shared.http.aws``, ``shared.http.gcf``, the
dev server) turn their trigger into a ``Request`` and a ``Response`` back. Errors become JSON
responses here, in one place; every call is logged as one JSON line with no message text, phone
number or secret.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from shared import jsonsafe
from shared.admin.exceptions import (
    ConflictError,
    ConsoleOffError,
    CSRFError,
    InvalidCredentialsError,
    InvalidMoveError,
    NotSignedInError,
    UnknownRecordError,
    WindowClosedError,
)
from shared.channels.exceptions import (
    HandshakeError,
    InvalidSecretError,
    MalformedBodyError,
    MissingSignatureError,
    NotConfiguredError,
    ReplayedError,
    SignatureError,
    UnknownBackendError,
)
from shared.exceptions import (
    ApiKeyError,
    ChannelError,
    ComptoirError,
    ImportFileError,
    InvalidInputError,
    LLMError,
    MessageTooLongError,
    RateLimitedError,
    ScopeError,
    StoreUnavailableError,
    TasksSecretError,
    UnknownPaymentProviderError,
    UnknownSessionError,
    UnknownShopError,
    UnknownTaskError,
    VoiceOffError,
    VoiceProviderBusyError,
    VoiceProviderError,
)
from shared.log import log_request, log_unexpected
from shared.payments.exceptions import (
    MalformedPaymentEventError,
    MissingPaymentSignatureError,
    PaymentNotConfiguredError,
    PaymentSignatureError,
    StalePaymentSignatureError,
)

MAX_BODY_BYTES = 64 * 1024

if TYPE_CHECKING:
    from pydantic import BaseModel

BodyModel = TypeVar("BodyModel", bound="BaseModel")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, percent-encoded
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-cased
    body: bytes = b""
    source_ip: str = ""
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    params: Mapping[str, str] = field(default_factory=dict)  # the matched route's {name}s

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    shop: str = ""  # for the access log only

    def body_bytes(self) -> bytes:
        """The whole body (adapters without streaming join a streamed body)."""
        return self.body if isinstance(self.body, bytes) else b"".join(self.body)


class HTTPError(Exception):
    """An error answered to the client as ``{"error": {"code", "message"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


# Library errors and the responses they become: the one place they map to HTTP. The most
# specific class comes first; 5xx messages are fixed (an exception's text may quote data).
_ERROR_STATUS: list[tuple[type[ComptoirError], int, str, str | None]] = [
    (NotSignedInError, 401, "not_signed_in", None),
    (InvalidCredentialsError, 401, "invalid_credentials", None),
    (CSRFError, 403, "csrf", None),
    (ConsoleOffError, 503, "not_configured", "the console is not configured"),
    (UnknownRecordError, 404, "not_found", None),
    (InvalidMoveError, 409, "invalid_move", None),
    (WindowClosedError, 409, "window_closed", None),
    (ConflictError, 409, "conflict", None),
    (MessageTooLongError, 413, "message_too_long", None),
    (MalformedBodyError, 400, "malformed_json", None),
    (MalformedPaymentEventError, 400, "malformed_event", None),
    (MissingPaymentSignatureError, 401, "missing_signature", None),
    (StalePaymentSignatureError, 403, "stale_signature", None),
    (PaymentSignatureError, 403, "invalid_signature", None),
    (PaymentNotConfiguredError, 503, "not_configured", None),
    (UnknownPaymentProviderError, 404, "unknown_provider", None),
    (MissingSignatureError, 401, "missing_signature", None),
    (InvalidSecretError, 401, "invalid_secret", None),
    (ApiKeyError, 401, "unauthorized", None),
    (ScopeError, 403, "forbidden", None),
    (TasksSecretError, 401, "unauthorized", "send the tasks secret in X-Tasks-Secret"),
    (UnknownTaskError, 404, "unknown_task", None),
    (HandshakeError, 403, "forbidden", None),
    (UnknownBackendError, 403, "unknown_backend", None),
    (ReplayedError, 409, "replayed", None),
    (SignatureError, 403, "invalid_signature", None),
    (NotConfiguredError, 503, "not_configured", None),
    (InvalidInputError, 400, "invalid_input", None),
    (ImportFileError, 400, "invalid_file", None),
    (UnknownShopError, 404, "unknown_shop", None),
    (UnknownSessionError, 404, "unknown_session", None),
    (RateLimitedError, 429, "rate_limited", None),
    (VoiceOffError, 404, "voice_off", "live voice is not available for this shop"),
    # The provider's words are not the browser's: a fixed message, the widget falls back to text.
    (VoiceProviderBusyError, 503, "voice_provider_error", "voice is busy, use the chat"),
    (VoiceProviderError, 502, "voice_provider_error", "voice is unavailable, use the chat"),
    (StoreUnavailableError, 503, "store_unavailable", "the store is unavailable, try again"),
    (LLMError, 503, "llm_unavailable", "the assistant is unavailable, try again"),
    # A channel API refused or failed a send (a console reply): never its text or address.
    (ChannelError, 502, "channel_error", None),
]


def http_error_for(exc: ComptoirError) -> HTTPError | None:
    for cls, status, code, fixed_message in _ERROR_STATUS:
        if isinstance(exc, cls):
            retry_after = getattr(exc, "retry_after", None)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return HTTPError(status, code, fixed_message or str(exc), headers)
    return None


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


@dataclass(frozen=True)
class SSEEvent:
    """An event of a stream with its id: a browser's EventSource sends the last one it read
    back as ``Last-Event-ID`` when it reconnects."""

    name: str
    data: Any
    id: str


def sse_response(
    events: Iterable[tuple[str, Any] | SSEEvent], *, retry_ms: int | None = None
) -> Response:
    """A Server-Sent Events stream (``retry_ms``: how long a browser waits before it
    reconnects once the stream ends). An error once the stream has started cannot change the
    status any more: it becomes an ``error`` event carrying the usual error JSON."""

    def encode() -> Iterator[bytes]:
        if retry_ms is not None:
            yield f"retry: {retry_ms}\n\n".encode()
        try:
            for event in events:
                if isinstance(event, SSEEvent):
                    yield f"id: {event.id}\n".encode() + _sse(event.name, event.data)
                else:
                    yield _sse(*event)
        except ComptoirError as exc:
            error = http_error_for(exc) or HTTPError(500, "internal", "something went wrong")
            yield _sse("error", {"error": {"code": error.code, "message": error.message}})

    return Response(
        200,
        encode(),
        {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )


def _sse(name: str, data: Any) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()


def error_response(error: HTTPError) -> Response:
    return json_response(
        error.status, {"error": {"code": error.code, "message": error.message}}, error.headers
    )


def parse_json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or the 4xx that says what is wrong with it."""
    if len(request.body) > MAX_BODY_BYTES:
        raise body_too_large(MAX_BODY_BYTES)
    content_type = request.header("content-type").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPError(415, "unsupported_media_type", "send Content-Type: application/json")
    try:
        payload = jsonsafe.loads(request.body)
    except InvalidInputError as exc:  # not UTF-8 or JSON, nested too deep, a lone surrogate
        raise HTTPError(400, "malformed_json", str(exc)) from None
    if not isinstance(payload, dict):
        raise HTTPError(400, "malformed_json", "the body must be a JSON object")
    return payload


def parse_model(request: Request, model: type[BodyModel]) -> BodyModel:
    """The request's JSON body as ``model``, or a 400 naming the first few fields at fault."""
    from pydantic import ValidationError

    try:
        return model.model_validate(parse_json_body(request))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidInputError("; ".join(problems[:5])) from None


RouteHandler = Callable[[Request], Response]
Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Cors:
    """CORS for browser callers; ``allowed_origins`` is read per call so tests can change it."""

    allowed_origins: Callable[[], tuple[str, ...]]
    methods: str = "GET, POST, OPTIONS"
    headers: str = "Content-Type, Accept"

    def response_headers(self, request: Request) -> dict[str, str] | None:
        """The headers that let ``request``'s origin read the answer, or None if it may not."""
        origin = request.header("origin")
        allowed = self.allowed_origins()
        # Retry-After must be readable by a widget on the shop's origin (its 429 notice).
        expose = {"Access-Control-Expose-Headers": "Retry-After"}
        if "*" in allowed:
            return {"Access-Control-Allow-Origin": "*", **expose}
        if origin and origin.rstrip("/") in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **expose}
        return None

    def preflight(self, request: Request) -> Response:
        headers = self.response_headers(request)
        if headers is None:
            raise HTTPError(403, "origin_not_allowed", "this origin may not call the API")
        headers.update(
            {
                "Access-Control-Allow-Methods": self.methods,
                "Access-Control-Allow-Headers": self.headers,
                "Access-Control-Max-Age": "600",
            }
        )
        return Response(204, b"", headers)


# A route's body limit in bytes, or how to read it when called (a setting).
BodyLimit = int | Callable[[], int]


@dataclass
class _Route:
    """A path pattern under the mount (``/``, ``/history``, ``/{provider}``) and its handlers."""

    pattern: str
    segments: tuple[str, ...]  # "{name}" stands for a parameter
    methods: dict[str, RouteHandler]
    body_limits: dict[str, BodyLimit] = field(default_factory=dict)  # by method, when declared

    @classmethod
    def parse(cls, pattern: str) -> _Route:
        segments = tuple(pattern.strip("/").split("/")) if pattern.strip("/") else ()
        names = [s[1:-1] for s in segments if _is_parameter(s)]
        braces = [s for s in segments if not _is_parameter(s) and ("{" in s or "}" in s)]
        if not pattern.startswith("/") or "" in segments or braces or len(set(names)) != len(names):
            raise ValueError(f"route {pattern!r}: /segments, each a name or {{parameter}}")
        return cls(pattern, segments, {})

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The parameters when ``segments`` (as sent, percent-encoded) fit, else None."""
        if len(segments) != len(self.segments):
            return None
        params = {}
        for expected, given in zip(self.segments, segments, strict=True):
            if not _is_parameter(expected):
                if given != expected:
                    return None
                continue
            try:
                value = unquote(given, errors="strict")  # decoded once: %2541 is "%41"
            except UnicodeDecodeError:
                return None
            if not value or "/" in value:  # an encoded "/" does not make a parameter span two
                return None
            params[expected[1:-1]] = value
        return params

    @property
    def specificity(self) -> tuple[bool, ...]:
        """Sorts a fixed segment before a parameter in the same place."""
        return tuple(_is_parameter(s) for s in self.segments)


def _limit(limit: BodyLimit) -> int:
    return limit() if callable(limit) else limit


def body_too_large(limit: int) -> HTTPError:
    return HTTPError(413, "body_too_large", f"request body over {limit} bytes")


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}") and segment[1:-1].isidentifier()


class HTTPFunction:
    """A deployable HTTP function: routes relative to ``mount``, CORS, errors, access log."""

    def __init__(self, name: str, mount: str, *, cors: Cors | None = None) -> None:
        self.name = name
        self.mount = mount.rstrip("/")
        self.cors = cors
        self._routes: dict[str, _Route] = {}

    def route(
        self, path: str, *methods: str, max_body: BodyLimit | None = None
    ) -> Callable[[RouteHandler], RouteHandler]:
        """Register a handler; ``max_body`` lets a route take bodies over MAX_BODY_BYTES (an
        upload): a longer body is refused with 413 before the handler runs."""
        route = self._routes.get(path)
        if route is None:
            route = self._routes[path] = _Route.parse(path)

        def register(handler: RouteHandler) -> RouteHandler:
            for method in methods:
                route.methods[method] = handler
                if max_body is not None:
                    route.body_limits[method] = max_body
            return handler

        return register

    def body_limit(self, method: str, path: str) -> int:
        """The longest body the route serving ``method path`` takes (MAX_BODY_BYTES unless it
        declares its own): what an adapter reading the body itself may refuse early."""
        for route, _ in self._matches(path):
            if method in route.methods:
                return _limit(route.body_limits.get(method, MAX_BODY_BYTES))
        return MAX_BODY_BYTES

    @property
    def routes(self) -> set[str]:
        """Each route as the HTTP API declares it: ``METHOD /mount/path``."""
        return {
            f"{method} {(self.mount + route.pattern).rstrip('/') or '/'}"
            for route in self._routes.values()
            for method in route.methods
        }

    def relative_path(self, path: str) -> str:
        """The path under the mount: AWS and the dev server pass ``/chat/history``, Google
        Cloud Functions passes ``/history`` (the function's own URL is its mount). A trailing
        slash does not count, as on API Gateway."""
        path = "/" + path.strip("/")
        if path == self.mount or path.startswith(self.mount + "/"):
            path = path[len(self.mount) :] or "/"
        return path

    def owns(self, path: str) -> bool:
        """Whether ``path`` (whole, as AWS passes it) is the function's: under its mount."""
        return path == self.mount or path.startswith(self.mount + "/")

    def _matches(self, path: str) -> list[tuple[_Route, dict[str, str]]]:
        """The routes ``path`` fits, the most specific first."""
        relative = self.relative_path(path)
        segments = relative[1:].split("/") if relative != "/" else []
        found = [(r, p) for r in self._routes.values() if (p := r.match(segments)) is not None]
        return sorted(found, key=lambda match: match[0].specificity)

    def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        matches = self._matches(request.path)
        try:
            response = self._dispatch(request, matches)
        except HTTPError as error:
            response = error_response(error)
        except ComptoirError as exc:
            mapped = http_error_for(exc)
            if mapped is None:
                log_unexpected(self.name, request.request_id, exc)
                mapped = HTTPError(500, "internal", "something went wrong")
            response = error_response(mapped)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become a 500
            log_unexpected(self.name, request.request_id, exc)
            response = error_response(HTTPError(500, "internal", "something went wrong"))
        if not isinstance(response.body, bytes):
            response.body = self._guarded(response.body, request)
        if self.cors is not None and request.method != "OPTIONS":
            response.headers.update(self.cors.response_headers(request) or {})
        response.headers.setdefault("X-Request-Id", request.request_id)
        log_request(
            function=self.name,
            shop=response.shop,
            request_id=request.request_id,
            method=request.method,
            # Only route patterns are logged: a path is client input and may carry anything.
            route=(self.mount + matches[0][0].pattern).rstrip("/") if matches else "unmatched",
            status=response.status,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    def _guarded(self, body: Iterable[bytes], request: Request) -> Iterator[bytes]:
        """A streamed body runs after this call has returned: its unexpected errors are logged
        here (type and place only) and end the stream with an error event."""
        try:
            yield from body
        except Exception as exc:  # noqa: BLE001 - the runtime would log the message otherwise
            log_unexpected(self.name, request.request_id, exc)
            yield _sse("error", {"error": {"code": "internal", "message": "something went wrong"}})

    def _dispatch(self, request: Request, matches: list[tuple[_Route, dict[str, str]]]) -> Response:
        if not matches:
            raise HTTPError(404, "not_found", "no such route")
        if request.method == "OPTIONS" and self.cors is not None:
            return self.cors.preflight(request)
        for route, params in matches:
            if handler := route.methods.get(request.method):
                declared = route.body_limits.get(request.method)
                if declared is not None and len(request.body) > (limit := _limit(declared)):
                    raise body_too_large(limit)
                return handler(replace(request, params=params))
        methods = {m for route, _ in matches for m in route.methods}
        allow = ", ".join(sorted({*methods, *(["OPTIONS"] if self.cors else [])}))
        raise HTTPError(405, "method_not_allowed", f"use {allow}", headers={"Allow": allow})
