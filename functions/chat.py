"""The chat function: ``POST /chat`` (one turn), ``GET /chat/history``, and live voice in the
widget (``POST /chat/voice/session``, ``/chat/voice/tools``, ``/chat/voice/transcript``:
``shared/voice.py``).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``chat`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.app import get_app
from shared.cards import author, payment_json, product_card
from shared.chat import HistoryMessage, TurnEvent, TurnResult
from shared.crm import lead_json
from shared.exceptions import InvalidInputError, MessageTooLongError
from shared.http import (
    Cors,
    HTTPError,
    HTTPFunction,
    Request,
    Response,
    json_response,
    parse_json_body,
    parse_model,
    sse_response,
)
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("chat", "/chat", cors=Cors(lambda: get_app().settings.allowed_origins))


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class VoiceSessionBody(_Body):
    shop: str | None = None
    session_id: str | None = None  # the widget's chat session; a new one when unknown


class VoiceToolBody(_Body):
    shop: str | None = None
    session_id: str = Field(min_length=1, max_length=64)
    call_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(default="{}", max_length=8000)  # the provider's JSON string


class VoiceTranscriptBody(_Body):
    shop: str | None = None
    session_id: str = Field(min_length=1, max_length=64)
    role: Literal["user", "assistant"]
    text: str
    item_id: str = Field(min_length=1, max_length=100)  # the provider's item: one message each


@handler.route("/", "POST")
def post_chat(request: Request) -> Response:
    payload = parse_json_body(request)
    message, session_id, shop_id = (payload.get(k) for k in ("message", "session_id", "shop"))
    if not isinstance(message, str) or not message.strip():
        raise HTTPError(400, "invalid_message", "'message' must be a non-empty string")
    if session_id is not None and not isinstance(session_id, str):
        raise HTTPError(400, "invalid_session_id", "'session_id' must be a string or null")
    if shop_id is not None and not isinstance(shop_id, str):
        raise HTTPError(400, "invalid_shop", "'shop' must be a string or null")
    app = get_app()
    shop = app.shops.get(shop_id)
    # The one check of a customer's web message: the turn stores it as it is.
    text = message.strip()
    if len(text) > app.settings.max_message_chars:
        raise MessageTooLongError(f"message over {app.settings.max_message_chars} characters")
    chat = app.chat
    chat.check_rate(shop, session_id, request.source_ip or "unknown")
    # The widget shows its microphone from the first reply on, as from the history.
    voice = app.voice.available(shop)
    # Where the platform buffers the response (AWS), SSE would only arrive whole, later.
    if app.settings.http_streaming and "text/event-stream" in request.header("accept"):
        response = sse_response(_sse(chat.stream(shop, session_id, text), voice))
    else:
        response = json_response(200, turn_json(chat.turn(shop, session_id, text), voice))
    response.shop = shop.id
    return response


@handler.route("/history", "GET")
def get_history(request: Request) -> Response:
    session_id = request.query.get("session_id", "")
    if not session_id:
        raise InvalidInputError("'session_id' is required")
    app = get_app()
    shop = app.shops.get(request.query.get("shop"))
    chat = app.chat
    chat.check_rate(shop, None, request.source_ip or "unknown")  # the client's count, as POST's
    # ``after``: only the messages after that one (a widget waiting for an operator's reply).
    found = chat.history(shop, session_id, request.query.get("after") or None)
    messages = [history_json(entry) for entry in found.messages]
    body = {
        "session_id": session_id,
        "state": found.state,
        "messages": messages,
        "voice": app.voice.available(shop),  # the widget offers a call (its microphone button)
    }
    response = json_response(200, body)
    response.shop = shop.id
    return response


@handler.route("/voice/session", "POST")
def post_voice_session(request: Request) -> Response:
    body = parse_model(request, VoiceSessionBody)
    app = get_app()
    shop = app.shops.get(body.shop)
    app.chat.check_rate(shop, body.session_id, request.source_ip or "unknown")
    response = json_response(200, app.voice.start(shop, body.session_id).to_json())
    response.headers["Cache-Control"] = "no-store"  # a key, however short-lived
    response.shop = shop.id
    return response


@handler.route("/voice/tools", "POST")
def post_voice_tool(request: Request) -> Response:
    body = parse_model(request, VoiceToolBody)
    app = get_app()
    shop = app.shops.get(body.shop)
    # The client's count only: a lively call makes more calls a minute than a chat.
    app.chat.check_rate(shop, None, request.source_ip or "unknown")
    output = app.voice.run_tool(shop, body.session_id, body.call_id, body.name, body.arguments)
    response = json_response(200, {"call_id": body.call_id, "output": output})
    response.shop = shop.id
    return response


@handler.route("/voice/transcript", "POST")
def post_voice_transcript(request: Request) -> Response:
    body = parse_model(request, VoiceTranscriptBody)
    app = get_app()
    shop = app.shops.get(body.shop)
    text = body.text.strip()
    if not text:
        raise InvalidInputError("'text' must not be empty")
    if len(text) > app.settings.max_message_chars:
        raise MessageTooLongError(f"text over {app.settings.max_message_chars} characters")
    app.chat.check_rate(shop, None, request.source_ip or "unknown")
    app.voice.add_transcript(shop, body.session_id, body.role, text, body.item_id)
    response = Response(204, b"", {})
    response.shop = shop.id
    return response


def turn_json(result: TurnResult, voice: bool) -> dict[str, Any]:
    """A turn's result as the API returns it (the JSON body, the SSE ``done`` event); ``voice``:
    the shop offers live voice calls."""
    return {
        "session_id": result.session_id,
        # "human": a person of the shop has the conversation (the widget then polls for them).
        "state": result.conversation.state,
        "reply": result.reply,
        "products": [product_card(p) for p in result.products],
        "lead": lead_json(result.lead) if result.lead is not None else None,
        "lang": result.lang,
        "payment": payment_json(result.payment) if result.payment is not None else None,
        "voice": voice,
    }


def history_json(entry: HistoryMessage) -> dict[str, Any]:
    """A message of ``GET /chat/history``: a reply with its cards (a customer's message has
    none) and its language, which the widget writes the cards' prices in; who wrote it (an
    operator's reply is labelled as such, never with the operator's e-mail)."""
    message = entry.message
    return {
        "id": message.id,
        "role": message.role,
        "author": author(message),
        "text": message.text,
        "at": _iso(message.at),
        "products": [product_card(product, variant) for product, variant in entry.cards],
        "lang": message.lang,
        "payment": payment_json(message.payment) if message.payment is not None else None,
        "voice": bool(message.voice),  # a line of a voice call's transcript
    }


def _sse(
    events: Iterator[TurnEvent | TurnResult], voice: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    for event in events:
        if isinstance(event, TurnResult):
            yield "done", turn_json(event, voice)
        else:
            yield event.kind, {"text": event.text}


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


lambda_handler = lambda_adapter(handler)
chat = gcf_adapter(handler)
