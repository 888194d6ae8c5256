"""``GET /healthz``: 200 when the store answers, 503 when it does not; names the backends."""

from __future__ import annotations

from shared.app import get_app
from shared.exceptions import StoreUnavailableError
from shared.http import HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("health", "/healthz")


@handler.route("/", "GET")
def get_health(request: Request) -> Response:
    app = get_app()
    body = {"status": "ok", "store": app.store_backend, "llm": app.settings.llm_provider}
    try:
        app.store.ping()
    except StoreUnavailableError:
        return json_response(503, {**body, "status": "unavailable"})
    return json_response(200, body)


lambda_handler = lambda_adapter(handler)
health = gcf_adapter(handler)
