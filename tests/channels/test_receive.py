"""What the webhooks hold to, on both channels, through the real function handlers: a store or
queue failing at any call never loses a message nor stores or queues it twice; a message over
MAX_MESSAGE_CHARS is kept whole and answered normally; deeply nested JSON is a 400; an event
older than the deduplication window is acknowledged and ignored."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions import webhook_telegram, webhook_whatsapp
from shared.app import App
from shared.channels.receive import TRUNCATED, conversation_id
from shared.channels.webhook import MAX_DEPTH
from shared.http import Request
from shared.models import Conversation, Message
from shared.queue.base import WorkItem
from shared.queue.inprocess import InProcessQueue
from shared.store.idempotency import COLLECTION, WEEK, record_id
from shared.worker import list_dead_letters
from tests.channels.conftest import (
    APP_SECRET,
    TG_SECRET,
    WA_ID,
    Faults,
    FaultyQueue,
    FaultyStore,
    RecordingQueue,
    arrive,
    arrive_telegram,
    assert_clean,
    signature,
    whatsapp_text,
)
from tests.eventlib import load_event
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

SHOP = "teranga"
TG_CHAT = "700100200"  # the customer in tests/events/telegram_*.json
ANSWER = "Les Sandales en cuir coûtent 15 000 FCFA. Quelle pointure ?"


@dataclass(frozen=True)
class Channel:
    name: str
    cid: str
    key: str  # the provider's id of the message in ``payload``
    payload: Callable[[], dict[str, Any]]
    arrive: Callable[[dict[str, Any]], int]


def _telegram_message() -> dict[str, Any]:
    return load_event("telegram_message")


WHATSAPP = Channel(
    "whatsapp",
    conversation_id(APP_SECRET, SHOP, "whatsapp", WA_ID),
    "wamid.T1",
    lambda: whatsapp_text("Bonjour, combien coûtent les sandales en cuir ?"),
    arrive,
)
TELEGRAM = Channel(
    "telegram",
    conversation_id(TG_SECRET, SHOP, "telegram", TG_CHAT),
    str(_telegram_message()["update_id"]),
    _telegram_message,
    arrive_telegram,
)
# The store and queue calls one first delivery makes: shop, claim, conversation read, (WhatsApp:
# phone record, customer), message, conversation, queue, claim done.
CALLS = {"whatsapp": 9, "telegram": 7}


def messages(app: App, channel: Channel) -> list[Message]:
    page = app.store.query(SHOP, f"conversations/{channel.cid}/messages")
    return [Message.from_doc(doc) for doc in page.items]


def conversation(app: App, channel: Channel) -> Conversation:
    doc = app.store.get(SHOP, "conversations", channel.cid)
    assert doc is not None
    return Conversation.from_doc(doc)


# --- a failure at any store or queue call ----------------------------------------------------


@dataclass
class Faulty:
    faults: Faults
    store: FaultyStore
    queue: FaultyQueue
    delivered: list[WorkItem]

    def drained(self) -> list[WorkItem]:
        assert isinstance(self.queue.inner, InProcessQueue)
        assert self.queue.inner.drain(timeout=10)
        return self.delivered


@pytest.fixture
def faulty(app: App) -> Iterator[Faulty]:
    """The app's real SQLite store and a real in-process queue (which hands each item to a
    list, not the worker) behind ``Faults``."""
    faults = Faults()
    store = FaultyStore(app.store, faults)
    app.store = store
    delivered: list[WorkItem] = []
    queue = FaultyQueue(InProcessQueue(delivered.append, workers=1), faults)
    app.queue = queue
    yield Faulty(faults, store, queue, delivered)
    queue.close()


def deliver_until_acknowledged(channel: Channel) -> list[int]:
    """Deliver the message again while the webhook answers an error, as the provider does."""
    statuses: list[int] = []
    while not statuses or statuses[-1] != 200:
        assert len(statuses) < 4, statuses
        statuses.append(channel.arrive(channel.payload()))
    return statuses


@pytest.mark.parametrize("channel", [WHATSAPP, TELEGRAM], ids=lambda c: c.name)
def test_the_fault_tests_cover_every_call_of_a_delivery(
    app: App, faulty: Faulty, channel: Channel
) -> None:
    assert channel.arrive(channel.payload()) == 200
    assert faulty.faults.calls == CALLS[channel.name]


@pytest.mark.parametrize("outage", [False, True], ids=["once", "outage"])
@pytest.mark.parametrize(
    ("channel", "index"),
    [(c, i) for c in (WHATSAPP, TELEGRAM) for i in range(CALLS[c.name])],
    ids=lambda v: v.name if isinstance(v, Channel) else f"call{v}",
)
def test_a_failing_call_never_loses_nor_doubles_a_message(
    app: App, faulty: Faulty, channel: Channel, index: int, outage: bool
) -> None:
    """Call ``index`` fails (``once``), or every call from it to the end of that delivery
    (``outage``: the store down, its own clean-up failing too); the provider delivers again."""
    faulty.faults.fail_at, faulty.faults.outage = index, outage
    first = channel.arrive(channel.payload())
    faulty.faults.recover()
    statuses = [first, *deliver_until_acknowledged(channel)] if first != 200 else [first]
    assert statuses[-1] == 200
    (stored,) = messages(app, channel)
    assert stored.external_ids == [channel.key]
    inbound = [m for m in conversation(app, channel).recent if m.role == "user"]
    assert [m.id for m in inbound] == [stored.id]
    assert faulty.queue.sends == 1
    record = app.store.get(SHOP, COLLECTION, record_id(f"{channel.name}:{channel.key}"))
    assert record is not None
    # Only the last call (recording the claim done) may fail and still be acknowledged; it is
    # tried again at once, so only an outage leaves the claim unfinished.
    last = index == CALLS[channel.name] - 1
    assert record.data["status"] == ("in_progress" if last and outage else "done")
    refused = 500 if index == CALLS[channel.name] - 2 else 503  # the queue's call, the store's
    assert statuses == ([200] if last else [refused, 200])
    # Meta delivers a message again after a 200 only by mistake: still one message, one item.
    assert channel.arrive(channel.payload()) == 200
    assert len(messages(app, channel)) == 1
    (item,) = faulty.drained()
    assert (item.kind, item.dedup_id, item.payload) == (
        "channel_turn",
        channel.key,
        {"conversation": channel.cid},
    )


def test_a_claim_found_unfinished_is_finished_whatever_its_age(app: App, faulty: Faulty) -> None:
    # The first delivery claims the message, then the store goes down for good (its process
    # dies, say): the claim stays "in progress", and the next delivery does the work.
    faulty.faults.fail_at, faulty.faults.outage = 2, True  # after the shop and the claim
    assert arrive(WHATSAPP.payload()) == 503
    claim = faulty.store.inner.get(SHOP, COLLECTION, record_id(f"whatsapp:{WHATSAPP.key}"))
    assert claim is not None and claim.data["status"] == "in_progress"
    assert claim.expires_at is not None and claim.expires_at > time.time() + WEEK - 60
    faulty.faults.recover()
    assert arrive(WHATSAPP.payload()) == 200
    (stored,) = messages(app, WHATSAPP)
    assert stored.id == claim.data["data"]["message"]  # the id the claim recorded
    assert len(faulty.drained()) == 1


# --- long messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["whatsapp", "telegram"])
def test_a_4096_character_message_is_kept_whole_and_answered(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    name: str,
) -> None:
    text = ("Bonjour, je voudrais des sandales en cuir pointure 40. " * 80)[:4096]
    script = Script().then(Reply(ANSWER))
    app.llm_override = ScriptedLLM(script)
    if name == "whatsapp":
        channel = WHATSAPP
        assert arrive(whatsapp_text(text)) == 200
    else:
        channel = TELEGRAM
        payload = load_event("telegram_message")
        payload["message"]["text"] = text
        assert arrive_telegram(payload) == 200
    (stored,) = messages(app, channel)
    assert stored.text == text  # nothing of what the customer wrote is lost
    queue.run(app)
    assert queue.failures == []
    assert list_dead_letters(app.store, SHOP) == []
    (seen,) = script.seen
    read = seen.messages[-1]["text"]
    limit = app.settings.max_message_chars
    assert len(read) == limit and read.endswith(TRUNCATED) and text.startswith(read[:-10])
    sent = graph_server.sent if name == "whatsapp" else telegram_server.called("sendMessage")
    assert len(sent) == 1
    reply = [m for m in conversation(app, channel).recent if m.role == "assistant"]
    assert [m.text for m in reply] == [ANSWER]


# --- deeply nested JSON ----------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"entry": ' + b"[" * depth + b"]" * depth + b', "object": "x"}'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_nested(MAX_DEPTH + 1), "nested"),
        (_nested(100_000), "nested"),
        # A lone surrogate parses, then fails in every UTF-8 store and log line.
        (b'{"object": "whatsapp_business_account", "entry": [{"id": "\\ud800"}]}', "surrogate"),
    ],
    ids=["deeper-than-allowed", "100000-deep", "lone-surrogate"],
)
def test_insane_json_is_a_400_on_both_webhooks(
    app: App, queue: RecordingQueue, body: bytes, problem: str, logs: io.StringIO
) -> None:
    whatsapp = webhook_whatsapp.handler(
        Request(
            "POST",
            "/webhooks/whatsapp",
            headers={"content-type": "application/json", "x-hub-signature-256": signature(body)},
            body=body,
        )
    )
    telegram = webhook_telegram.handler(
        Request(
            "POST",
            "/webhooks/telegram",
            headers={
                "content-type": "application/json",
                "x-telegram-bot-api-secret-token": TG_SECRET,
            },
            body=body,
        )
    )
    for response in (whatsapp, telegram):
        assert response.status == 400
        assert isinstance(response.body, bytes)
        error = json.loads(response.body)["error"]
        assert error["code"] == "malformed_json" and problem in error["message"]
    assert queue.items == []
    assert app.store.query(SHOP, "conversations").items == []
    assert "unexpected" not in logs.getvalue()


def test_json_as_deep_as_allowed_is_still_acknowledged(app: App, queue: RecordingQueue) -> None:
    body = _nested(MAX_DEPTH - 1)  # inside the outer object: MAX_DEPTH levels in all
    headers = {"content-type": "application/json", "x-hub-signature-256": signature(body)}
    response = webhook_whatsapp.handler(
        Request("POST", "/webhooks/whatsapp", headers=headers, body=body)
    )
    assert response.status == 200  # authentic, of no known shape: acknowledged, ignored
    assert queue.items == []


# --- events older than the deduplication window ----------------------------------------------


@pytest.mark.parametrize("channel", [WHATSAPP, TELEGRAM], ids=lambda c: c.name)
def test_a_replay_older_than_the_dedupe_window_is_acknowledged_and_ignored(
    app: App, queue: RecordingQueue, channel: Channel, logs: io.StringIO
) -> None:
    old = int(time.time() - WEEK - 3600)
    payload = channel.payload()
    if channel is WHATSAPP:
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(old)
    else:
        payload["message"]["date"] = old
    assert channel.arrive(payload) == 200  # the provider stops delivering it
    assert queue.items == []
    assert app.store.get(SHOP, "conversations", channel.cid) is None
    key = record_id(f"{channel.name}:{channel.key}")
    assert app.store.get(SHOP, COLLECTION, key) is None
    line = next(
        json.loads(line) for line in logs.getvalue().splitlines() if "channel_event_ignored" in line
    )
    assert line["reason"] == "older_than_dedupe_window" and line["age_days"] >= 7
    assert_clean(logs.getvalue(), "sandales", "Bonjour")
    # Within the window, the same event is taken.
    fresh = int(time.time() - WEEK + 3600)
    if channel is WHATSAPP:
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(fresh)
    else:
        payload["message"]["date"] = fresh
    assert channel.arrive(payload) == 200
    assert len(queue.items) == 1
