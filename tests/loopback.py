"""Loopback servers for tests and benches: the fake providers (models, Graph, Telegram, GCS,
Pub/Sub) in a thread, and the project's own dev server in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class FakeHandler(BaseHTTPRequestHandler):
    """A fake provider's request handler: JSON (or bytes) answers, and no access log (the test
    reads what the fake recorded)."""

    def reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """``payload`` as JSON, or bytes as they are; ``headers`` (lower case) add or replace."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        content_type = (
            "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        )
        for name, value in {"content-type": content_type, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class LoopbackServer(ThreadingHTTPServer):
    # Handlers run in daemon threads that server_close() does not wait for: a stalled answer or
    # an idle keep-alive connection must not hold up the end of the session.
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) or dropped its idle keep-alive connection is
        # normal here; anything else is a bug in the fake server and is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], name: str, port: int = 0
) -> Iterator[LoopbackServer]:
    """Run a loopback server in a thread for the duration of the block (``port`` 0: any free
    one)."""
    server = LoopbackServer(handler, port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    """A loopback port nobody listens on (for a server started right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevServer:
    """``python -m shared serve`` on loopback, with its own settings and SQLite store."""

    url: str
    env: dict[str, str]
    data: Path
    process: subprocess.Popen[bytes] | None = None  # the server, once started

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An operator command against the same store (``python -m shared ARGS``)."""
        return subprocess.run(
            [sys.executable, "-m", "shared", *args],
            cwd=self.data,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@contextmanager
def dev_server(
    data: Path,
    settings: Mapping[str, str] | None = None,
    *,
    setup: Sequence[Sequence[str]] = (("seed-demo",),),
    stderr: Path | None = None,
    stdout: Path | None = None,
) -> Iterator[DevServer]:
    """The dev server on a free port, after the operator commands in ``setup``; ready when
    ``/healthz`` answers. It runs in ``data`` with none of the caller's own Comptoir settings
    (no .env, no exported variable), only the defaults and ``settings``."""
    from shared.settings import Settings

    aliases = {field.alias for field in Settings.model_fields.values()}
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in aliases}
    env.update(
        PYTHONPATH=str(ROOT),
        STORE_URL=f"sqlite:///{data}/dev.db",
        HOST="127.0.0.1",
        PORT=str(port),
        **(settings or {}),
    )
    server = DevServer(f"http://127.0.0.1:{port}", env, data)
    for args in setup:
        done = server.cli(*args)
        if done.returncode != 0:
            raise RuntimeError(f"python -m shared {' '.join(args)} failed:\n{done.stderr}")
    with (
        stderr.open("wb") if stderr else open(os.devnull, "wb") as log,
        stdout.open("wb") if stdout else open(os.devnull, "wb") as out,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "shared", "serve"], cwd=data, env=env, stdout=out, stderr=log
        )
    server.process = process
    try:
        deadline = time.monotonic() + 30
        while not _healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the dev server did not answer /healthz")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
