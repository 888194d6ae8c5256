"""The console's conversations (``shared/admin/conversations.py``) on the loopback Graph API
and Telegram server: the inbox's filters and search, one conversation with its messages and
order, a person's reply through the customer's channel (WhatsApp's 24-hour window, the shop's
template after it), take over, release, read; every write audited without its text; another
shop's conversation is a 404."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from shared import conversations, crm, events, shops
from shared.admin import audit
from shared.app import App
from shared.ids import new_sortable_id
from shared.models import Conversation, Lead, Message
from tests.admin.conftest import ADMIN_SECRET, signed_in
from tests.campaigns.conftest import SHOP, telegram_customer, whatsapp_customer
from tests.channels.conftest import channel_settings, sleeps  # noqa: F401
from tests.fixtures.app import SHOP as SHOP_DOC
from tests.fixtures.app import Client, FunctionsFrameworkClient, LambdaClient, Result
from tests.fixtures.graph_server import Fail, GraphServer
from tests.fixtures.telegram_server import TelegramServer

API = "/admin/api"
HOURS = 3600.0
OPERATOR = "awa@maison-teranga.example"
TEMPLATE = {"name": "reprise_conversation", "language": "fr"}


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    sleeps: list[float],  # noqa: F811
) -> App:
    return make_app(
        ADMIN_SESSION_SECRET=ADMIN_SECRET, **channel_settings(graph_server, telegram_server)
    )


@pytest.fixture(params=["lambda", "gcf"])
def client(request: pytest.FixtureRequest, app: App) -> Client:
    return LambdaClient() if request.param == "lambda" else FunctionsFrameworkClient()


def call(
    client: Client,
    app: App,
    method: str,
    path: str,
    body: Any = None,
    shop: str = SHOP,
    query: dict[str, str] | None = None,
) -> Result:
    headers = signed_in(app, shop, OPERATOR)
    if body is None:
        return client.request(method, API + path, headers=headers, query=query)
    headers["content-type"] = "application/json"
    return client.request(method, API + path, headers=headers, body=json.dumps(body).encode())


def audited(app: App, shop: str = SHOP) -> list[tuple[str, str, dict[str, Any]]]:
    entries, _ = audit.entries(app.store, shop)
    return [(e["action"], e["target"], e["details"]) for e in reversed(entries)]


def say(app: App, conversation: Conversation, text: str, role: str = "user") -> Message:
    """A message added as a turn adds it (stored, on ``recent``; a customer's counts as read
    by nobody yet)."""
    message = Message(id=new_sortable_id(), role=role, text=text, at=time.time())  # type: ignore[arg-type]
    conversations.add_message(app.store, SHOP, conversation.id, message)
    loaded, version = conversations.load(app.store, SHOP, conversation.id) or (None, 0)
    assert loaded is not None
    conversations.save_turn(app.store, SHOP, loaded, loaded, version, [message], message.at)
    return message


def web_conversation(app: App, text: str = "Bonjour") -> Conversation:
    conversation, _ = conversations.open_session(app.store, SHOP, None, "web", time.time())
    say(app, conversation, text)
    return conversation


def stored(app: App, conversation_id: str) -> list[Message]:
    return conversations.latest_messages(app.store, SHOP, conversation_id, 50)


# --- the inbox ------------------------------------------------------------------------------------


def test_the_inbox_filters_by_channel_state_need_and_unread_and_searches(
    app: App, client: Client
) -> None:
    _, awa = whatsapp_customer(app, "221770000501", "Awa Ndiaye")
    say(app, awa, "Je cherche un boubou brodé")
    _, fatou = telegram_customer(app, "5501", "Fatou Sow")
    say(app, fatou, "Livrez-vous à Thiès ?")
    conversations.mark_read(app.store, SHOP, fatou.id, time.time())
    web = web_conversation(app, "Avez-vous des sandales ?")
    conversations.hand_off(app.store, SHOP, web.id, "customer_request", time.time())

    def listed(**query: str) -> list[str]:
        result = call(client, app, "GET", "/conversations", query=query)
        assert result.status == 200, result.body
        return [c["id"] for c in result.json()["conversations"]]

    assert listed() == [web.id, fatou.id, awa.id]  # latest activity first
    assert listed(channel="telegram") == [fatou.id]
    assert listed(state="human") == [web.id]
    assert listed(needs_human="1") == [web.id]
    assert listed(unread="1") == [web.id, awa.id]  # Fatou's was read since she wrote
    assert listed(q="brode") == [awa.id]  # accents aside, in the messages
    assert listed(q="fatou") == [fatou.id]  # the customer's name
    assert listed(q="0000501") == [awa.id]  # their phone
    assert listed(channel="whatsapp", q="sandales") == []

    summary = call(client, app, "GET", "/conversations").json()["conversations"][0]
    assert summary["state"] == "human" and summary["needs_human"] and summary["unread"]
    assert summary["handoff_reason"] == "customer_request"
    assert summary["last"]["author"] == "customer"
    assert summary["last"]["text"] == "Avez-vous des sandales ?"
    whatsapp = call(client, app, "GET", "/conversations", query={"channel": "whatsapp"})
    assert whatsapp.json()["conversations"][0]["customer"]["phone"] == "+221770000501"

    bad = call(client, app, "GET", "/conversations", query={"channel": "sms"})
    assert bad.status == 400 and "channel" in bad.json()["error"]["message"]


def test_the_inbox_pages_with_a_cursor(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.admin import conversations as inbox

    monkeypatch.setattr(inbox, "PAGE_SIZE", 2)
    made = [web_conversation(app, f"Message {n}").id for n in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"cursor": cursor} if cursor else {}
        body = call(client, app, "GET", "/conversations", query=query).json()
        seen += [c["id"] for c in body["conversations"]]
        if (cursor := body["cursor"]) is None:
            break
    assert seen == made[::-1]
    malformed = call(client, app, "GET", "/conversations", query={"cursor": "nope"})
    assert malformed.status == 400


# --- one conversation -------------------------------------------------------------------------


def test_a_conversation_shows_its_messages_in_order_its_order_and_its_window(
    app: App, client: Client
) -> None:
    customer, chat = whatsapp_customer(app, "221770000502", "Khady Diallo", wrote_at=time.time())
    first = say(app, chat, "Bonjour")
    reply = say(app, chat, "Bonjour Khady, que puis-je pour vous ?", role="assistant")
    now = time.time()
    lead = Lead(
        id=new_sortable_id(), customer_id=customer.id, conversation_id=chat.id,
        channel="whatsapp", name="Khady Diallo", phone="+221770000502", address="Dakar",
        product_id="sandales-cuir", product_title="Sandales en cuir", quantity=1,
        unit_price=Decimal(15000), currency="XOF", total=Decimal(15000),
        created_at=now, updated_at=now,
    )  # fmt: skip
    crm.save_lead(app.store, SHOP, lead)

    body = call(client, app, "GET", f"/conversations/{chat.id}").json()

    assert [(m["id"], m["author"]) for m in body["messages"]] == [
        (first.id, "customer"),
        (reply.id, "assistant"),
    ]
    assert body["messages"][1]["operator"] is None
    assert body["order"]["id"] == lead.id and body["order"]["status"] == "confirmed"
    window = body["window"]
    assert window["open"] and window["template"] is None
    assert window["closes_at"] == pytest.approx((chat.last_inbound_at or 0) + 24 * HOURS, abs=5)
    assert body["conversation"]["customer"]["name"] == "Khady Diallo"


def test_another_shops_conversation_is_404_like_an_unknown_one(app: App, client: Client) -> None:
    app.store.put("other", "shops", "other", {**SHOP_DOC, "id": "other", "name": "Autre"})
    chat = web_conversation(app)
    for method, path, body in [
        ("GET", f"/conversations/{chat.id}", None),
        ("POST", f"/conversations/{chat.id}/reply", {"text": "Bonjour"}),
        ("POST", f"/conversations/{chat.id}/takeover", None),
        ("POST", f"/conversations/{chat.id}/release", None),
        ("POST", f"/conversations/{chat.id}/read", None),
        ("GET", "/conversations/no-such-conversation", None),
    ]:
        result = call(client, app, method, path, body, shop="other")
        assert result.status == 404, (path, result.body)
        assert result.json()["error"]["code"] == "not_found"
    assert call(client, app, "GET", "/conversations", shop="other").json()["conversations"] == []
    assert [m.text for m in stored(app, chat.id)] == ["Bonjour"]
    assert conversations.get(app.store, SHOP, chat.id).state == "bot"  # type: ignore[union-attr]
    assert audited(app) == [] and audited(app, "other") == []


# --- replying -----------------------------------------------------------------------------------


def test_a_reply_on_the_web_is_stored_for_the_widget_and_takes_the_conversation_over(
    app: App, client: Client, graph_server: GraphServer, telegram_server: TelegramServer
) -> None:
    chat = web_conversation(app)
    conversations.hand_off(app.store, SHOP, chat.id, "customer_request", time.time())

    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": " Bonjour ! "})

    assert result.status == 200, result.body
    body = result.json()
    assert body["sent"] == "stored"
    message = body["message"]
    assert (message["text"], message["author"], message["operator"]) == (
        "Bonjour !", "operator", OPERATOR,
    )  # fmt: skip
    assert stored(app, chat.id)[-1].operator == OPERATOR
    after = conversations.get(app.store, SHOP, chat.id)
    assert after is not None and after.state == "human" and after.operator_replied_at
    assert after.recent[-1].id == message["id"]  # the next turn's context has it
    summary = call(client, app, "GET", "/conversations").json()["conversations"][0]
    assert not summary["needs_human"] and not summary["unread"]
    assert summary["last"]["author"] == "operator"
    assert graph_server.sent == [] and telegram_server.called("sendMessage") == []
    details = {"message": message["id"], "channel": "web", "sent": "stored"}
    assert audited(app) == [("conversation.reply", chat.id, details)]
    assert "Bonjour" not in json.dumps(audited(app))  # never the text


def test_a_whatsapp_reply_inside_the_window_goes_as_text(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    _, chat = whatsapp_customer(app, "221770000503", "Awa Ndiaye", wrote_at=time.time() - HOURS)

    body = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "C'est noté"})
    assert body.status == 200, body.body

    assert body.json()["sent"] == "sent"
    [sent] = graph_server.sent
    assert sent["to"] == "221770000503" and sent["text"]["body"] == "C'est noté"
    message = stored(app, chat.id)[-1]
    assert message.delivery == "accepted" and message.external_ids == [sent["_id"]]
    assert body.json()["message"]["delivery"] == "accepted"


def test_a_whatsapp_reply_after_the_window_sends_the_shops_template(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    shops.update_shop(app.store, SHOP, {"whatsapp_template": TEMPLATE})
    _, chat = whatsapp_customer(app, "221770000504", "Awa", wrote_at=time.time() - 30 * HOURS)

    detail = call(client, app, "GET", f"/conversations/{chat.id}").json()
    assert detail["window"]["open"] is False
    assert detail["window"]["template"] == "reprise_conversation"
    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "Bonjour"})

    assert result.status == 200, result.body
    assert result.json()["sent"] == "template"
    [sent] = graph_server.sent
    assert sent["type"] == "template" and sent["template"]["name"] == "reprise_conversation"
    assert stored(app, chat.id)[-1].delivery == "template"


def test_a_whatsapp_reply_after_the_window_without_a_template_is_409_and_nothing_is_done(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    _, chat = whatsapp_customer(app, "221770000505", "Awa", wrote_at=time.time() - 30 * HOURS)

    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "Bonjour"})

    assert result.status == 409
    assert result.json()["error"]["code"] == "window_closed"
    assert graph_server.attempts() == 0
    assert stored(app, chat.id) == [] and audited(app) == []


def test_a_telegram_reply_goes_to_the_chat(
    app: App, client: Client, telegram_server: TelegramServer
) -> None:
    _, chat = telegram_customer(app, "5502", "Fatou Sow")

    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "Bien reçu"})

    assert result.status == 200, result.body
    assert result.json()["sent"] == "sent"
    [sent] = telegram_server.called("sendMessage")
    assert str(sent["chat_id"]) == "5502" and sent["text"] == "Bien reçu"


def test_a_failed_send_keeps_the_reply_marked_failed_and_answers_502(
    app: App, client: Client, graph_server: GraphServer
) -> None:
    _, chat = whatsapp_customer(app, "221770000506", "Awa", wrote_at=time.time())
    graph_server.fail(Fail(400, 131026))  # undeliverable: never retried

    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "Bonjour"})

    assert result.status == 502
    assert result.json()["error"]["code"] == "channel_error"
    assert "221770000506" not in result.body.decode()
    [kept] = stored(app, chat.id)
    assert (kept.text, kept.delivery, kept.error_code) == ("Bonjour", "failed", 131026)
    assert audited(app)[0][2]["sent"] == "failed"


def test_two_replies_at_once_are_both_kept(app: App, client: Client) -> None:
    chat = web_conversation(app)
    results: list[Result] = []

    def reply(text: str) -> None:
        results.append(call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": text}))

    threads = [threading.Thread(target=reply, args=(f"Réponse {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status for r in results] == [200, 200]
    texts = {"Réponse 0", "Réponse 1"}
    assert {m.text for m in stored(app, chat.id)} >= texts
    after = conversations.get(app.store, SHOP, chat.id)
    assert after is not None and {m.text for m in after.recent} >= texts


@pytest.mark.parametrize("text", ["", "   ", "x" * 4097])
def test_a_reply_must_have_text_within_the_limit(app: App, client: Client, text: str) -> None:
    chat = web_conversation(app)
    result = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": text})
    assert result.status == 400
    assert len(stored(app, chat.id)) == 1


# --- take over, release, read --------------------------------------------------------------------


def test_take_over_release_and_read(app: App, client: Client) -> None:
    chat = web_conversation(app)

    taken = call(client, app, "POST", f"/conversations/{chat.id}/takeover").json()["conversation"]
    assert taken["state"] == "human" and taken["needs_human"] and taken["handoff_at"]
    again = call(client, app, "POST", f"/conversations/{chat.id}/takeover").json()["conversation"]
    assert again["handoff_at"] == taken["handoff_at"]  # already with the shop: its time stays

    assert taken["unread"]
    read = call(client, app, "POST", f"/conversations/{chat.id}/read").json()["conversation"]
    assert not read["unread"]
    say(app, chat, "Vous êtes là ?")
    assert call(client, app, "GET", "/conversations").json()["conversations"][0]["unread"]

    released = call(client, app, "POST", f"/conversations/{chat.id}/release").json()
    assert released["conversation"]["state"] == "bot"
    after = conversations.get(app.store, SHOP, chat.id)
    assert after is not None and after.release_reason == "operator"
    assert [(action, target) for action, target, _ in audited(app)] == [
        ("conversation.takeover", chat.id),
        ("conversation.takeover", chat.id),
        ("conversation.read", chat.id),
        ("conversation.release", chat.id),
    ]


def test_writes_need_the_csrf_token(app: App, client: Client) -> None:
    chat = web_conversation(app)
    headers = {**signed_in(app, SHOP), "content-type": "application/json"}
    del headers["x-csrf-token"]
    for path, body in [("reply", b'{"text": "Bonjour"}'), ("takeover", b""), ("release", b"")]:
        result = client.request(
            "POST", f"{API}/conversations/{chat.id}/{path}", headers=headers, body=body
        )
        assert result.status == 403, path
    assert client.request("GET", API + "/conversations").status == 401
    assert len(stored(app, chat.id)) == 1
    assert conversations.get(app.store, SHOP, chat.id).state == "bot"  # type: ignore[union-attr]


def test_the_live_inbox_hears_of_replies_takeovers_and_releases(
    app: App, client: Client, graph_server: GraphServer, telegram_server: TelegramServer
) -> None:
    chat = web_conversation(app)
    begin = events.read(app.store, SHOP, None, time.time() + 60)[-1].id  # the customer's message

    call(client, app, "POST", f"/conversations/{chat.id}/takeover")
    reply = call(client, app, "POST", f"/conversations/{chat.id}/reply", {"text": "Bonjour"})
    call(client, app, "POST", f"/conversations/{chat.id}/release")
    call(client, app, "POST", f"/conversations/{chat.id}/read")  # reading is nobody's news

    heard = events.read(app.store, SHOP, begin, time.time() + events.SETTLE_SECONDS + 1)
    assert [(e.kind, e.conversation_id) for e in heard] == [
        ("takeover", chat.id), ("operator_reply", chat.id), ("release", chat.id),
    ]  # fmt: skip
    assert heard[1].data == {
        "message": reply.json()["message"]["id"], "channel": "web", "sent": "stored",
    }  # fmt: skip
    assert events.read(app.store, "other", begin, time.time() + 60) == []
