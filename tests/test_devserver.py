"""What a new user does after `make dev`: the real dev server on loopback, the demo shop seeded
by the CLI, a chat turn over HTTP, history, statics, and a Shopify CSV import that is answerable."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.models import Product
from shared.money import format_price
from shared.store import open_store
from tests.loopback import DevServer, dev_server


def call(
    server: DevServer, method: str, path: str, payload: Any = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    settings = {"DEFAULT_SHOP": "demo", "ALLOWED_ORIGINS": "*"}
    with dev_server(tmp_path_factory.mktemp("dev"), settings) as server:
        yield server


def _product(server: DevServer, shop: str, product_id: str) -> Product:
    store = open_store(server.env["STORE_URL"])
    doc = store.get(shop, "products", product_id)
    assert doc is not None
    return Product.from_doc(doc)


def test_a_chat_turn_names_a_demo_product_with_its_catalogue_price(devserver: DevServer) -> None:
    status, headers, body = call(
        devserver, "POST", "/chat", {"message": "Avez-vous des sandales en cuir ?"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    card = answer["products"][0]
    product = _product(devserver, "demo", card["id"])
    assert "sandale" in product.title.lower()
    assert product.title in answer["reply"]
    assert format_price(product.price, product.currency, "fr") in answer["reply"]
    assert card["price"] == float(product.price)

    status, _, body = call(devserver, "GET", f"/chat/history?session_id={answer['session_id']}")
    assert status == 200
    assert [m["role"] for m in json.loads(body)["messages"]] == ["user", "assistant"]


def test_healthz_and_statics(devserver: DevServer) -> None:
    status, _, body = call(devserver, "GET", "/healthz")
    assert (status, json.loads(body)) == (
        200,
        {"status": "ok", "store": "sqlite", "llm": "offline"},
    )
    status, headers, page = call(devserver, "GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'src="/dist/widget.js"' in page
    status, headers, _ = call(devserver, "GET", "/widget.js")
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert call(devserver, "GET", "/../../etc/passwd")[0] == 404
    assert call(devserver, "GET", "/nope.js")[0] == 404


def test_a_shopify_csv_import_is_answerable(devserver: DevServer, tmp_path: Path) -> None:
    csv_file = tmp_path / "products_export.csv"
    csv_file.write_text(
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,"
        "Variant SKU,Variant Price,Variant Compare At Price,Image Src,Image Position,Status\n"
        "lampe-calebasse,Lampe calebasse,<p>Lampe en <b>calebasse</b> sculptée</p>,Atelier,"
        'Maison,"luminaire, déco",true,Taille,Petite,LC-S,18500,,https://cdn.example/l.jpg,1,active\n'
        "lampe-calebasse,,,,,,,,Grande,LC-L,27000,,,,\n",
        encoding="utf-8",
    )
    imported = devserver.cli(
        "import-catalog",
        str(csv_file),
        "--shop",
        "atelier",
        "--name",
        "Atelier Calebasse",
        "--currency",
        "XOF",
    )
    assert imported.returncode == 0, imported.stderr
    status, _, body = call(
        devserver,
        "POST",
        "/chat",
        {"message": "Combien coûte la lampe calebasse ?", "shop": "atelier"},
    )
    assert status == 200
    answer = json.loads(body)
    assert "Lampe calebasse" in answer["reply"]
    assert "18\u202f500 FCFA" in answer["reply"]  # the cheapest variant, from the CSV
    assert answer["products"][0]["id"] == "lampe-calebasse"
