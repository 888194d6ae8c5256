"""Shop B's operator against every route the console serves (``functions.admin.handler``,
walked generically, so an area merged later is covered with no edit here): each of shop A's ids
in a route's ``{id}`` is a 404 exactly like an unknown id, no answer carries anything of shop A,
and shop A's records are byte for byte what they were.

A route needing a body gets the one the API contract (PLAN) gives it in ``BODIES``; a new
route whose body is refused before its lookup fails here until it is added.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from functions.admin import handler
from shared import conversations, jobs
from shared.admin import audit, auth, operators
from shared.app import App
from shared.campaigns import definitions
from shared.http import Request
from shared.models import Message
from tests.admin.conftest import signed_in
from tests.campaigns.conftest import order, whatsapp_customer
from tests.fixtures.app import SHOP

SHOP_A = SHOP["id"]
SHOP_B = "autre"
OPERATOR_A = "awa@maison-teranga.example"
OPERATOR_B = "binta@autre-boutique.example"
CUSTOMER_NAME = "Ndeye Isolée Faye"
CUSTOMER_WA = "221770000777"
SECRET_TEXT = "Mon code de porte est 4417B"
UNKNOWN_ID = "0000000000000000-unknown"
STREAM_SECONDS = 30.0  # a streamed answer (the events route) is read at most this long


@dataclass(frozen=True)
class ShopA:
    ids: tuple[str, ...]  # of its customer, conversation, order, campaign, job, audit entry
    marks: tuple[str, ...]  # strings that only shop A's data holds


@pytest.fixture
def shop_a(admin_app: App) -> ShopA:
    """Shop A with one of each record the console shows; shop B, empty, beside it."""
    app, now = admin_app, time.time()
    app.store.put(
        SHOP_B,
        "shops",
        SHOP_B,
        {"id": SHOP_B, "name": "Autre boutique", "currency": "XOF", "languages": ["fr"]},
    )
    customer, chat = whatsapp_customer(app, CUSTOMER_WA, CUSTOMER_NAME)
    conversations.add_message(
        app.store, SHOP_A, chat.id, Message(id="m-secret", role="user", text=SECRET_TEXT, at=now)
    )
    conversations.set_state(app.store, SHOP_A, chat.id, "human")
    lead = order(app, customer, chat)
    shop = app.shops.get(SHOP_A)
    campaign = {"id": "relance-a", "name": "Relance A", "recipe": "abandoned_order"}
    definitions.save(app.store, shop, definitions.build(shop, campaign, now), now, replace=False)
    weekly = {"schedule": {"cron": "0 9 * * mon"}, "customer_id": customer.id, "text": "Salut A"}
    job = jobs.save_job(app.store, jobs.build(shop, weekly, now), now)
    record = operators.add_operator(app.store, SHOP_A, OPERATOR_A, now)
    session = auth.start_session(app.store, app.settings, record.id, SHOP_A, OPERATOR_A, now)
    audit.record(app.store, SHOP_A, session, "order.status", lead.id)
    entry = audit.entries(app.store, SHOP_A)[0][0]["id"]
    return ShopA(
        ids=(customer.id, chat.id, lead.id, "relance-a", job.id, entry),
        marks=(
            customer.id,
            chat.id,
            lead.id,
            "relance-a",
            job.id,
            entry,
            CUSTOMER_NAME,
            CUSTOMER_WA,
            SECRET_TEXT,
            OPERATOR_A,
            SHOP["name"],
            str(SHOP["offer"]),
        ),
    )


def snapshot(app: App, shop: str) -> list[tuple[str, str, int, str]]:
    """Every stored document of ``shop`` (the tests' store is SQLite), with its version."""
    path = app.settings.store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT coll, id, version, data FROM docs WHERE shop = ? ORDER BY coll, id", (shop,)
        ).fetchall()
    return [(str(c), str(i), int(v), str(d)) for c, i, v, d in rows]


