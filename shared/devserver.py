"""The local server of ``make dev``: every HTTP function on one port, plus ``web/`` statics.

Functions are found by scanning ``functions/``: a module whose ``handler`` is an HTTPFunction is
served under its mount path, so adding a function needs no edit here.
"""

from __future__ import annotations

import importlib
import mimetypes
import pkgutil
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared.http import HTTPFunction, Request, Response, json_response

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"


def discover_functions() -> list[HTTPFunction]:
    import functions

    found = []
    for info in pkgutil.iter_modules(functions.__path__):
        module = importlib.import_module(f"functions.{info.name}")
        handler = getattr(module, "handler", None)
        if isinstance(handler, HTTPFunction):
            found.append(handler)
    # Longest mount first, so /chat/history is not taken by a shorter prefix.
    return sorted(found, key=lambda f: -len(f.mount))


def static_response(path: str) -> Response:
    relative = "index.html" if path in ("", "/") else path.lstrip("/")
    target = (WEB / relative).resolve()
    if not target.is_relative_to(WEB) or not target.is_file():
        return json_response(404, {"error": {"code": "not_found", "message": "no such file"}})
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Response(
        200, target.read_bytes(), {"Content-Type": content_type, "Cache-Control": "no-cache"}
    )


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    functions = discover_functions()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, each body waited for the
        # client's delayed ACK (about 40 ms on Linux) on a kept-alive connection.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                source_ip=self.client_address[0],
            )
            target = next(
                (f for f in functions if url.path == f.mount or url.path.startswith(f.mount + "/")),
                None,
            )
            response = target(request) if target else static_response(url.path)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if isinstance(response.body, bytes):
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            """Silenced: the functions write their own JSON access log."""

    return ThreadingHTTPServer((host, port), Handler)
