"""The shop's event log (``shared/events.py``): append-only, read in order after a cursor, kept
30 days, never failing what it records, and never holding a message's text or a phone number."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from shared import conversations, crm, events, orders, worker
from shared.app import App
from shared.exceptions import StoreUnavailableError
from shared.ids import new_sortable_id
from shared.models import Lead, StatusChange
from shared.queue.base import WorkItem
from shared.store import Store
from shared.store.base import Write
from shared.store.sqlite import SQLiteStore
from tests.fixtures.app import Client, post_json

SHOP = "teranga"  # the seeded shop (tests.fixtures.app.SHOP)
LATER = 60.0  # a reader's "now" once every event recorded here has settled
PHONE = "+221 77 123 45 67"
TEXT = "livrez à Sacré-Coeur 3 villa 12"


def stored(store: Store, shop: str = SHOP) -> list[dict[str, object]]:
    return [{"id": doc.id, **doc.data} for doc in store.scan(shop, events.COLLECTION)]


def test_events_are_read_oldest_first_after_a_cursor(app: App) -> None:
    for n in range(3):
        events.record(app.store, SHOP, "order_status", conversation_id=f"c{n}", order=f"o{n}")
    events.record(app.store, "other", "order_status", order="elsewhere")
    now = time.time() + LATER

    first = events.read(app.store, SHOP, None, now)
    assert [e.data["order"] for e in first] == ["o0", "o1", "o2"]
    assert first[0].to_json() == {
        "id": first[0].id,
        "at": pytest.approx(time.time(), abs=5),
        "kind": "order_status",
        "conversation_id": "c0",
        "data": {"order": "o0"},
    }
    assert [e.data["order"] for e in events.read(app.store, SHOP, first[0].id, now)] == ["o1", "o2"]
    assert events.read(app.store, SHOP, first[-1].id, now) == []
    assert [e.data["order"] for e in events.read(app.store, SHOP, None, now, limit=2)] == [
        "o0",
        "o1",
    ]
    # A cursor taken now (a reader that just connected) sees what comes next, not the past.
    start = events.start(now)
    assert events.read(app.store, SHOP, start, now + LATER) == []


def test_an_event_is_read_once_settled_and_expires_after_30_days(app: App) -> None:
    before = time.time()
    events.record(app.store, SHOP, "handoff", conversation_id="c1", reason="asked for a person")
    # Just written: a reader stops short of the last second, where a slower writer may still land.
    assert events.read(app.store, SHOP, None, time.time()) == []
    [event] = events.read(app.store, SHOP, None, time.time() + events.SETTLE_SECONDS)
    assert event.kind == "handoff"
    doc = app.store.get(SHOP, events.COLLECTION, event.id)
    assert doc is not None and doc.expires_at == pytest.approx(before + 30 * 86400, abs=5)


def test_events_are_created_never_replaced(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    # Writers at once each add their own event.
    threads = [
        threading.Thread(target=events.record, args=(app.store, SHOP, "error"), kwargs={"n": n})
        for n in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e["data"]["n"] for e in stored(app.store)) == list(range(20))  # type: ignore[index]
    # An id already taken (it cannot happen, but if it did) leaves the first event as it was.
    taken = new_sortable_id()
    monkeypatch.setattr(events, "new_sortable_id", lambda: taken)
    events.record(app.store, SHOP, "payment", order="first")
    events.record(app.store, SHOP, "payment", order="second")
    assert app.store.get(SHOP, events.COLLECTION, taken).data["data"] == {"order": "first"}  # type: ignore[union-attr]


class _DownStore(SQLiteStore):
    def _write(self, write: Write) -> object:  # type: ignore[override]
        raise StoreUnavailableError("the store is down: +221 77 123 45 67")


def test_a_failed_record_never_raises_and_logs_the_kind_only(
    tmp_path: Path, logs: io.StringIO
) -> None:
    store = _DownStore(tmp_path / "down.db")
    events.record(store, SHOP, "handoff", conversation_id="c1", reason="secret reason")
    events.record(store, "Not A Shop!", "error", work="turn")  # a key the store refuses
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["event"], line["kind"]) for line in lines] == [
        ("event_not_recorded", "handoff"),
        ("event_not_recorded", "error"),
    ]
    assert "secret reason" not in logs.getvalue() and "221" not in logs.getvalue()


def test_a_handoff_reason_keeps_no_phone_number(app: App) -> None:
    conversation, _ = conversations.open_session(app.store, SHOP, None, "web", time.time())
    reason = f"The customer wants a call back on {PHONE} or 771234567"
    conversations.hand_off(app.store, SHOP, conversation.id, reason, time.time())
    [event] = stored(app.store)
    assert event["kind"] == "handoff" and event["conversation_id"] == conversation.id
    assert event["data"] == {"reason": "The customer wants a call back on … or …"}


def test_a_widget_turn_records_its_message_events_and_nothing_private(
    client: Client, app: App
) -> None:
    first = post_json(client, "/chat", {"message": f"Bonjour, {TEXT}, mon numéro {PHONE}"})
    assert first.status == 200, first.body
    session = first.json()["session_id"]
    handed = post_json(
        client,
        "/chat",
        {"message": f"Je veux parler à un conseiller. {PHONE}", "session_id": session},
    )
    assert handed.status == 200, handed.body

    logged = sorted(stored(app.store), key=lambda e: str(e["id"]))
    assert [e["kind"] for e in logged] == [
        "message_in",
        "message_out",
        "message_in",
        "handoff",
        "message_out",
    ]
    assert {e["conversation_id"] for e in logged} == {session}
    message_ids = [m.id for m in conversations.latest_messages(app.store, SHOP, session, 10)]
    assert [e["data"]["message_id"] for e in logged if "message_id" in e["data"]] == message_ids  # type: ignore[operator,index]
    assert all(e["data"]["channel"] == "web" for e in logged if e["kind"] != "handoff")  # type: ignore[index]
    assert logged[-1]["data"]["tools"] == [{"name": "request_human", "ok": True}]  # type: ignore[index]
    everything = json.dumps(logged, ensure_ascii=False)
    for private in (PHONE, "771234567", "77 123", "Sacré-Coeur", "Bonjour", "conseiller"):
        assert private not in everything


def test_an_order_move_and_a_dead_letter_are_recorded(app: App) -> None:
    now = time.time()
    lead = Lead(
        id=new_sortable_id(),
        customer_id="cust-1",
        conversation_id="c1",
        channel="whatsapp",
        name="Awa Ndiaye",
        phone="+221771234567",
        address="Mermoz, Dakar",
        product_id="boubou-brode",
        product_title="Boubou brodé",
        quantity=1,
        unit_price=45000,
        currency="XOF",
        total=45000,
        status="paid",
        history=[StatusChange(status="paid", at=now, actor="payment:test")],
        created_at=now,
        updated_at=now,
    )
    crm.save_lead(app.store, SHOP, lead)
    orders.set_status(app.store, SHOP, lead.id, "fulfilled", "operator", now)
    item = WorkItem(kind="turn", shop=SHOP, group="c1", dedup_id="wamid.1", attempt=5)
    worker.record_dead_letter(app.store, item, "LLMError: every provider failed")

    moved, failed = stored(app.store)
    assert (moved["kind"], moved["conversation_id"], moved["data"]) == (
        "order_status",
        "c1",
        {"order": lead.id, "from": "paid", "to": "fulfilled", "actor": "operator"},
    )
    assert (failed["kind"], failed["data"]) == (
        "error",
        {"work": "turn", "dead_letter_id": worker.dead_letter_id(item)},
    )
    assert "221" not in json.dumps([moved, failed]) and "Awa" not in json.dumps([moved, failed])
