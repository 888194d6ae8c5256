"""The official ``mcp`` SDK client against the real dev server (``python -m shared serve``):
it connects (initialize), lists and calls the shop's tools, and reads the errors; the key comes
from ``python -m shared apikey create``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import DevServer, dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(tmp_path_factory.mktemp("mcp")) as running:
        yield running


def make_key(server: DevServer, scopes: str) -> str:
    done = server.cli("apikey", "create", "--shop", "demo", "--scopes", scopes, "--name", "test")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def session(server: DevServer, key: str | None, work: Any) -> Any:
    """Run ``work(client)`` on an SDK client connected to the dev server's /mcp."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
        ):
            return await work(client)

    # A thread of its own: Playwright's sync API (the browser tests) may hold this one's loop.
    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, main()).result()


def failure(server: DevServer, key: str | None, work: Any) -> BaseException:
    """The error ``work`` ends with (the SDK's task groups wrap it: the innermost one)."""
    try:
        session(server, key, work)
    except BaseException as exc:  # noqa: BLE001 - the error is what the test reads
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        return exc
    raise AssertionError("the call succeeded")


def catalogue_price(server: DevServer, product_id: str) -> Decimal:
    """The product's lowest price as the dev server's store holds it."""
    from shared.models import Product
    from shared.store import open_store

    store = open_store(server.env["STORE_URL"])
    try:
        doc = store.get("demo", "products", product_id)
        assert doc is not None
        return Product.from_doc(doc).price
    finally:
        store.close()


def test_the_sdk_lists_and_calls_the_tools(server: DevServer) -> None:
    key = make_key(server, "catalog:read,orders:write")

    async def work(client: Any) -> tuple[Any, Any, Any]:
        tools = await client.list_tools()
        found = await client.call_tool("search_products", {"query": "sandales"})
        product = found.structured_content["products"][0]
        details = await client.call_tool("get_product", {"id": product["id"]})
        return tools, product, details

    tools, product, details = session(server, key, work)
    names = {tool.name for tool in tools.tools}
    assert names == {"search_products", "get_product", "search_faq", "get_order_status",
                     "create_payment_link"}  # fmt: skip
    search = next(t for t in tools.tools if t.name == "search_products")
    assert search.input_schema["required"] == ["query"]
    assert Decimal(str(product["price"])) == catalogue_price(server, product["id"])
    assert details.is_error is False
    assert Decimal(str(details.structured_content["price"])) == catalogue_price(
        server, product["id"]
    )


def test_the_sdk_reads_the_errors(server: DevServer) -> None:
    from mcp.shared.exceptions import MCPError

    key = make_key(server, "catalog:read")

    async def unknown_tool(client: Any) -> Any:
        return await client.call_tool("no_such_tool", {})

    async def bad_args(client: Any) -> Any:
        return await client.call_tool("get_product", {"identifier": 3})

    async def unknown_product(client: Any) -> Any:
        return await client.call_tool("get_product", {"id": "nope"})

    async def out_of_scope(client: Any) -> Any:
        return await client.call_tool("create_payment_link", {"order_id": "x"})

    for work in (unknown_tool, bad_args):
        error = failure(server, key, work)
        assert isinstance(error, MCPError) and error.error.code == -32602, error
    result = session(server, key, unknown_product)
    assert result.is_error is True and "unknown product" in result.content[0].text
    refused = failure(server, key, out_of_scope)
    assert isinstance(refused, MCPError) and refused.error.code == -32003, refused
    assert "orders:write" in refused.error.message
    anonymous = failure(server, None, unknown_product)
    assert isinstance(anonymous, MCPError) and anonymous.error.code == -32001, anonymous


def test_keys_are_listed_and_revoked_from_the_cli(server: DevServer, tmp_path: Path) -> None:
    key = make_key(server, "catalog:read")
    listed = server.cli("apikey", "list", "--shop", "demo").stdout
    assert key[:10] in listed and key not in listed
    assert server.cli("apikey", "revoke", key[:10], "--shop", "demo").returncode == 0
    assert "revoked" in server.cli("apikey", "list", "--shop", "demo").stdout