# What each write route is sent (PLAN's contract); ``{id}`` is the id in the path.
BODIES: dict[str, Any] = {
    "POST /admin/api/login": {"email": OPERATOR_A, "password": "not the password"},
    "POST /admin/api/login/link": {"token": "not-a-link-token"},
    "POST /admin/api/password": {"password": "a new passphrase for B"},
    "POST /admin/api/conversations/{id}/reply": {"text": "Bonjour de la boutique B"},
    "POST /admin/api/orders/{id}/status": {"status": "fulfilled"},
    "POST /admin/api/customers/{id}/erase": {"confirm": "{id}"},
    "POST /admin/api/shop": {"offer": "Offre de la boutique B"},
    "POST /admin/api/catalog": [
        {"id": "pagne-b", "title": "Pagne B", "currency": "XOF", "variants": [{"price": "5000"}]}
    ],
    "POST /admin/api/faq": [{"id": "horaires-b", "question": "Horaires ?", "answer": "9h-18h"}],
    "POST /admin/api/campaigns": {
        "definition": {"id": "relance-b", "name": "Relance B", "recipe": "abandoned_order"}
    },
    "POST /admin/api/campaigns/{id}/enabled": {"enabled": False},
    "POST /admin/api/jobs": {
        "definition": {"schedule": {"cron": "0 9 * * mon"}, "segment": {}, "text": "Salut B"}
    },
    "POST /admin/api/jobs/{id}/enabled": {"enabled": False},
}


@dataclass
class Answer:
    status: int
    body: str


def as_operator_b(app: App, route: str, path: str, body: Any) -> Answer:
    """``route`` called at ``path`` by shop B's operator (cookie and CSRF token)."""
    method = route.split(" ")[0]
    headers = {**signed_in(app, SHOP_B, OPERATOR_B), "content-type": "application/json"}
    raw = json.dumps(body).encode() if body is not None else b""
    response = handler(Request(method, path, headers=headers, body=raw, source_ip="203.0.113.8"))
    return Answer(response.status, _read(response.body))


def _read(body: bytes | Any) -> str:
    """A body; a stream is read in a thread for at most STREAM_SECONDS."""
    if isinstance(body, bytes):
        return body.decode()
    chunks: list[bytes] = []

    def drain() -> None:
        for chunk in body:
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    reader.join(STREAM_SECONDS)
    return b"".join(chunks).decode()


def _with_id(value: Any, the_id: str) -> Any:
    return json.loads(json.dumps(value).replace("{id}", the_id))


def served() -> Iterator[str]:
    yield from sorted(handler.routes)


@pytest.mark.parametrize("route", list(served()))
def test_shop_b_s_operator_never_reaches_shop_a(admin_app: App, shop_a: ShopA, route: str) -> None:
    before = snapshot(admin_app, SHOP_A)
    pattern = route.split(" ", 1)[1]
    body = BODIES.get(route)
    if "{" in pattern:
        params = [part for part in pattern.split("/") if part.startswith("{")]

        def at(the_id: str) -> str:
            path = pattern
            for param in params:
                path = path.replace(param, quote(the_id, safe=""))
            return path

        unknown = as_operator_b(admin_app, route, at(UNKNOWN_ID), _with_id(body, UNKNOWN_ID))
        assert unknown.status in (401, 403, 404), (route, unknown)
        for the_id in shop_a.ids:
            answer = as_operator_b(admin_app, route, at(the_id), _with_id(body, the_id))
            # The same answer as for an unknown id, but for the id B sent (a message may echo it).
            assert answer.status == unknown.status, (route, the_id, answer)
            assert answer.body.replace(the_id, "{id}") == unknown.body.replace(UNKNOWN_ID, "{id}")
            leaked = [mark for mark in shop_a.marks if mark != the_id and mark in answer.body]
            assert not leaked, (route, leaked, answer)
    else:
        answer = as_operator_b(admin_app, route, pattern, body)
        assert answer.status < 500, (route, answer)
        leaked = [mark for mark in shop_a.marks if mark in answer.body]
        assert not leaked, (route, leaked, answer.body[:500])
        if route.startswith("GET ") and answer.status == 200:
            for key, value in json.loads(answer.body or "{}").items():
                if key in ("conversations", "orders", "customers", "campaigns", "jobs"):
                    assert value == [], (route, key)
    assert snapshot(admin_app, SHOP_A) == before, route


def test_the_walk_covers_the_routes_with_an_id(shop_a: ShopA) -> None:
    """The test above is not vacuous: routes with {id} are among those served."""
    assert [route for route in served() if "{id}" in route]
    assert len(shop_a.ids) == len(set(shop_a.ids)) == 6
