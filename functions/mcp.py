"""The MCP server: ``POST /mcp``, MCP's Streamable HTTP transport without sessions or streams.

Every POST carries one JSON-RPC message (or a batch) and gets ``application/json`` back: the
response, or 202 with no body when there is nothing to answer (notifications). ``GET /mcp``
(the server-to-client stream) is 405, as the transport allows a server without one. The caller
sends ``Authorization: Bearer <API key>`` (``python -m shared apikey create``): 401 without a
live key, 403 for a tool outside its scopes, 429 past the per-key rate. The methods and tools
are ``shared/mcp.py``'s.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``mcp`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import time

from shared import jsonsafe
from shared.apikeys import authenticate
from shared.app import get_app
from shared.exceptions import ApiKeyError, InvalidInputError
from shared.http import MAX_BODY_BYTES, HTTPError, HTTPFunction, Request, Response, json_response
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("mcp", "/mcp")
PROTOCOL_HEADER = "mcp-protocol-version"


@handler.route("/", "POST")
def post_mcp(request: Request) -> Response:
    from shared import mcp as server  # lazy: the tools and the price guard (cold start)

    app = get_app()
    now = time.time()
    scheme, _, token = request.header("authorization").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiKeyError("send Authorization: Bearer <API key>")
    key = authenticate(app.store, token.strip(), now)
    shop = app.shops.get(key.shop)
    # The chat's limiter: the key counts as one session, its address as a client.
    app.chat.check_rate(shop, f"apikey:{key.id}", request.source_ip or "unknown")
    version = request.header(PROTOCOL_HEADER)
    if version and version not in server.PROTOCOL_VERSIONS:
        raise HTTPError(400, "unsupported_protocol_version", f"{PROTOCOL_HEADER}: {version[:40]}")
    accept = request.header("accept")
    if accept and not any(t in accept for t in ("application/json", "*/*")):
        raise HTTPError(406, "not_acceptable", "accept application/json")
    if len(request.body) > MAX_BODY_BYTES:
        raise HTTPError(413, "body_too_large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        payload = jsonsafe.loads(request.body)
    except InvalidInputError:
        error = {"code": server.PARSE_ERROR, "message": "the body is not JSON"}
        return _with_shop(
            json_response(400, {"jsonrpc": "2.0", "id": None, "error": error}), shop.id
        )
    answer = server.handle(server.Caller(app, shop, key, now), payload)
    if answer is None:
        return _with_shop(Response(202), shop.id)
    return _with_shop(json_response(200, answer), shop.id)


@handler.route("/", "GET")
def get_mcp(request: Request) -> Response:
    # No server-initiated stream: the transport lets such a server answer 405.
    raise HTTPError(405, "method_not_allowed", "use POST", headers={"Allow": "POST"})


def _with_shop(response: Response, shop: str) -> Response:
    response.shop = shop
    return response


lambda_handler = lambda_adapter(handler)
mcp = gcf_adapter(handler)
