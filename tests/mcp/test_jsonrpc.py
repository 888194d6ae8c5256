"""The MCP server's JSON-RPC edges, straight over HTTP through both adapters: keys and scopes,
batches, notifications, parse and request errors, orders only for their customer."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from shared import apikeys
from shared.apikeys import Scope
from shared.app import App
from shared.models import Lead
from tests.fixtures.app import Client, Result

SHOP_ID = "teranga"  # tests.fixtures.app SHOP
SCOPES: list[Scope] = ["catalog:read", "orders:write"]


def key_for(app: App, scopes: list[Scope] = SCOPES, customer: str | None = None) -> str:
    return apikeys.create_key(app.store, SHOP_ID, scopes, time.time(), customer_id=customer)[0]


def rpc(client: Client, key: str | None, payload: Any, **headers: str) -> Result:
    sent = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.request("POST", "/mcp", headers={**sent, **headers}, body=body)


def call(name: str, arguments: Any, request_id: int = 1) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def test_no_key_a_wrong_key_and_a_revoked_key_are_401(client: Client, app: App) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    key = key_for(app)
    assert rpc(client, key, ping).json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert rpc(client, None, ping).status == 401
    assert rpc(client, key + "x", ping).status == 401
    apikeys.revoke_key(app.store, SHOP_ID, key, time.time())
    assert rpc(client, key, ping).status == 401


def test_a_tool_outside_the_key_scopes_is_403_and_not_listed(client: Client, app: App) -> None:
    key = key_for(app, ["catalog:read"])
    listed = rpc(client, key, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
    names = {t["name"] for t in listed["result"]["tools"]}
    assert names == {"search_products", "get_product", "search_faq"}
    refused = rpc(client, key, call("create_payment_link", {"order_id": "x", "phone": "1"}))
    assert refused.status == 403


def test_batches_notifications_and_protocol_errors(client: Client, app: App) -> None:
    key = key_for(app)
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (reply := rpc(client, key, notification)).status == 202 and reply.body == b""
    assert rpc(client, key, [notification, notification]).status == 202
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        notification,
        {"jsonrpc": "2.0", "id": 2, "method": "resources/list"},
        {"jsonrpc": "1.0", "id": 3, "method": "ping"},
        call("get_product", {}, 4),
        call("no_such_tool", {}, 5),
    ]
    answers = {a["id"]: a for a in rpc(client, key, batch).json()}
    assert answers["a"]["result"] == {}
    assert answers[2]["error"]["code"] == -32601
    assert answers[None]["error"]["code"] == -32600
    assert answers[4]["error"]["code"] == -32602 and "id" in answers[4]["error"]["message"]
    assert answers[5]["error"]["code"] == -32602
    assert rpc(client, key, []).json()["error"]["code"] == -32600
    parse = rpc(client, key, b'{"jsonrpc": "2.0", "id": 1, "meth')
    assert parse.status == 400 and parse.json()["error"]["code"] == -32700
    assert (
        rpc(client, key, {"jsonrpc": "2.0", "id": 1, "method": 7}).json()["error"]["code"] == -32600
    )
    old = rpc(
        client,
        key,
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        **{"mcp-protocol-version": "1999-01-01"},
    )
    assert old.status == 400
    assert client.request("GET", "/mcp", headers={"authorization": f"Bearer {key}"}).status == 405


def test_initialize_negotiates_the_version(client: Client, app: App) -> None:
    key = key_for(app)

    def initialize(version: str) -> str:
        params = {"protocolVersion": version, "capabilities": {},
                  "clientInfo": {"name": "t", "version": "1"}}  # fmt: skip
        reply = rpc(
            client, key, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        )
        result = reply.json()["result"]
        assert result["capabilities"]["tools"] == {"listChanged": False}
        return str(result["protocolVersion"])

    assert initialize("2025-03-26") == "2025-03-26"
    assert initialize("2030-01-01") == "2025-11-25"


def order(app: App, customer: str, phone: str) -> Lead:
    now = time.time()
    lead = Lead(
        id=f"order-{customer}", customer_id=customer, conversation_id=f"conv-{customer}",
        channel="web", name="Awa", phone=phone, address="Dakar", product_id="sandales-cuir",
        product_title="Sandales en cuir", variant_id="sandales-cuir:40", variant_title="40",
        quantity=2, unit_price=Decimal(15000), currency="XOF", total=Decimal(30000),
        status="confirmed", created_at=now, updated_at=now,
    )  # fmt: skip
    app.store.put(SHOP_ID, "leads", lead.id, lead.to_doc())
    return lead


@pytest.mark.parametrize("bound", [True, False])
def test_an_order_is_read_only_for_its_customer(client: Client, app: App, bound: bool) -> None:
    mine = order(app, "cust-a", "+221770000001")
    theirs = order(app, "cust-b", "+221770000002")
    key = key_for(app, ["orders:read"], customer="cust-a" if bound else None)
    phone = {} if bound else {"phone": "77 000 00 01"}
    status = rpc(client, key, call("get_order_status", {"reference": mine.id, **phone})).json()
    assert status["result"]["structuredContent"]["status"] == "confirmed"
    assert status["result"]["structuredContent"]["total"] == 30000
    other = rpc(client, key, call("get_order_status", {"reference": theirs.id, **phone})).json()
    assert other["result"]["isError"] is True
    unknown = rpc(client, key, call("get_order_status", {"reference": "nope", **phone})).json()
    assert unknown["result"]["content"] == other["result"]["content"]  # nothing tells them apart


def test_a_payment_link_is_for_the_catalogue_total(client: Client, app: App) -> None:
    mine = order(app, "cust-a", "+221770000001")
    key = key_for(app)
    made = rpc(
        client, key, call("create_payment_link", {"order_id": mine.id, "phone": "+221770000001"})
    ).json()
    result = made["result"]["structuredContent"]
    assert result["amount"] == 30000 and result["payment_url"].startswith("http")
    wrong = rpc(
        client, key, call("create_payment_link", {"order_id": mine.id, "phone": "+221770000009"})
    ).json()
    assert wrong["result"]["isError"] is True


def test_the_key_is_rate_limited(client: Client, make_app: Any) -> None:
    app = make_app(RATE_LIMIT_PER_MINUTE="2")
    key = key_for(app)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    statuses = [rpc(client, key, ping).status for _ in range(3)]
    assert statuses == [200, 200, 429]
