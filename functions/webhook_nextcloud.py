"""The Nextcloud Talk bot webhook: ``POST /webhooks/nextcloud``, the URL given to
``occ talk:bot:install``. A post is checked (its signature under NEXTCLOUD_BOT_SECRET, its
server in NEXTCLOUD_ALLOWED_BACKENDS, its random not seen before) before anything is stored; a
message is stored and queued once (by server, conversation and message id), then acknowledged
(200).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_nextcloud``
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

handler = HTTPFunction("webhook_nextcloud", "/webhooks/nextcloud")


@handler.route("/", "POST")
def receive(request: Request) -> Response:
    handled = receive_post(get_app(), "nextcloud", request.body, request.header)
    response = json_response(200, {"ok": True})
    response.shop = handled.shop
    return response


lambda_handler = lambda_adapter(handler)
webhook_nextcloud = gcf_adapter(handler)
