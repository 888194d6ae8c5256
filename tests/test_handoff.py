"""Handing a conversation to the shop: the operator is told of a widget handoff as of a
WhatsApp one, a closed shop says when someone will answer, and a handoff nobody answers comes
back to the assistant after HANDOFF_RELEASE_MINUTES, on every channel."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import conversations
from shared.app import App
from shared.channels.receive import conversation_id
from shared.chat import RELEASED_NOTICE, ChatService
from shared.hours import next_opening, when
from shared.models import Conversation, Shop
from tests.channels.conftest import (
    APP_SECRET,
    TG_OPERATOR,
    WA_ID,
    RecordingQueue,
    arrive,
    assert_clean,
    channel_settings,
    whatsapp_text,
)
from tests.eventlib import delivered_at
from tests.fixtures.app import SHOP, Client, post_json
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

OPERATOR_WA = "221709998877"  # OPERATOR of tests/channels/conftest.py, as WhatsApp takes it
HOURS = {
    "mon": ["09:00-13:00", "15:00-19:00"],
    "tue": ["09:00-13:00", "15:00-19:00"],
    "wed": ["09:00-13:00", "15:00-19:00"],
    "thu": ["09:00-13:00", "15:00-19:00"],
    "fri": ["09:00-13:00", "15:00-19:00"],
    "sat": ["09:30-13:00"],
}
TUESDAY_EVENING = datetime(2025, 6, 10, 20, 0, tzinfo=UTC).timestamp()  # 20:00 in Dakar (UTC)
SATURDAY_AFTERNOON = datetime(2025, 6, 14, 15, 0, tzinfo=UTC).timestamp()


@dataclass
class Clock:
    """The ChatService's clock, moved by the test."""

    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    queue: RecordingQueue,
) -> App:
    """The small shop with both channels and an operator on each; the queue records."""
    instance = make_app(**channel_settings(graph_server, telegram_server))
    instance.queue = queue
    return instance


def chat_at(app: App, clock: Clock, **shop_settings: object) -> ChatService:
    """A chat service on ``app``'s store and queue whose time is ``clock``, after giving the
    shop ``shop_settings``; it also answers the app's channel turns."""
    app.store.put(SHOP["id"], "shops", SHOP["id"], {**SHOP, "catalog_version": 1, **shop_settings})
    chat = ChatService(
        app.settings, app.store, app.llm_for, enqueue=lambda i: app.queue.send(i), clock=clock
    )
    app.chat = chat
    return chat


def stored(app: App, cid: str) -> Conversation:
    doc = app.store.get(SHOP["id"], "conversations", cid)
    assert doc is not None
    return Conversation.from_doc(doc)


# --- the operator is told ----------------------------------------------------------------------


def test_a_widget_handoff_notifies_the_operator_once(
    client: Client,
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    logs: io.StringIO,
) -> None:
    secret_text = "Je voudrais parler à un conseiller, ma commande 4471 n'est pas arrivée"
    first = post_json(client, "/chat", {"message": secret_text}).json()
    sid = first["session_id"]
    assert "conseiller" in first["reply"]
    assert stored(app, sid).state == "human"
    (item,) = queue.items
    reply_id = stored(app, sid).recent[-1].id
    assert (item.kind, item.group, item.dedup_id) == ("notify_operator", sid, f"handoff:{reply_id}")
    # The bot is silent now, and queues nothing more.
    silent = post_json(client, "/chat", {"message": "Allô ?", "session_id": sid}).json()
    assert silent["reply"] == "" and len(queue.items) == 1
    queue.run(app)
    assert queue.failures == []
    (to_operator,) = graph_server.sent
    assert to_operator["to"] == OPERATOR_WA
    note = to_operator["text"]["body"]
    assert secret_text in note and "Allô" not in note
    assert f"python -m shared release {sid} --shop {SHOP['id']}" in note
    (telegram,) = telegram_server.called("sendMessage")
    assert telegram["chat_id"] == TG_OPERATOR and f"/release {sid}" in telegram["text"]
    assert_clean(logs.getvalue(), secret_text, "4471", "Allô", sid)


# --- a closed shop says when someone will answer ----------------------------------------------


def test_a_handoff_while_the_shop_is_closed_says_when_it_opens(app: App) -> None:
    clock = Clock(TUESDAY_EVENING)
    chat = chat_at(app, clock, business_hours=HOURS, timezone="Africa/Dakar")
    shop = app.shops.get(None)
    fr = chat.turn(shop, None, "Je voudrais parler à un conseiller").reply
    assert "La boutique est fermée" in fr and "dès l'ouverture, demain à 9 h." in fr
    clock.now = SATURDAY_AFTERNOON
    en = chat.turn(shop, None, "I would like to talk to a real person please").reply
    assert "The shop is closed" in en and "as soon as it opens, on Monday at 9 am." in en
    # Open: the usual handoff, no word of closing.
    clock.now = datetime(2025, 6, 10, 10, 0, tzinfo=UTC).timestamp()
    open_reply = chat.turn(shop, None, "Je voudrais parler à un conseiller").reply
    assert "conseiller" in open_reply and "fermée" not in open_reply


