"""The WhatsApp Cloud API webhook: ``GET /webhooks/whatsapp`` answers Meta's verification
handshake; ``POST /webhooks/whatsapp`` takes messages, delivery statuses and marketing
preferences, verified against ``X-Hub-Signature-256`` before anything is parsed, stored and
queued, then acknowledged (200) for every authentic post, even of types that get no answer.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_whatsapp``
(functions-framework).
"""

from __future__ import annotations

from shared.app import get_app
from shared.channels.whatsapp import inbound as whatsapp_inbound
from shared.channels.webhook import check_hub_signature, configured, equal, parse
from shared.channels.whatsapp.models import WebhookPayload
from shared.http import HTTPError, HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("webhook_whatsapp", "/webhooks/whatsapp")


@handler.route("/", "GET")
def verify(request: Request) -> Response:
    token = get_app().settings.whatsapp_verify_token
    given = request.query.get("hub.verify_token", "")
    if (
        token is None
        or request.query.get("hub.mode") != "subscribe"
        or not equal(given, token.get_secret_value())
    ):
        raise HTTPError(403, "forbidden", "verification failed")
    challenge = request.query.get("hub.challenge", "")
    return Response(200, challenge.encode(), {"Content-Type": "text/plain; charset=utf-8"})


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    app = get_app()
    secret = configured(app.settings.whatsapp_app_secret, "WHATSAPP_APP_SECRET")
    check_hub_signature(request.body, request.header("x-hub-signature-256"), secret)
    payload = parse(request.body, WebhookPayload, "whatsapp")
    report = whatsapp_inbound.handle(app, payload, secret) if payload is not None else None
    response = json_response(200, {"ok": True})
    response.shop = report.shop if report is not None else ""
    return response


lambda_handler = lambda_adapter(handler)
webhook_whatsapp = gcf_adapter(handler)
