"""Loopback HTTP servers for the fake providers (models, Graph, Telegram, GCS, Pub/Sub)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    # Handlers run in daemon threads that server_close() does not wait for: a stalled answer or
    # an idle keep-alive connection must not hold up the end of the session.
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) or dropped its idle keep-alive connection is
        # normal here; anything else is a bug in the fake server and is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], name: str) -> Iterator[LoopbackServer]:
    """Run a loopback server in a thread for the duration of the block."""
    server = LoopbackServer(handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
