"""A stand-in of the console's API (PLAN's contract for ``/admin/api``), in memory, with the
built console at ``/admin/``: the browser tests drive the console against it until the auth,
inbox, live and shop areas are merged into the real dev server.

It checks what the real API checks where the console is concerned: a session cookie on every
call (401 without), the session's CSRF token on every write (403 without), and answers the
contract's shapes. Every write is recorded with its headers, for the tests to read.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.browser.build import DIST
from tests.loopback import LoopbackServer, serving

EMAIL = "awa@teranga.example"
PASSWORD = "correct horse battery"
LINK_TOKEN = "first-login-token"
CSRF = "csrf-token-of-the-session"
COOKIE = "comptoir_admin"
TRANSITIONS = {
    "confirmed": ["awaiting_payment", "paid", "fulfilled", "cancelled"],
    "paid": ["fulfilled", "cancelled"],
    "fulfilled": [],
    "cancelled": [],
}
Json = dict[str, Any]


@dataclass
class Write:
    path: str
    body: Any
    headers: dict[str, str]


def _summary(cid: str, channel: str, state: str, name: str, text: str, at: float) -> Json:
    return {
        "id": cid,
        "channel": channel,
        "state": state,
        "customer": {"id": f"cus-{cid}", "name": name, "phone": None},
        "last": {"role": "user", "author": "customer", "text": text, "at": at},
        "updated_at": at,
        "unread": True,
        "needs_human": state == "human",
        "handoff_reason": "asked for a person" if state == "human" else None,
        "handoff_at": at if state == "human" else None,
    }


def _message(mid: str, author: str, text: str, at: float, **extra: Any) -> Json:
    role = "user" if author == "customer" else "assistant"
    return {
        "id": mid, "role": role, "author": author, "operator": None, "text": text, "at": at,
        "products": [], "payment": None, "delivery": None, "media_kind": None, **extra,
    }  # fmt: skip


@dataclass
class Standin:
    """The stand-in's state: what it answers and what it was sent."""

    url: str = ""
    sse: bool = True  # False: /events answers JSON only, as a platform that buffers SSE
    signed_in: bool = False
    polls: int = 0  # JSON long-polls of /events received
    writes: list[Write] = field(default_factory=list)
    events: list[Json] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    conversations: dict[str, Json] = field(default_factory=dict)
    messages: dict[str, list[Json]] = field(default_factory=dict)
    orders: dict[str, Json] = field(default_factory=dict)
    shop: Json = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = time.time()
        self.conversations = {
            "c-awa": _summary("c-awa", "web", "human", "Awa Diop", "Un conseiller ?", now - 60),
            "c-moussa": _summary("c-moussa", "whatsapp", "bot", "Moussa", "Merci", now - 3600),
        }
        self.conversations["c-moussa"]["unread"] = False
        card = {
            "id": "sandales", "title": "Sandales en cuir", "price": 15000, "currency": "XOF",
            "url": "https://teranga.example/products/sandales", "image": None, "variant_id": "v1",
        }  # fmt: skip
        self.messages = {
            "c-awa": [
                _message("m1", "customer", "Avez-vous des sandales ?", now - 300),
                _message("m2", "assistant", "Oui, celles-ci :", now - 290, products=[card]),
                _message("m3", "operator", "Je regarde votre taille.", now - 200, operator=EMAIL),
                _message("m4", "customer", "Je veux un conseiller", now - 60),
            ],
            "c-moussa": [_message("m5", "customer", "Merci", now - 3600)],
        }
        self.orders = {
            "o-1": {
                "id": "o-1", "status": "paid", "name": "Awa Diop", "phone": "+221770000000",
                "address": "Dakar", "product_id": "sandales", "product_title": "Sandales en cuir",
                "variant": "39", "quantity": 1, "unit_price": 15000, "total": 15000,
                "currency": "XOF", "channel": "web",
                "history": [{"status": "paid", "at": now - 100, "actor": "ipn"}],
                "payment_provider": "test", "payment_url": None, "payment_id": None,
            }
        }  # fmt: skip
        self.shop = {
            "name": "Maison Teranga", "persona": "sales", "personas": ["sales", "tutor"],
            "offer": "", "system_prompt_addition": "", "llm_provider": None, "llm_model": None,
            "llm_providers": ["fake", "openai"], "whatsapp_template": None,
            "business_hours": {"mon": ["09:00-18:00"]}, "timezone": "Africa/Dakar",
            "payment_provider": "test", "payment_providers": ["test", "paydunya"],
            "languages": ["fr", "en"], "contact": "", "url": "https://teranga.example",
            "web_search": False, "voice_notes": {"enabled": True, "voice": "", "speed": 1.0},
            "voice": None,
        }  # fmt: skip

    def session(self) -> Json:
        return {
            "email": EMAIL, "shop": "demo", "shop_name": self.shop["name"], "csrf": CSRF,
            "expires_at": time.time() + 3600,
        }  # fmt: skip

    def emit(self, kind: str, conversation_id: str | None, **data: Any) -> None:
        """Append an event to the log (the console hears it live)."""
        with self.changed:
            event_id = str(len(self.events) + 1)
            self.events.append(
                {"id": event_id, "at": time.time(), "kind": kind,
                 "conversation_id": conversation_id, "data": data}
            )  # fmt: skip
            self.changed.notify_all()

    def customer_writes(self, name: str, text: str) -> str:
        """A new customer asks for a person: a conversation, unread and waiting, and its events."""
        cid = f"c-{len(self.conversations) + 1}"
        self.conversations[cid] = _summary(cid, "web", "human", name, text, time.time())
        self.messages[cid] = [_message(f"m-{cid}", "customer", text, time.time())]
        self.emit("message_in", cid, channel="web")
        self.emit("handoff", cid, channel="web")
        return cid

    def after(self, cursor: str, wait: float) -> list[Json]:
        start = int(cursor) if cursor.isdigit() else len(self.events)
        with self.changed:
            self.changed.wait_for(lambda: len(self.events) > start, timeout=wait)
            return self.events[start:]

    # --- the API ------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        for (verb, pattern), route in _ROUTES.items():
            found = re.fullmatch(pattern, path)
            if found and verb == method:
                return route(self, query, body, *found.groups())
        return 404, {"error": {"code": "not_found", "message": "no such route"}}


