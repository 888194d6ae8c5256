"""The WhatsApp Cloud API webhook: ``GET /webhooks/whatsapp`` answers Meta's verification
handshake; ``POST /webhooks/whatsapp`` takes messages, delivery statuses and marketing
preferences, verified against ``X-Hub-Signature-256`` before anything is parsed, stored and
queued, then acknowledged (200) for every authentic post, even of types that get no answer.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_whatsapp``
(functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from shared.app import get_app
from shared.channels.meta import handshake
from shared.channels.webhook import receive_post
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("webhook_whatsapp", "/webhooks/whatsapp")


@handler.route("/", "GET")
def verify(request: Request) -> Response:
    challenge = handshake(request.query, get_app().settings.whatsapp_verify_token)
    return Response(200, challenge.encode(), {"Content-Type": "text/plain; charset=utf-8"})


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    handled = receive_post(get_app(), "whatsapp", request.body, request.header)
    response = json_response(200, {"ok": True})
    response.shop = handled.shop
    return response


lambda_handler = lambda_adapter(handler)
webhook_whatsapp = gcf_adapter(handler)
