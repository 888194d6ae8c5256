"""The local server of ``make dev``: every HTTP function on one port, plus ``web/`` statics,
the operator console (``web/dist/admin`` at ``/admin/``) and the test payment provider's
checkout page (``shared/devpay.py``).

The functions served are those of ``functions.FUNCTIONS`` that have routes, each module's
``handler`` (an HTTPFunction) under its mount path, so adding a function needs no edit here.
"""

from __future__ import annotations

import importlib
import mimetypes
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared import devpay
from shared.http import (
    MAX_BODY_BYTES,
    HTTPError,
    HTTPFunction,
    Request,
    Response,
    body_too_large,
    error_response,
    json_response,
)
from shared.log import log_event

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"


def discover_functions() -> list[HTTPFunction]:
    from functions import FUNCTIONS

    found = []
    for function in (f for f in FUNCTIONS if f.routes):
        handler = getattr(importlib.import_module(f"functions.{function.name}"), "handler", None)
        if not isinstance(handler, HTTPFunction):
            raise TypeError(f"functions/{function.name}.py has routes but no HTTPFunction handler")
        found.append(handler)
    # Longest mount first, so /chat/history is not taken by a shorter prefix.
    return sorted(found, key=lambda f: -len(f.mount))


def static_response(path: str) -> Response:
    root, relative = WEB, path.lstrip("/")
    if path == "/admin":
        return Response(308, b"", {"Location": "/admin/"})
    if path.startswith("/admin/"):  # the operator console as built (its API is routed before)
        root, relative = WEB / "dist" / "admin", path.removeprefix("/admin/")
    target = (root / (relative or "index.html")).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return json_response(404, {"error": {"code": "not_found", "message": "no such file"}})
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Response(
        200, target.read_bytes(), {"Content-Type": content_type, "Cache-Control": "no-cache"}
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Connections the kernel holds while the server is busy accepting (socketserver's default
    # is 5: a burst of page loads or webhooks was refused).
    request_queue_size = 128


def make_server(host: str, port: int, *, read_timeout: float) -> ThreadingHTTPServer:
    """The server; a client silent for ``read_timeout`` seconds (an idle keep-alive connection,
    a request that stalls) is disconnected, so it holds no thread for ever."""
    functions = discover_functions()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, each body waited for the
        # client's delayed ACK (about 40 ms on Linux) on a kept-alive connection.
        disable_nagle_algorithm = True
        # Every socket read waits at most this long; handle_one_request closes the connection
        # on the timeout, body reads included.
        timeout = read_timeout

        def _serve(self) -> None:
            url = urlsplit(self.path)
            target = next((f for f in functions if f.owns(url.path)), None)
            limit = target.body_limit(self.command, url.path) if target else MAX_BODY_BYTES
            try:
                body = self._read_body(limit)
            except HTTPError as error:
                # The body is left unread: the connection cannot carry another request.
                self.send_response(error.status)
                self.send_header("Connection", "close")
                self._send(error_response(error), head=False)
                return
            head = self.command == "HEAD"  # answered as GET, without the body
            request = Request(
                method="GET" if head else self.command,
                path=url.path,
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                source_ip=self.client_address[0],
            )
            if target is not None:
                response = target(request)
            elif devpay.serves(url.path):  # the test provider's checkout page
                response = devpay.respond(request, functions)
            else:
                response = static_response(url.path)
            self.send_response(response.status)
            self._send(response, head=head)

        def _send(self, response: Response, *, head: bool) -> None:
            for name, value in response.headers.items():
                self.send_header(name, value)
            if isinstance(response.body, bytes):
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(response.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if head:
                return  # the stream is never started
            for chunk in response.body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def _read_body(self, limit: int) -> bytes:
            """The body, refused (413) from its announced length before it is read."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked(limit)
            announced = (self.headers.get("Content-Length") or "0").strip()
            if not announced.isdigit():
                raise HTTPError(400, "bad_request", "Content-Length is not a number")
            length = int(announced)
            if length > limit:
                raise body_too_large(limit)
            return self.rfile.read(length) if length else b""

        def _read_chunked(self, limit: int) -> bytes:
            """A chunked body, refused as soon as it grows past ``limit``."""
            body = bytearray()
            while True:
                line = self.rfile.readline(_MAX_LINE)
                size_text = line.split(b";", 1)[0].strip()
                if not size_text or not all(c in _HEX_DIGITS for c in size_text):
                    raise HTTPError(400, "bad_request", "malformed chunked body")
                size = int(size_text, 16)
                if size == 0:
                    break
                if len(body) + size > limit:
                    raise body_too_large(limit)
                body += self.rfile.read(size)
                self.rfile.readline(_MAX_LINE)  # the CRLF closing the chunk
            for _ in range(_MAX_TRAILERS):
                if self.rfile.readline(_MAX_LINE) in (b"\r\n", b"\n", b""):
                    return bytes(body)
            raise HTTPError(400, "bad_request", "too many trailer lines")

        do_GET = do_HEAD = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            """Silenced: the functions write their own JSON access log."""

    return _Server((host, port), Handler)


def start_ticker(tick: Callable[[], object], interval: float) -> threading.Event:
    """Call ``tick`` every ``interval`` seconds (first after one interval) in a daemon thread,
    until the returned event is set; 0 starts nothing. A failing tick is logged (its error
    type) and the next one runs as planned."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                tick()
            except Exception as exc:  # noqa: BLE001 - the dev server keeps serving
                log_event("dev_tick_failed", error_type=type(exc).__name__)

    if interval > 0:
        threading.Thread(target=run, name="dev-tick", daemon=True).start()
    return stop


_MAX_LINE = 1024  # a chunk-size or trailer line
_MAX_TRAILERS = 32
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
