"""Received e-mail: ``POST /webhooks/email/ses`` (Amazon SES's receipt rule through an SNS
HTTP(S) subscription: the SNS signature and topic checked, a subscription confirmed) and
``POST /webhooks/email/inbound`` (any forwarder, signed with ``EMAIL_INBOUND_SECRET`` and a
timestamp). Each message is stored and queued once (by Message-ID), then acknowledged (200);
the worker sends the reply (``shared/channels/email``).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``webhook_email``
(functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from shared.app import get_app
from shared.channels.email.inbound import SesWebhook
from shared.channels.webhook import Handled, receive_post
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("webhook_email", "/webhooks/email")


@handler.route("/ses", "POST")
def receive_ses(request: Request) -> Response:
    return _acknowledged(
        receive_post(get_app(), "email", request.body, request.header, SesWebhook())
    )


@handler.route("/inbound", "POST")
def receive_inbound(request: Request) -> Response:
    return _acknowledged(receive_post(get_app(), "email", request.body, request.header))


def _acknowledged(handled: Handled) -> Response:
    response = json_response(200, {"ok": True})
    response.shop = handled.shop
    return response


lambda_handler = lambda_adapter(handler)
webhook_email = gcf_adapter(handler)
