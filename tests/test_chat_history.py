"""``GET /chat/history`` while a person of the shop has the conversation: its state, who wrote
each message (never which operator), and ``after=`` for the widget's cheap polling."""

from __future__ import annotations

import time
from typing import Any

from shared import conversations
from shared.app import App
from shared.ids import new_sortable_id
from shared.models import Message
from tests.fixtures.app import Client, post_json


def _history(client: Client, sid: str, after: str | None = None) -> Any:
    query = {"session_id": sid, **({"after": after} if after else {})}
    result = client.request("GET", "/chat/history", query=query)
    assert result.status == 200, result.body
    return result.json()


def _operator_reply(app: App, sid: str, text: str) -> Message:
    reply = Message(
        id=new_sortable_id(),
        role="assistant",
        text=text,
        at=time.time(),
        operator="awa@maison-teranga.example",
    )
    conversations.add_operator_reply(app.store, app.settings.default_shop, sid, reply)
    return reply


def test_the_history_says_who_answers_and_who_wrote_each_message(client: Client, app: App) -> None:
    sid = post_json(client, "/chat", {"message": "Bonjour"}).json()["session_id"]
    first = _history(client, sid)
    assert first["state"] == "bot"
    assert [(m["role"], m["author"]) for m in first["messages"]] == [
        ("user", "customer"),
        ("assistant", "assistant"),
    ]

    conversations.hand_off(
        app.store, app.settings.default_shop, sid, "customer_request", time.time()
    )
    waiting = post_json(client, "/chat", {"message": "Allô ?", "session_id": sid}).json()
    assert waiting["reply"] == ""  # the bot stays silent while the shop has it
    _operator_reply(app, sid, "Bonjour, ici Awa de la boutique.")

    handed = _history(client, sid)
    assert handed["state"] == "human"
    last = handed["messages"][-2:]
    assert [(m["text"], m["author"]) for m in last] == [
        ("Allô ?", "customer"),
        ("Bonjour, ici Awa de la boutique.", "operator"),
    ]
    assert "awa@" not in str(handed)  # the operator's e-mail stays in the shop
    assert len({m["id"] for m in handed["messages"]}) == 4


def test_after_returns_only_the_newer_messages(client: Client, app: App) -> None:
    sid = post_json(client, "/chat", {"message": "Bonjour"}).json()["session_id"]
    conversations.take_over(app.store, app.settings.default_shop, sid, time.time())
    seen = _history(client, sid)["messages"]
    last_id = seen[-1]["id"]
    assert _history(client, sid, after=last_id)["messages"] == []

    reply = _operator_reply(app, sid, "Je regarde votre demande.")
    newer = _history(client, sid, after=last_id)
    assert newer["state"] == "human"
    assert [(m["id"], m["author"]) for m in newer["messages"]] == [(reply.id, "operator")]
    assert _history(client, sid, after=reply.id)["messages"] == []

    conversations.release(app.store, app.settings.default_shop, sid)
    assert _history(client, sid, after=reply.id)["state"] == "bot"


def test_an_after_that_no_message_could_have_is_400(client: Client, app: App) -> None:
    sid = post_json(client, "/chat", {"message": "Bonjour"}).json()["session_id"]
    result = client.request("GET", "/chat/history", query={"session_id": sid, "after": "../x"})
    assert result.status == 400
    assert result.json()["error"]["code"] == "invalid_input"
