"""The MCP server: ``POST /mcp``, MCP's Streamable HTTP transport without sessions or streams.

Every POST carries one JSON-RPC message (or a batch) and gets ``application/json`` back: the
response, or 202 with no body when there is nothing to answer (notifications). ``GET /mcp``
(the server-to-client stream) is 405, as the transport allows a server without one. The caller
sends ``Authorization: Bearer <API key>`` (``python -m shared apikey create``): 401 without a
live key, 403 for a tool outside its scopes, 429 past the per-key rate. The methods and tools
are ``shared/mcp.py``'s.

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``mcp_server`` (functions-framework;
not ``mcp``: the functions folder is on the path, and the SDK is ``mcp``).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
import time
from typing import Any

from shared import jsonsafe
from shared.apikeys import authenticate
from shared.app import get_app
from shared.exceptions import ApiKeyError, InvalidInputError, RateLimitedError, ScopeError
from shared.http import (
    MAX_BODY_BYTES,
    HTTPError,
    HTTPFunction,
    Request,
    Response,
    http_error_for,
    json_response,
)
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("mcp_server", "/mcp")
PROTOCOL_HEADER = "mcp-protocol-version"


@handler.route("/", "POST")
def post_mcp(request: Request) -> Response:
    from shared import mcp as server  # lazy: the tools and the price guard (cold start)

    if len(request.body) > MAX_BODY_BYTES:
        raise HTTPError(413, "body_too_large", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        payload = jsonsafe.loads(request.body)
    except InvalidInputError:
        return _rpc_error(400, None, server.PARSE_ERROR, "the body is not JSON")
    request_id = payload.get("id") if isinstance(payload, dict) else None
    # Refusals carry a JSON-RPC error too: MCP clients show its message, not just the status.
    try:
        return _answer(request, payload)
    except (ApiKeyError, ScopeError, RateLimitedError) as exc:
        mapped = http_error_for(exc)
        assert mapped is not None
        return _rpc_error(mapped.status, request_id, REFUSALS[type(exc)], str(exc), mapped.headers)


# Server-defined JSON-RPC codes (-32000 to -32099) for the transport's refusals.
REFUSALS: dict[type[Exception], int] = {ApiKeyError: -32001, ScopeError: -32003,
                                        RateLimitedError: -32029}  # fmt: skip


def _answer(request: Request, payload: Any) -> Response:
    from shared import mcp as server

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
    answer = server.handle(server.Caller(app, shop, key, now), payload)
    response = Response(202) if answer is None else json_response(200, answer)
    response.shop = shop.id
    return response


def _rpc_error(
    status: int, request_id: Any, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    error = {"code": code, "message": message}
    return json_response(status, {"jsonrpc": "2.0", "id": request_id, "error": error}, headers)


@handler.route("/", "GET")
def get_mcp(request: Request) -> Response:
    # No server-initiated stream: the transport lets such a server answer 405.
    raise HTTPError(405, "method_not_allowed", "use POST", headers={"Allow": "POST"})


lambda_handler = lambda_adapter(handler)
mcp_server = gcf_adapter(handler)
