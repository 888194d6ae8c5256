"""The Telegram Bot API webhook: ``POST /webhooks/telegram``, checked against the secret set
with ``python -m shared telegram-webhook`` (``X-Telegram-Bot-Api-Secret-Token``) before
anything is parsed; updates are stored and queued once each (by ``update_id``), then
acknowledged (200), a button tap with its ``answerCallbackQuery`` in the response body.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_telegram``
(functions-framework).
"""

from __future__ import annotations

from shared.app import get_app
from shared.channels.telegram import inbound as telegram_inbound
from shared.channels.telegram.models import Update
from shared.channels.webhook import configured, equal, parse
from shared.http import HTTPError, HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("webhook_telegram", "/webhooks/telegram")


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    app = get_app()
    secret = configured(app.settings.telegram_webhook_secret, "TELEGRAM_WEBHOOK_SECRET")
    if not equal(request.header("x-telegram-bot-api-secret-token"), secret):
        raise HTTPError(401, "invalid_secret", "X-Telegram-Bot-Api-Secret-Token is wrong")
    update = parse(request.body, Update, "telegram")
    outcome = telegram_inbound.handle(app, update, secret) if update is not None else None
    response = json_response(200, (outcome.answer if outcome else None) or {"ok": True})
    response.shop = outcome.shop if outcome is not None else ""
    return response


lambda_handler = lambda_adapter(handler)
webhook_telegram = gcf_adapter(handler)