Route = Callable[..., tuple[int, Any]]
_ROUTES: dict[tuple[str, str], Route] = {}


def route(method: str, pattern: str) -> Callable[[Route], Route]:
    def register(handler: Route) -> Route:
        _ROUTES[(method, pattern)] = handler
        return handler

    return register


def _error(status: int, code: str, message: str) -> tuple[int, Json]:
    return status, {"error": {"code": code, "message": message}}


@route("GET", "me")
def _me(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    return 200, s.session()


@route("POST", "logout")
def _logout(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    s.signed_in = False
    return 200, {}


@route("GET", "conversations")
def _conversations(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    listed = sorted(s.conversations.values(), key=lambda c: -c["updated_at"])
    for name in ("unread", "needs_human"):
        if q.get(name) == "1":
            listed = [c for c in listed if c[name]]
    for name in ("channel", "state"):
        if q.get(name):
            listed = [c for c in listed if c[name] == q[name]]
    if q.get("q"):
        listed = [c for c in listed if q["q"].lower() in json.dumps(s.messages[c["id"]]).lower()]
    return 200, {"conversations": listed, "cursor": None}


@route("GET", r"conversations/([\w-]+)")
def _conversation(s: Standin, q: Json, b: Any, cid: str) -> tuple[int, Any]:
    if cid not in s.conversations:
        return _error(404, "not_found", "no such conversation")
    whatsapp = s.conversations[cid]["channel"] == "whatsapp"
    template = "relance_24h" if whatsapp else None
    window = {"open": not whatsapp, "closes_at": None, "template": template}
    order = s.orders["o-1"] if cid == "c-awa" else None
    return 200, {
        "conversation": s.conversations[cid], "messages": s.messages[cid], "order": order,
        "window": window,
    }  # fmt: skip


@route("POST", r"conversations/([\w-]+)/reply")
def _reply(s: Standin, q: Json, b: Any, cid: str) -> tuple[int, Any]:
    message = _message(f"m-{time.time()}", "operator", b["text"], time.time(), operator=EMAIL)
    s.messages[cid].append(message)
    s.conversations[cid].update(state="human", needs_human=False, last=message)
    s.emit("operator_reply", cid)
    return 200, {"message": message, "sent": "stored"}


@route("POST", r"conversations/([\w-]+)/(takeover|release|read)")
def _switch(s: Standin, q: Json, b: Any, cid: str, action: str) -> tuple[int, Any]:
    summary = s.conversations[cid]
    if action == "read":
        summary["unread"] = False
    else:
        summary["state"] = "human" if action == "takeover" else "bot"
        s.emit(action, cid)
    return 200, {"conversation": summary}


@route("GET", "orders")
def _orders(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    listed = [o for o in s.orders.values() if not q.get("status") or o["status"] == q["status"]]
    return 200, {"orders": listed, "cursor": None}


@route("GET", r"orders/([\w-]+)")
def _order(s: Standin, q: Json, b: Any, oid: str) -> tuple[int, Any]:
    order = s.orders[oid]
    return 200, {"order": order, "moves": TRANSITIONS[order["status"]]}


@route("POST", r"orders/([\w-]+)/status")
def _move(s: Standin, q: Json, b: Any, oid: str) -> tuple[int, Any]:
    order = s.orders[oid]
    if b["status"] not in TRANSITIONS[order["status"]]:
        return _error(409, "invalid_move", f"order {oid} cannot become {b['status']}")
    order["status"] = b["status"]
    order["history"].append({"status": b["status"], "at": time.time(), "actor": EMAIL})
    s.emit("order_status", None, order_id=oid, status=b["status"])
    return 200, {"order": order}


@route("GET", "customers")
def _customers(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    people = [
        {"id": "cus-c-awa", "name": "Awa Diop", "phone": "+221770000000", "channels": ["web"],
         "orders": 1, "last_seen": time.time() - 60},
    ]  # fmt: skip
    found = [p for p in people if q.get("q", "").lower() in str(p["name"]).lower()]
    return 200, {"customers": found, "cursor": None}


@route("GET", r"customers/([\w-]+)")
def _customer(s: Standin, q: Json, b: Any, cus: str) -> tuple[int, Any]:
    customer = {"id": cus, "name": "Awa Diop", "phone": "+221770000000", "channels": ["web"]}
    return 200, {
        "customer": customer, "conversations": [s.conversations["c-awa"]],
        "orders": list(s.orders.values()),
    }  # fmt: skip


@route("GET", "shop")
def _shop(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    return 200, {"shop": s.shop}


@route("POST", "shop")
def _save_shop(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    # What the Shop model refuses and the console cannot know: a model the provider lacks.
    if b.get("llm_model") == "gpt-unknown":
        return _error(400, "invalid_input", "llm_model: no such model for this provider")
    s.shop.update(b)
    return 200, {"shop": s.shop}


@route("POST", "(catalog|faq)")
def _upload(s: Standin, q: Json, b: Any, kind: str) -> tuple[int, Any]:
    return 200, {"report": {"kind": kind, "imported": 3, "skipped": 0, "bytes": len(b)}}


@route("GET", "campaigns")
def _campaigns(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    campaign = {
        "id": "soldes", "name": "Soldes", "recipe": "promo", "enabled": True,
        "schedule": {"cron": None, "at": None, "timezone": "Africa/Dakar"}, "last_run": None,
    }  # fmt: skip
    return 200, {"campaigns": [campaign]}


@route("GET", "jobs")
def _jobs(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    job = {
        "id": "job-rappel", "schedule": {"cron": "0 9 * * 1", "at": None, "timezone": "UTC"},
        "customer_id": "cus-c-awa", "segment": None, "channel": None, "text": "Bonjour !",
        "prompt": "", "enabled": True, "next_run_at": time.time() + 3600,
    }  # fmt: skip
    return 200, {"jobs": [job]}


@route("GET", "health")
def _health(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    ok = {"ok": True, "detail": "ok"}
    return 200, {
        "store": ok, "queue": ok, "llm": {"ok": False, "detail": "no key"},
        "channels": {"whatsapp": ok}, "payments": ok,
    }  # fmt: skip


@route("GET", "audit")
def _audit(s: Standin, q: Json, b: Any) -> tuple[int, Any]:
    entries = [
        {"id": str(i), "at": 0.0, "operator": EMAIL, "action": w.path, "target": "", "details": {}}
        for i, w in enumerate(s.writes)
    ]
    return 200, {"entries": entries, "cursor": None}


def _handler(s: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: simple SSE

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any, **headers: str) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", **headers)

        def _static(self, path: str) -> None:
            target = (DIST / "admin" / (path.removeprefix("/admin/") or "index.html")).resolve()
            if not target.is_file() or not target.is_relative_to(DIST):
                self._json(404, {"error": {"code": "not_found", "message": "no such file"}})
                return
            types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
            self._send(200, target.read_bytes(), types[target.suffix] + "; charset=utf-8")

        def _events(self, query: dict[str, str]) -> None:
            cursor = self.headers.get("Last-Event-ID") or query.get("after", "")
            if "text/event-stream" in self.headers.get("Accept", "") and s.sse:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                # The stream's position first: a reconnection resumes there (Last-Event-ID),
                # so an event between two streams is not lost.
                self.wfile.write(f"retry: 300\nid: {cursor or len(s.events)}\n\n".encode())
                self.wfile.flush()
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    for event in s.after(cursor, deadline - time.monotonic()):
                        cursor = event["id"]
                        data = json.dumps(event)
                        frame = f"id: {cursor}\nevent: {event['kind']}\ndata: {data}\n\n"
                        self.wfile.write(frame.encode())
                        self.wfile.flush()
                return
            if "text/event-stream" not in self.headers.get("Accept", ""):
                s.polls += 1
            events = s.after(cursor, 2)
            position = events[-1]["id"] if events else cursor or str(len(s.events))
            self._json(200, {"events": events, "cursor": position})

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query))
            if url.path == "/admin":
                self._send(308, b"", "text/plain", Location="/admin/")
                return
            if not url.path.startswith("/admin/api/"):
                self._static(url.path)
                return
            path = url.path.removeprefix("/admin/api/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            json_body = self.headers.get("Content-Type", "").startswith("application/json")
            body = json.loads(raw) if json_body and raw else raw
            if method == "POST" and path in ("login", "login/link"):
                good = body in ({"token": LINK_TOKEN}, {"email": EMAIL, "password": PASSWORD})
                if not good:
                    self._json(401, {"error": {"code": "invalid_credentials", "message": "no"}})
                    return
                s.signed_in = True
                cookie = f"{COOKIE}=session; Path=/admin; HttpOnly; SameSite=Strict"
                self._json(200, s.session(), Set_Cookie=cookie)
                return
            if not s.signed_in or f"{COOKIE}=session" not in self.headers.get("Cookie", ""):
                self._json(401, {"error": {"code": "not_signed_in", "message": "sign in"}})
                return
            if method == "POST":
                headers = {k.lower(): v for k, v in self.headers.items()}
                s.writes.append(Write(path, body, headers))
                if headers.get("x-csrf-token") != CSRF:
                    self._json(403, {"error": {"code": "csrf", "message": "no token"}})
                    return
            if method == "GET" and path == "events":
                self._events(query)
                return
            status, payload = s.answer(method, path, query, body)
            self._json(status, payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Handler


@contextmanager
def standin() -> Iterator[Standin]:
    state = Standin()
    server: LoopbackServer
    with serving(_handler(state), "console-standin") as server:
        state.url = server.root
        yield state
        with state.changed:  # wake any waiting event stream so the server can stop
            state.changed.notify_all()
