"""The console's live view, ``GET /admin/api/events``: an SSE stream with ids a browser resumes
from, or a JSON long-poll; the operator's shop's events only; short waits where the platform
buffers responses. The waits are shortened here (module constants)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared import events
from shared.admin import live
from shared.app import App
from shared.http import Request, Response
from tests.admin.conftest import ADMIN_SECRET, signed_in
from tests.fixtures.app import FunctionsFrameworkClient

SHOP, OTHER = "teranga", "other"
PATH = "/admin/api/events"
SSE = {"accept": "text/event-stream"}


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.4)
    monkeypatch.setattr(live, "LONG_POLL_SECONDS", 0.4)
    monkeypatch.setattr(live, "BUFFERED_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(events, "SETTLE_SECONDS", 0.0)


def get(app: App, query: dict[str, str] | None = None, headers: dict[str, str] = SSE) -> Response:
    from functions.admin import handler

    request = Request("GET", PATH, query or {}, {**signed_in(app, SHOP), **headers})
    return handler(request)


def parsed(body: bytes) -> list[dict[str, Any]]:
    """The stream's events: ``{"id", "event", "data"}`` each (``retry`` alone for that line)."""
    found = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
        if fields:
            found.append(fields)
    return found


def cursor_now() -> str:
    return events.start(time.time())


def later(seconds: float, action: Callable[[], None]) -> threading.Thread:
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_the_stream_sends_each_event_under_its_id_in_the_operators_shop_only(
    admin_app: App,
) -> None:
    start = cursor_now()
    events.record(admin_app.store, SHOP, "message_in", conversation_id="c1", channel="web")
    events.record(admin_app.store, OTHER, "message_in", conversation_id="theirs")
    arriving = later(
        0.1, lambda: events.record(admin_app.store, SHOP, "handoff", conversation_id="c1")
    )

    response = get(admin_app, {"after": start})
    body = response.body_bytes()
    arriving.join()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    sent = parsed(body)
    assert sent[0] == {"retry": "1000"}
    assert sent[1] == {"id": start, "event": "ready", "data": {"cursor": start}}
    assert [(e["event"], e["data"]["conversation_id"]) for e in sent[2:]] == [
        ("message_in", "c1"),
        ("handoff", "c1"),  # recorded while the stream was open
    ]
    assert all(e["id"] == e["data"]["id"] for e in sent[2:])
    assert sent[2]["data"]["data"] == {"channel": "web"}


def test_a_reconnecting_browser_resumes_after_the_last_id_it_read(admin_app: App) -> None:
    start = cursor_now()
    for order in ("o1", "o2", "o3"):
        events.record(admin_app.store, SHOP, "order_status", order=order)
    first = parsed(get(admin_app, {"after": start}).body_bytes())
    read = first[3]["id"]  # the second event's

    # EventSource keeps its URL (the first after=) and sends Last-Event-ID: that one wins.
    again = parsed(get(admin_app, {"after": start}, {**SSE, "last-event-id": read}).body_bytes())

    assert again[1]["data"] == {"cursor": read}
    assert [e["data"]["data"]["order"] for e in again[2:]] == ["o3"]


def test_without_a_cursor_the_stream_starts_from_now(admin_app: App) -> None:
    events.record(admin_app.store, SHOP, "error", work="turn")  # before: not sent again
    sent = parsed(get(admin_app).body_bytes())
    assert [e["event"] for e in sent[1:]] == ["ready"]


def test_the_long_poll_answers_at_once_when_there_are_events(
    admin_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "LONG_POLL_SECONDS", 5.0)
    start = cursor_now()
    events.record(admin_app.store, SHOP, "payment", order="o1", status="paid")
    events.record(admin_app.store, OTHER, "payment", order="theirs", status="paid")

    began = time.monotonic()
    answer = get(admin_app, {"after": start}, {})
    assert time.monotonic() - began < 1.0
    found = json.loads(answer.body_bytes())
    assert [e["data"]["order"] for e in found["events"]] == ["o1"]
    assert found["cursor"] == found["events"][-1]["id"]
    assert set(found["events"][0]) == {"id", "at", "kind", "conversation_id", "data"}

    # An event that comes while a poll waits ends the wait.
    arriving = later(0.2, lambda: events.record(admin_app.store, SHOP, "takeover"))
    began = time.monotonic()
    next_answer = json.loads(get(admin_app, {"after": found["cursor"]}, {}).body_bytes())
    arriving.join()
    assert [e["kind"] for e in next_answer["events"]] == ["takeover"]
    assert time.monotonic() - began < 2.0


def test_an_empty_long_poll_answers_after_its_wait_with_the_same_cursor(admin_app: App) -> None:
    start = cursor_now()
    events.record(admin_app.store, OTHER, "payment", order="theirs")
    began = time.monotonic()
    answer = json.loads(get(admin_app, {"after": start}, {}).body_bytes())
    assert time.monotonic() - began >= live.LONG_POLL_SECONDS
    assert answer == {"events": [], "cursor": start}


def test_where_responses_are_buffered_the_waits_are_short(
    make_app: Callable[..., App], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(ADMIN_SESSION_SECRET=ADMIN_SECRET, HTTP_STREAMING="false")
    monkeypatch.setattr(live, "STREAM_SECONDS", 5.0)
    monkeypatch.setattr(live, "LONG_POLL_SECONDS", 5.0)
    start = cursor_now()

    began = time.monotonic()
    assert json.loads(get(app, {"after": start}, {}).body_bytes())["events"] == []
    empty_stream = parsed(get(app, {"after": start}).body_bytes())
    assert time.monotonic() - began < 1.5  # two waits of BUFFERED_WAIT_SECONDS, not 5 s
    assert empty_stream[0] == {"retry": "0"}  # the browser polls again at once

    events.record(app.store, SHOP, "order_status", order="o1")
    began = time.monotonic()
    sent = parsed(get(app, {"after": start}).body_bytes())
    assert [e["event"] for e in sent[1:]] == ["ready", "order_status"]
    assert time.monotonic() - began < live.BUFFERED_WAIT_SECONDS  # ended with what it found


def test_a_stranger_and_a_made_up_cursor_are_refused(admin_app: App) -> None:
    from functions.admin import handler

    assert handler(Request("GET", PATH, {}, SSE)).status == 401
    refused = get(admin_app, {"after": "../../orders"}, {})
    assert refused.status == 400
    assert json.loads(refused.body_bytes())["error"]["code"] == "invalid_input"
    assert get(admin_app, None, {**SSE, "last-event-id": "x" * 20}).status == 400


def test_the_stream_through_functions_framework(admin_app: App) -> None:
    start = cursor_now()
    events.record(admin_app.store, SHOP, "message_out", conversation_id="c1", tools=[])
    result = FunctionsFrameworkClient().request(
        "GET", PATH, query={"after": start}, headers={**signed_in(admin_app, SHOP), **SSE}
    )
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    sent = parsed(result.body)
    assert [(e["event"], "id" in e) for e in sent[1:]] == [("ready", True), ("message_out", True)]
