"""The Telegram webhook through both cloud adapters and the worker against the loopback Bot
API: the secret header, /start, edited messages, button taps, dedupe by update_id, media,
rate limits, the operator's /release and the setWebhook command."""

from __future__ import annotations

import argparse
import io
import logging
from typing import Any

import pytest

from shared import conversations, crm, marketing
from shared.app import App
from shared.channels import cli
from shared.channels.receive import conversation_id
from shared.channels.telegram.inbound import to_inbound
from shared.channels.telegram.models import Update
from shared.models import Conversation
from tests.channels.conftest import (
    TG_OPERATOR,
    TG_SECRET,
    RecordingQueue,
    assert_clean,
    post_telegram,
)
from tests.eventlib import load_event
from tests.fixtures.app import Client
from tests.fixtures.graph_server import Fail
from tests.fixtures.telegram_server import BOT_TOKEN, TelegramServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

SHOP = "teranga"
CHAT = "700100200"
CID = conversation_id(TG_SECRET, SHOP, "telegram", CHAT)


def stored(app: App) -> Conversation:
    doc = app.store.get(SHOP, "conversations", CID)
    assert doc is not None
    return Conversation.from_doc(doc)


@pytest.mark.parametrize("secret", [None, "", "wrong", TG_SECRET + "x"])
def test_the_secret_header_is_required(
    client: Client, queue: RecordingQueue, secret: str | None
) -> None:
    result = post_telegram(client, load_event("telegram_message"), secret)
    assert result.status == 401
    assert result.json()["error"]["code"] == "invalid_secret"
    assert queue.items == []


def test_malformed_json_is_400(client: Client) -> None:
    result = client.request(
        "POST",
        "/webhooks/telegram",
        headers={"x-telegram-bot-api-secret-token": TG_SECRET},
        body=b"{oops",
    )
    assert result.status == 400


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        ("telegram_message", "message", "Bonjour, avez-vous des sandales en cuir ?"),
        ("telegram_start", "message", "/start"),
        ("telegram_edited_message", "edited_message", "Bonjour, avez-vous des sacs en raphia ?"),
        ("telegram_callback_query", "callback_query", "Sandales en cuir"),
        ("telegram_photo", "message", "Vous avez ce modèle ?"),
        ("telegram_voice", "message", "[voice]"),
        ("telegram_location", "message", "📍 (14.6928, -17.4467)"),
        ("telegram_group_message", "message", None),
        ("telegram_channel_post", "unsupported", None),
    ],
)
def test_every_update_type_parses(name: str, kind: str, text: str | None) -> None:
    update = Update.model_validate(load_event(name))
    assert update.kind == kind
    inbound = to_inbound(update)
    if text is None:  # groups and channels get no answer
        assert inbound is None
        return
    assert inbound is not None
    assert (inbound.channel, inbound.user, inbound.text) == ("telegram", CHAT, text)
    assert inbound.key == str(update.update_id)


