"""The Telegram Bot API webhook: ``POST /webhooks/telegram``, checked against the secret set
with ``python -m shared telegram-webhook`` (``X-Telegram-Bot-Api-Secret-Token``) before
anything is parsed; updates are stored and queued once each (by ``update_id``), then
acknowledged (200), a button tap with its ``answerCallbackQuery`` in the response body.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_telegram``
(functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from shared.app import get_app
from shared.channels.webhook import receive_post
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("webhook_telegram", "/webhooks/telegram")


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    handled = receive_post(get_app(), "telegram", request.body, request.header)
    response = json_response(200, handled.answer or {"ok": True})
    response.shop = handled.shop
    return response


lambda_handler = lambda_adapter(handler)
webhook_telegram = gcf_adapter(handler)
