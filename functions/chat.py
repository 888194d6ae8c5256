"""The chat function: ``POST /chat`` (one turn) and ``GET /chat/history``.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``chat`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from datetime import UTC, datetime
from typing import Any

from shared.app import get_app
from shared.exceptions import InvalidInputError
from shared.http import (
    Cors,
    HTTPError,
    HTTPFunction,
    Request,
    Response,
    json_response,
    parse_json_body,
    sse_response,
)
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("chat", "/chat", cors=Cors(lambda: get_app().settings.allowed_origins))


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
    chat = get_app().chat
    shop = chat.shop(shop_id)
    text = chat.validate(message)
    chat.check_rate(shop, session_id, request.source_ip or "unknown")
    if "text/event-stream" in request.header("accept"):
        events = chat.stream(shop, session_id, text)
        response = sse_response((e.kind, e.data) for e in events)
    else:
        response = json_response(200, chat.turn(shop, session_id, text))
    response.shop = shop.id
    return response


@handler.route("/history", "GET")
def get_history(request: Request) -> Response:
    session_id = request.query.get("session_id", "")
    if not session_id:
        raise InvalidInputError("'session_id' is required")
    chat = get_app().chat
    shop = chat.shop(request.query.get("shop"))
    chat.check_rate(shop, None, request.source_ip or "unknown")  # the client's count, as POST's
    messages: list[dict[str, Any]] = [
        {"role": m.role, "text": m.text, "at": _iso(m.at)} for m in chat.history(shop, session_id)
    ]
    response = json_response(200, {"session_id": session_id, "messages": messages})
    response.shop = shop.id
    return response


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


lambda_handler = lambda_adapter(handler)
chat = gcf_adapter(handler)
