"""What the payment providers' loopback servers share: the requests they saw, and a plan of
failures (statuses to answer, requests to stall) played before they answer normally."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class ProviderServer:
    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    fail: list[int] = field(default_factory=list)  # statuses answered to the next requests
    stall: int = 0  # how many next requests get no answer before STALL seconds
    replays: dict[str, Any] = field(default_factory=dict)  # idempotency key -> first answer

    def reset(self) -> None:
        self.seen.clear()
        self.fail.clear()
        self.stall = 0
        self.replays.clear()


STALL = 1.0  # seconds: more than the test clients' timeout


class ProviderHandler(BaseHTTPRequestHandler):
    """Records the request, plays the failure plan, then hands over to ``answer``."""

    server_state: ProviderServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        state = self.server_state
        state.seen.append(Seen(self.path, headers, body))
        if state.stall > 0:
            state.stall -= 1
            time.sleep(STALL)
            return self.json(503, {"message": "stalled"})
        if state.fail:
            status = state.fail.pop(0)
            return self.json(status, self.error(status, "scripted failure"))
        status, payload = self.answer(self.path, headers, body)
        self.json(status, payload)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
