"""What a new user does after `make dev`: the real dev server on loopback, the demo shop seeded
by the CLI, a chat turn over HTTP, history, statics, and a Shopify CSV import that is answerable."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from functions import FUNCTIONS
from shared.devserver import discover_functions
from shared.http import MAX_BODY_BYTES
from shared.models import Product
from shared.money import format_price
from shared.store import open_store
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, signature, whatsapp_text
from tests.fixtures.graph_server import TOKEN
from tests.loopback import DevServer, dev_server, serving

READ_TIMEOUT = 1.0  # DEV_READ_TIMEOUT of the module's server


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
    settings = {
        "DEFAULT_SHOP": "demo",
        "ALLOWED_ORIGINS": "*",
        "DEV_READ_TIMEOUT": str(READ_TIMEOUT),
    }
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


def test_every_listed_route_is_served(devserver: DevServer) -> None:
    served = discover_functions()
    assert {f.name for f in served} == {fn.name for fn in FUNCTIONS if fn.routes}
    assert [len(f.mount) for f in served] == sorted((len(f.mount) for f in served), reverse=True)
    for fn in FUNCTIONS:
        for route in fn.routes:
            method, pattern = route.split(" ")
            path = "/".join("x" if s.startswith("{") else s for s in pattern.split("/"))
            # No body, no secret: each answers its own refusal, never "no such route".
            status, _, body = call(devserver, method, path)
            assert status != 404 or json.loads(body)["error"]["code"] != "not_found", route


def test_the_demo_cards_show_images_the_dev_server_serves(devserver: DevServer) -> None:
    """Every demo product (and every product on the demo page) has a small picture served
    beside the page, so the first cards look like a shop, not grey boxes."""
    store = open_store(devserver.env["STORE_URL"])
    products = [Product.from_doc(d) for d in store.query("demo", "products", limit=500).items]
    _, _, page = call(devserver, "GET", "/")
    on_page = re.findall(r'<img class="swatch" src="([^"]+)"', page.decode())
    assert len(on_page) == 8
    total = 0
    for image in {p.image for p in products} | set(on_page):
        assert image.startswith("/demo-images/"), image  # beside the page: same origin
        status, headers, body = call(devserver, "GET", image)
        assert (status, headers["Content-Type"]) == (200, "image/svg+xml"), image
        assert body.startswith(b"<svg ") and len(body) < 4096, image
        total += len(body)
    assert len({p.image for p in products}) == len(products)  # one picture per product
    assert total < 200_000


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


# --- the server itself ---------------------------------------------------------------------------


def _connect(server: DevServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET / HTTP/1.1\r\nHost: loc", b"POST /chat HTTP/1.1\r\nContent-Length: 40\r\n\r\n{"],
    ids=["nothing", "half the headers", "half the body"],
)
def test_a_silent_client_is_disconnected_after_the_read_timeout(
    devserver: DevServer, sent: bytes
) -> None:
    with _connect(devserver) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server; a held thread would time out here
        assert READ_TIMEOUT * 0.5 < time.monotonic() - started < READ_TIMEOUT + 5


def _response(sock: socket.socket, method: str = "POST") -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response


def test_a_body_over_the_limit_is_refused_before_it_is_read(devserver: DevServer) -> None:
    with _connect(devserver) as sock:
        # Only the headers are sent: an answer means the server did not wait for the body.
        sock.sendall(
            b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1)
        )
        response = _response(sock)
        assert response.status == 413
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())["error"]["code"] == "body_too_large"


def _chunked(payload: bytes, size: int) -> bytes:
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_a_chunked_body_is_read_and_bounded(devserver: DevServer) -> None:
    headers = b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    headers += b"Transfer-Encoding: chunked\r\n\r\n"
    with _connect(devserver) as sock:
        message = json.dumps({"message": "Avez-vous des sandales en cuir ?"}).encode()
        sock.sendall(headers + _chunked(message, 7))
        response = _response(sock)
        assert response.status == 200
        assert "sandale" in json.loads(response.read())["reply"].lower()
        # Same connection: six 10 kB chunks, then the size line of one that passes the limit.
        sock.sendall(headers + _chunked(b"x" * 60_000, 10_000)[: -len(b"0\r\n\r\n")])
        sock.sendall(b"%x\r\n" % 10_000)
        response = _response(sock)
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "body_too_large"


def test_head_answers_the_headers_of_get_without_the_body(devserver: DevServer) -> None:
    host, port = devserver.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for path in ("/", "/healthz"):
            connection.request("GET", path)
            got = connection.getresponse()
            body = got.read()
            connection.request("HEAD", path)  # the same kept-alive connection
            head = connection.getresponse()
            assert head.status == got.status == 200
            assert head.getheader("Content-Type") == got.getheader("Content-Type")
            assert head.getheader("Content-Length") == str(len(body))
            assert head.read() == b""
        connection.request("GET", "/healthz")  # no stray body bytes were left on the line
        assert json.loads(connection.getresponse().read())["status"] == "ok"
    finally:
        connection.close()


def test_connections_wait_in_a_long_listen_queue(devserver: DevServer) -> None:
    """With the server stopped, the kernel completes as many handshakes as the listen backlog
    holds (socketserver's default is 5)."""
    assert devserver.process is not None
    host, port = devserver.url.removeprefix("http://").split(":")
    clients = [socket.socket() for _ in range(64)]
    selector = selectors.DefaultSelector()
    os.kill(devserver.process.pid, signal.SIGSTOP)
    try:
        for client in clients:
            client.setblocking(False)
            assert client.connect_ex((host, int(port))) in (0, 115)  # 115: EINPROGRESS
            selector.register(client, selectors.EVENT_WRITE)
        connected: set[socket.socket] = set()
        deadline = time.monotonic() + 0.8  # under the SYN retry (1 s): the first try only
        while len(connected) < len(clients) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                client = key.fileobj
                assert isinstance(client, socket.socket)
                selector.unregister(client)
                if client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.add(client)
    finally:
        os.kill(devserver.process.pid, signal.SIGCONT)
        selector.close()
        for client in clients:
            client.close()
    assert len(connected) == len(clients)


# --- stopping ------------------------------------------------------------------------------------


class SlowGraph:
    """WhatsApp's Graph API on loopback, answering each message after a pause."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("type"):  # a message, not a read receipt
                    time.sleep(0.4)
                    with graph.lock:
                        graph.sent.append(body)
                answer = json.dumps({"messages": [{"id": f"wamid.OUT{len(graph.sent)}"}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def test_sigterm_finishes_the_queued_work_then_exits_0(tmp_path: Path) -> None:
    graph = SlowGraph()
    customers = [f"22177000{n:04d}" for n in range(4)]
    with serving(graph.handler(), "slow-graph") as fake_graph:
        settings = {
            "QUEUE_URL": "inprocess://?workers=1",  # the replies wait their turn in the queue
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_ACCESS_TOKEN": TOKEN,
            "WHATSAPP_API_BASE": f"{fake_graph.root}/v21.0",
        }
        with dev_server(tmp_path, settings) as server:
            assert server.process is not None
            for n, customer in enumerate(customers):
                payload = whatsapp_text("Bonjour", f"wamid.TERM{n}", int(time.time()))
                value = payload["entry"][0]["changes"][0]["value"]
                value["messages"][0]["from"] = value["contacts"][0]["wa_id"] = customer
                body = json.dumps(payload).encode()
                request = urllib.request.Request(
                    server.url + "/webhooks/whatsapp",
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": signature(body),
                    },
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) == 0
            with pytest.raises(urllib.error.URLError):  # it no longer listens
                urllib.request.urlopen(server.url + "/healthz", timeout=2)
    assert sorted(message["to"] for message in graph.sent) == customers
