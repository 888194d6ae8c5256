"""The payment providers' IPN: ``POST /webhooks/payments/{provider}`` (test, wave, stripe).

The provider's signature is checked on the raw body before anything is parsed (missing: 401;
wrong or older than five minutes: 403; an authentic body that is no event: 400; an unknown
provider: 404, all mapped in ``shared.http``); the event is then settled once (``shared.ipn``:
the payment recorded, the order moved, the customer's confirmation queued) and acknowledged
with 200, duplicates and events of no interest included.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``payments`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import time

from shared.app import get_app
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter
from shared.ipn import receive

handler = HTTPFunction("payments", "/webhooks/payments")


@handler.route("/{provider}", "POST")
def post_event(request: Request) -> Response:
    received = receive(
        get_app(), request.params["provider"], request.body, request.headers, time.time()
    )
    response = json_response(200, {"ok": True, "outcome": received.outcome})
    response.shop = received.shop
    return response


lambda_handler = lambda_adapter(handler)
payments = gcf_adapter(handler)