def test_a_message_is_stored_queued_and_answered(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    result = post_telegram(client, load_event("telegram_message"))
    assert result.status == 200
    (item,) = queue.items
    assert (item.kind, item.group, item.dedup_id) == ("channel_turn", CID, "815000001")
    conversation = stored(app)
    assert (conversation.channel, conversation.channel_user) == ("telegram", CHAT)
    queue.run(app)
    assert queue.failures == []
    (typing,) = telegram_server.called("sendChatAction")
    assert typing == {"chat_id": CHAT, "action": "typing", "_ok": True}
    (sent,) = telegram_server.called("sendMessage")
    assert sent["chat_id"] == CHAT
    assert "Sandales en cuir" in sent["text"] and "**" not in sent["text"]
    buttons = [row[0] for row in sent["reply_markup"]["inline_keyboard"]]
    assert {"text": "Sandales en cuir", "callback_data": "product:sandales-cuir"} in buttons


def test_an_update_delivered_twice_is_handled_once(client: Client, queue: RecordingQueue) -> None:
    for _ in range(3):
        assert post_telegram(client, load_event("telegram_message")).status == 200
    assert len(queue.items) == 1


def test_start_gets_a_greeting(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    script = Script().then(Reply("Bonjour et bienvenue chez Maison Teranga !"))
    app.llm_override = ScriptedLLM(script)
    assert post_telegram(client, load_event("telegram_start")).status == 200
    queue.run(app)
    assert script.seen[0].messages[-1]["text"] == "Bonjour"  # /start reads as a hello
    (sent,) = telegram_server.called("sendMessage")
    assert sent["text"] == "Bonjour et bienvenue chez Maison Teranga !"
    assert stored(app).recent[0].text == "/start"


def _typed(text: str, update_id: int, later: int = 0) -> dict[str, Any]:
    """The recorded message with another text and update id, ``later`` seconds after it."""
    event = load_event("telegram_message")
    message = event["message"]
    event["update_id"] = update_id
    message.update(text=text, message_id=update_id, date=message["date"] + later)
    return event


@pytest.mark.parametrize(
    ("word", "opt_out"),
    [
        ("STOP", True),
        ("arrêt", True),
        ("ARRETER", True),
        ("désabonner", True),
        ("Desinscrire", True),
        ("Unsubscribe.", True),
        ("start", False),
        ("REPRENDRE", False),
        ("Resume!", False),
    ],
)
def test_typed_keywords_are_kept_for_the_chat_and_confirmed(
    client: Client,
    app: App,
    queue: RecordingQueue,
    telegram_server: TelegramServer,
    word: str,
    opt_out: bool,
) -> None:
    address = f"telegram:{CHAT}"
    if not opt_out:  # START after a STOP
        assert post_telegram(client, _typed("STOP", 815000101)).status == 200
        assert marketing.opted_out(app.store, SHOP, [address]) == {address}
    app.llm_override = ScriptedLLM(Script())  # a model call would fail the turn
    assert post_telegram(client, _typed(word, 815000102, 10)).status == 200
    assert marketing.opted_out(app.store, SHOP, [address]) == ({address} if opt_out else set())
    # No customer yet: the conversation keeps the choice for the one made later.
    conversation = stored(app)
    assert conversation.marketing_opt_out is opt_out
    customer, _ = crm.contact_for_order(app.store, SHOP, conversation, "+221 77 765 43 21", "Awa")
    assert customer.marketing_opt_out is opt_out
    queue.run(app)
    assert queue.failures == []
    sent = telegram_server.called("sendMessage")[-1]
    assert sent["text"] in {marketing.confirmation(opt_out, lang) for lang in ("fr", "en")}


def test_a_stop_in_a_chat_with_a_customer_opts_the_customer_out(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    assert post_telegram(client, load_event("telegram_message")).status == 200
    customer, _ = crm.contact_for_order(app.store, SHOP, stored(app), "+221 77 765 43 21", "Awa")
    assert post_telegram(client, _typed("STOP", 815000103, 10)).status == 200
    after = crm.get_customer(app.store, SHOP, customer.id)
    assert after is not None and after.marketing_opt_out is True
    assert marketing.opted_out(app.store, SHOP, [f"telegram:{CHAT}"]) == {f"telegram:{CHAT}"}


def test_an_edited_message_is_answered_as_a_new_one(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    post_telegram(client, load_event("telegram_message"))
    queue.run(app)
    post_telegram(client, load_event("telegram_edited_message"))
    queue.run(app)
    assert queue.failures == []
    assert [m.text for m in stored(app).recent if m.role == "user"] == [
        "Bonjour, avez-vous des sandales en cuir ?",
        "Bonjour, avez-vous des sacs en raphia ?",
    ]
    _, second = telegram_server.called("sendMessage")
    assert "Sac en raphia" in second["text"]


def test_a_button_tap_is_acknowledged_in_the_response_and_answered(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    result = post_telegram(client, load_event("telegram_callback_query"))
    assert result.status == 200
    assert result.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
    }
    queue.run(app)
    assert stored(app).recent[0].text == "Sandales en cuir"
    (sent,) = telegram_server.called("sendMessage")
    assert "15\u202f000 FCFA" in sent["text"]  # the catalogue price


def test_groups_and_channel_posts_are_acknowledged_and_ignored(
    client: Client, queue: RecordingQueue
) -> None:
    assert post_telegram(client, load_event("telegram_group_message")).status == 200
    assert post_telegram(client, load_event("telegram_channel_post")).status == 200
    assert post_telegram(client, {"update_id": 1, "poll": {"id": "1"}}).status == 200
    assert queue.items == []


def test_a_photo_is_fetched_with_getfile_for_a_vision_model(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    script = Script().then(Reply("Oui, ce sont nos Sandales en cuir."))
    app.llm_override = ScriptedLLM(script)
    telegram_server.files["AgACAgQAAxkBAAIBlarge"] = (b"\xff\xd8\xff" + b"1" * 900, "photos/1.jpg")
    post_telegram(client, load_event("telegram_photo"))
    queue.run(app)
    assert queue.failures == []
    assert telegram_server.called("getFile")[0]["file_id"] == "AgACAgQAAxkBAAIBlarge"
    last = script.seen[0].messages[-1]
    assert (last["text"], last["images"]) == ("Vous avez ce modèle ?", 1)


def test_a_429_waits_as_long_as_telegram_asks(
    client: Client,
    app: App,
    queue: RecordingQueue,
    telegram_server: TelegramServer,
    sleeps: list[float],
) -> None:
    telegram_server.fail(Fail(429, retry_after="7"), Fail(502))
    post_telegram(client, load_event("telegram_message"))
    queue.run(app)
    assert queue.failures == []
    assert len(telegram_server.called("sendMessage")) == 1
    assert sleeps[0] >= 7 and len(sleeps) == 2


def test_a_blocked_bot_is_not_retried(
    client: Client, app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    telegram_server.fail(Fail(403))  # Forbidden: bot was blocked by the user
    post_telegram(client, load_event("telegram_message"))
    queue.run(app)
    (failure,) = queue.failures
    assert getattr(failure, "retryable", None) is False


def test_the_operator_releases_a_conversation_with_a_command(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    post_telegram(client, load_event("telegram_message"))
    conversations.set_state(app.store, SHOP, CID, "human", "asked for a person")
    command = load_event("telegram_message")
    command["update_id"] = 815000100
    command["message"]["chat"]["id"] = int(TG_OPERATOR)
    command["message"]["text"] = f"/release {CID}"
    result = post_telegram(client, command)
    assert result.json() == {
        "method": "sendMessage",
        "chat_id": int(TG_OPERATOR),
        "text": "La conversation est rendue à l'assistant.",
    }
    assert stored(app).state == "bot"
    command["update_id"] += 1
    command["message"]["text"] = "/release not-a-session"
    assert "Je ne trouve pas" in post_telegram(client, command).json()["text"]
    # From anyone else, /release is just a message.
    stranger = load_event("telegram_message")
    stranger["update_id"] = 815000200
    stranger["message"]["text"] = f"/release {CID}"
    assert post_telegram(client, stranger).json() == {"ok": True}


def test_the_cli_registers_the_webhook_with_its_secret(
    app: App, telegram_server: TelegramServer, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command"))
    assert cli.run(parser.parse_args(["telegram-webhook"])) == 0
    (call,) = telegram_server.called("setWebhook")
    assert call["url"] == "https://comptoir.example/webhooks/telegram"
    assert call["secret_token"] == TG_SECRET
    out = capsys.readouterr().out
    assert "https://comptoir.example/webhooks/telegram" in out
    assert BOT_TOKEN not in out and TG_SECRET not in out


def test_the_cli_routes_a_whatsapp_number_to_a_shop(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    app.store.put("boutique2", "shops", "boutique2", {"name": "Boutique 2"})
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["whatsapp-number", "106540352242999", "--shop", "boutique2"])
    assert cli.run(args) == 0
    shop = app.store.get("boutique2", "shops", "boutique2")
    assert shop is not None and shop.data["whatsapp_phone_number_id"] == "106540352242999"
    taken = parser.parse_args(["whatsapp-number", "106540352242999", "--shop", SHOP])
    assert cli.run(taken) == 2
    assert "belongs to another shop" in capsys.readouterr().err


def test_telegram_logs_hold_no_customer_data(
    client: Client, app: App, queue: RecordingQueue, logs: io.StringIO
) -> None:
    post_telegram(client, load_event("telegram_message"))
    post_telegram(client, load_event("telegram_callback_query"))
    queue.run(app)
    assert_clean(logs.getvalue(), "sandales en cuir ?", "Aminata", CHAT, CID)


def test_no_url_with_the_bot_token_is_logged_even_at_debug(
    client: Client,
    app: App,
    queue: RecordingQueue,
    telegram_server: TelegramServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, as a platform may configure it
    post_telegram(client, load_event("telegram_message"))
    queue.run(app)
    assert len(telegram_server.called("sendMessage")) == 1
    assert BOT_TOKEN not in caplog.text
