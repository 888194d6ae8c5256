"""Retention: a shop's conversations idle past ``retention_days`` are erased with their messages
by the daily task; recent ones, and every conversation of a shop without the setting, stay."""

from __future__ import annotations

import time
from collections import Counter

from shared import conversations, events
from shared.app import App
from shared.channels.receive import SENT
from shared.ids import new_session_id, new_sortable_id
from shared.models import Conversation, Message
from shared.retention import purge, retention_task
from shared.shops import update_shop
from shared.store import Store

SHOP = "teranga"
DAY = 86400.0


def a_conversation(store: Store, shop: str, days_ago: float) -> str:
    at = time.time() - days_ago * DAY
    conversation = Conversation(id=new_session_id(), created_at=at, updated_at=at)
    conversations.create(store, shop, conversation)
    for text in ("Bonjour", "Bienvenue"):
        message = Message(id=new_sortable_id(), role="user", text=text, at=at)
        conversations.add_message(store, shop, conversation.id, message)
    store.put(shop, SENT, f"wamid.{conversation.id}", {"conversation": conversation.id})
    return conversation.id


def test_the_task_erases_what_is_past_the_shops_retention_only(app: App) -> None:
    old = [a_conversation(app.store, SHOP, days) for days in (40, 35, 31)]
    recent = a_conversation(app.store, SHOP, 2)
    assert retention_task(app, time.time()) == {"shops": {}}  # no retention set: all kept
    assert all(conversations.get(app.store, SHOP, c) for c in [*old, recent])

    update_shop(app.store, SHOP, {"retention_days": 30})
    del app.shops  # the next read sees the new setting (a warm instance: within a minute)
    report = retention_task(app, time.time())

    assert report == {"shops": {SHOP: {"conversations": 3, "messages": 6, "finished": True}}}
    for cid in old:
        assert conversations.get(app.store, SHOP, cid) is None
        assert list(app.store.scan(SHOP, conversations.messages_of(cid))) == []
    assert [d.id for d in app.store.scan(SHOP, SENT)] == [f"wamid.{recent}"]
    assert conversations.get(app.store, SHOP, recent) is not None
    assert len(list(app.store.scan(SHOP, conversations.messages_of(recent)))) == 2


def test_a_run_out_of_time_stops_and_the_next_finishes(app: App) -> None:
    for days in (50, 45, 40):
        a_conversation(app.store, SHOP, days)

    first = purge(app.store, SHOP, 30, time.time(), deadline=time.monotonic() - 1)
    assert (first.conversations, first.finished) == (0, False)
    second = purge(app.store, SHOP, 30, time.time(), deadline=time.monotonic() + 30)
    assert (second.conversations, second.finished) == (3, True)


def test_a_shorter_retention_erases_the_conversations_events_too(app: App) -> None:
    # Events are kept 30 days from what they record: a week's retention must erase them itself.
    old, recent = a_conversation(app.store, SHOP, 10), a_conversation(app.store, SHOP, 2)
    assert events_by_conversation(app.store) == {old: 2, recent: 2}

    purge(app.store, SHOP, 7, time.time(), time.monotonic() + 30)

    assert events_by_conversation(app.store) == {recent: 2}


def events_by_conversation(store: Store) -> Counter[str]:
    return Counter(d.data["conversation_id"] for d in store.scan(SHOP, events.COLLECTION))
