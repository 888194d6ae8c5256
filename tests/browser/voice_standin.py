"""A stand-in of the chat API's voice side (PLAN17: ``POST /voice/session``, ``/voice/tools``,
``/voice/transcript``, and the ``voice`` flag of ``GET /chat/history`` and ``POST /chat``), in
memory, serving the built widget and a shop page on its own origin.

The browser test drives the widget's call against it until the mint helper's routes are merged
into the dev server; then the test points at the dev server instead (``VOICE_API_BASE`` at the
fake peer's origin) and only this file goes. It answers the contract's shapes; search_products
reads the Boutique Teranga catalogue the browser tests import (tests/browser/data).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shared.money import format_price
from tests.browser.build import DIST
from tests.loopback import FakeHandler, serving

Json = dict[str, Any]
CATALOGUE = DIST.parents[1] / "tests" / "browser" / "data" / "boutique_products.json"
SECRET = "ek_ephemeral-secret-of-the-call"
SHOP = "boutique"
CURRENCY = "XOF"  # the Boutique Teranga import's (tests/browser/conftest.py)


def search_products(query: str) -> list[Json]:
    """The catalogue's products whose title or tags hold a word of the query."""
    products = json.loads(CATALOGUE.read_text(encoding="utf-8"))["products"]
    words = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    found = []
    for product in products:
        text = " ".join([product["title"], *product["tags"]]).lower()
        if words & set(re.findall(r"\w+", text)):
            price = product["variants"][0]["price"]
            found.append(
                {
                    "id": product["handle"],
                    "title": product["title"],
                    "price": format_price(Decimal(price), CURRENCY),
                }
            )
    return found


@dataclass
class VoiceStandin:
    peer_url: str  # the SDP endpoint /voice/session names
    voice: bool = True  # the shop's voice flag
    session_status: int = 200  # not 200: /voice/session fails with it
    url: str = ""
    calls: list[tuple[str, Json]] = field(default_factory=list)  # (path, body) of every POST
    messages: list[Json] = field(default_factory=list)  # the one conversation's history

    def posted(self, path: str) -> list[Json]:
        return [body for called, body in list(self.calls) if called == path]

    def page(self) -> bytes:
        csp = (
            f"default-src 'none'; script-src 'self'; connect-src 'self' {self.peer_url}; "
            "img-src https: data:"
        )
        return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<link rel="icon" href="data:,"><title>Boutique Teranga</title></head>
<body><h1>Boutique Teranga</h1>
<script src="/dist/widget.js" data-shop="{SHOP}" data-title="Teranga" defer></script>
</body></html>""".encode()

    def answer(self, path: str, body: Json) -> tuple[int, Any]:
        self.calls.append((path, body))
        if path == "/chat":
            text = "Bonjour ! Que cherchez-vous ?"
            self._store("user", body["message"])
            self._store("assistant", text)
            session_id = body.get("session_id") or "s-" + uuid.uuid4().hex
            return 200, {
                "session_id": session_id, "reply": text, "products": [], "lang": "fr",
                "state": "bot", "voice": self.voice,
            }  # fmt: skip
        if path == "/voice/session":
            if not self.voice:
                return 404, {"error": {"code": "voice_off", "message": "voice is off"}}
            if self.session_status != 200:
                return self.session_status, {"error": {"code": "voice_provider_error"}}
            return 200, {
                "provider": "openai", "client_secret": SECRET, "expires_at": time.time() + 60,
                "url": self.peer_url, "model": "gpt-realtime", "voice": "marin",
                "session_id": body.get("session_id") or "s-" + uuid.uuid4().hex,
            }  # fmt: skip
        if path == "/voice/tools":
            if body["name"] != "search_products":
                return 400, {"error": {"code": "unknown_tool"}}
            query = json.loads(body["arguments"])["query"]
            output = json.dumps({"products": search_products(query)}, ensure_ascii=False)
            return 200, {"call_id": body["call_id"], "output": output}
        if path == "/voice/transcript":
            if not any(m["item_id"] == body["item_id"] for m in self.messages):
                self._store(body["role"], body["text"], body["item_id"])
            return 204, b""
        return 404, {"error": {"code": "not_found"}}

    def _store(self, role: str, text: str, item_id: str | None = None) -> None:
        self.messages.append({
            "id": f"m{len(self.messages) + 1}", "role": role,
            "author": "customer" if role == "user" else "assistant", "text": text,
            "at": time.time(), "products": [], "lang": "fr", "payment": None,
            "item_id": item_id, "media_kind": "voice" if item_id else None,
        })  # fmt: skip


def _handler(state: VoiceStandin) -> type[FakeHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server names it
            url = urlsplit(self.path)
            if url.path == "/shop.html":
                self.reply(200, state.page(), {"content-type": "text/html; charset=utf-8"})
            elif url.path.startswith("/dist/") and (DIST / url.path[6:]).is_file():
                script = (DIST / url.path[6:]).read_bytes()
                self.reply(200, script, {"content-type": "text/javascript; charset=utf-8"})
            elif url.path == "/chat/history":
                query = dict(parse_qsl(url.query))
                state.calls.append(("/chat/history", query))
                history = {"state": "bot", "messages": state.messages, "voice": state.voice}
                self.reply(200, history)
            else:
                self.reply(404, {"error": {"code": "not_found"}})

        def do_POST(self) -> None:  # noqa: N802 - http.server names it
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            status, payload = state.answer(urlsplit(self.path).path, body)
            self.reply(status, payload)

    return Handler


@contextmanager
def voice_standin(peer_url: str) -> Iterator[VoiceStandin]:
    state = VoiceStandin(peer_url)
    with serving(_handler(state), "voice-standin") as server:
        state.url = server.root
        yield state
