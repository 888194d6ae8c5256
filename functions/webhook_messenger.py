"""The Messenger Platform webhook, for a Page's Messenger and its Instagram account:
``GET /webhooks/messenger`` answers Meta's verification handshake; ``POST /webhooks/messenger``
takes messages, postbacks and receipts (``object`` "page" or "instagram"), verified against
``X-Hub-Signature-256`` before anything is parsed, stored and queued, then acknowledged (200)
for every authentic post, even of events that get no answer.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_messenger``
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

handler = HTTPFunction("webhook_messenger", "/webhooks/messenger")


@handler.route("/", "GET")
def verify(request: Request) -> Response:
    challenge = handshake(request.query, get_app().settings.messenger_verify_token)
    return Response(200, challenge.encode(), {"Content-Type": "text/plain; charset=utf-8"})


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    # "messenger" names the registry line whose secret checks the post; the post itself says
    # whether it is Messenger's or Instagram's.
    handled = receive_post(get_app(), "messenger", request.body, request.header)
    response = json_response(200, {"ok": True})
    response.shop = handled.shop
    return response


lambda_handler = lambda_adapter(handler)
webhook_messenger = gcf_adapter(handler)