def test_any_model_reads_when_the_closed_shop_opens_in_the_tool_result(app: App) -> None:
    script = Script().then(
        Reply(tool_calls=[("request_human", {"reason": "remboursement"})]), Reply("Noté.")
    )
    app.llm_override = ScriptedLLM(script)
    chat = chat_at(app, Clock(TUESDAY_EVENING), business_hours=HOURS)
    chat.turn(app.shops.get(None), None, "Je veux être remboursé, passez-moi quelqu'un")
    tool = next(m for m in script.seen[-1].messages if m["role"] == "tool")
    assert json.loads(tool["text"]) == {
        "handed_off": True,
        "shop_open": False,
        "opens": "demain à 9 h",
    }


def test_opening_times_in_the_shops_time_zone() -> None:
    paris = datetime(2025, 6, 10, 17, 30, tzinfo=UTC).timestamp()  # 19:30 in Paris (UTC+2)
    opening = next_opening(HOURS, "Europe/Paris", paris)
    assert opening is not None and (opening.day, opening.hour) == (11, 9)
    assert when(opening, paris, "fr") == "demain à 9 h"
    lunch = datetime(2025, 6, 14, 6, 0, tzinfo=UTC).timestamp()  # Saturday 06:00 in Dakar
    saturday = next_opening(HOURS, "Africa/Dakar", lunch)
    assert saturday is not None
    assert when(saturday, lunch, "fr") == "aujourd'hui à 9 h 30"
    assert when(saturday, lunch, "en") == "today at 9:30 am"
    assert next_opening(HOURS, "Africa/Dakar", TUESDAY_EVENING - 4 * 3600) is None  # 16:00
    assert next_opening(None, "Africa/Dakar", TUESDAY_EVENING) is None  # no hours: always open


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"business_hours": {"mon": ["18:00-09:00"]}}, "closes before it opens"),
        ({"business_hours": {"mon": ["9h-18h"]}}, "expected HH:MM"),
        ({"business_hours": {"mon": ["09:00-25:00"]}}, "not a time of day"),
        ({"business_hours": {"lun": ["09:00-18:00"]}}, "business_hours.lun"),
        ({"business_hours": {"mon": []}}, "at least one open range"),
        ({"timezone": "Dakar"}, "unknown time zone"),
    ],
)
def test_malformed_hours_or_time_zone_are_refused(
    settings: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        Shop.model_validate({"id": "s", "name": "S", **settings})


# --- a handoff nobody answers comes back ------------------------------------------------------


def test_the_assistant_answers_again_when_nobody_answered_in_time(app: App) -> None:
    start = datetime(2025, 6, 10, 10, 0, tzinfo=UTC).timestamp()
    clock = Clock(start)
    chat = chat_at(app, clock)
    shop = app.shops.get(None)
    sid = chat.turn(shop, None, "Je voudrais parler à un conseiller").session_id
    assert stored(app, sid).handoff_at == start
    clock.now = start + 29 * 60  # HANDOFF_RELEASE_MINUTES is 30
    assert chat.turn(shop, sid, "Allô ?").reply == ""
    assert stored(app, sid).state == "human"
    clock.now = start + 31 * 60
    back = chat.turn(shop, sid, "Vous avez des sandales en cuir ?").reply
    assert back.startswith(RELEASED_NOTICE["fr"]) and "Sandales en cuir" in back
    after = stored(app, sid)
    assert (after.state, after.release_reason, after.handoff_reason) == (
        "bot",
        "no_operator_reply",
        "",
    )
    assert [m.text for m in after.recent][-1] == back  # stored as the customer read it


def test_a_handoff_the_shop_answered_stays_with_the_shop(app: App) -> None:
    start = datetime(2025, 6, 10, 10, 0, tzinfo=UTC).timestamp()
    clock = Clock(start)
    chat = chat_at(app, clock)
    shop = app.shops.get(None)
    sid = chat.turn(shop, None, "Je voudrais parler à un conseiller").session_id
    conversations.update(
        app.store, shop.id, sid, lambda c: c.model_copy(update={"operator_replied_at": start + 60})
    )
    clock.now = start + 120 * 60
    assert chat.turn(shop, sid, "Merci, j'attends").reply == ""
    assert stored(app, sid).state == "human"


def test_a_whatsapp_handoff_nobody_answered_comes_back(
    app: App, queue: RecordingQueue, graph_server: GraphServer, logs: io.StringIO
) -> None:
    start = datetime(2025, 6, 10, 10, 0, tzinfo=UTC).timestamp()
    clock = Clock(start)
    chat_at(app, clock)
    cid = conversation_id(APP_SECRET, SHOP["id"], "whatsapp", WA_ID)
    arrive(whatsapp_text("Je voudrais parler à un conseiller"))
    queue.run(app)
    assert stored(app, cid).state == "human"
    to_customer = [m for m in graph_server.sent if m["to"] == WA_ID]
    clock.now = start + 10 * 60
    arrive(whatsapp_text("Allô ?", "wamid.T2", delivered_at(1760000100)))
    queue.run(app)
    assert [m for m in graph_server.sent if m["to"] == WA_ID] == to_customer  # silent
    clock.now = start + 45 * 60
    arrive(whatsapp_text("Vous avez des sandales en cuir ?", "wamid.T3", delivered_at(1760000200)))
    queue.run(app)
    assert queue.failures == []
    last = [m for m in graph_server.sent if m["to"] == WA_ID][-1]
    body = last["text"]["body"] if last["type"] == "text" else last["interactive"]["body"]["text"]
    assert body.startswith(RELEASED_NOTICE["fr"])
    assert stored(app, cid).state == "bot"
    assert_clean(logs.getvalue(), "Allô", "sandales", cid)
