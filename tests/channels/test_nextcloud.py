"""The Nextcloud Talk bot end to end against a loopback Nextcloud: a signed post through both
cloud adapters, the worker's turn, and exactly one reply whose signature the loopback server
verifies; forged, unsigned, replayed and foreign-server posts refused before anything is
stored; conversations routed to a shop; the sender's retries and its allowed servers."""

from __future__ import annotations

import argparse
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from shared import conversations
from shared.app import App
from shared.channels import cli, sender_for
from shared.channels.nextcloud.inbound import to_inbound
from shared.channels.nextcloud.models import Activity, room_address
from shared.channels.nextcloud.sender import NextcloudChannel, signature
from shared.channels.receive import conversation_id
from shared.exceptions import ChannelError
from shared.models import Conversation
from tests.channels.conftest import RecordingQueue, assert_clean, channel_settings
from tests.eventlib import load_event
from tests.fixtures.app import SHOP, Client
from tests.fixtures.graph_server import Fail, GraphServer
from tests.fixtures.nextcloud_server import BOT_SECRET, NextcloudServer
from tests.fixtures.telegram_server import TelegramServer

SHOP_ID = str(SHOP["id"])
TOKEN = "n3xtc10ud"  # the conversation of tests/events/nextcloud_*.json


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    nextcloud_server: NextcloudServer,
    sleeps: list[float],
    queue: RecordingQueue,
) -> App:
    """The channels' app, with the Talk bot answering the loopback Nextcloud."""
    instance = make_app(
        **channel_settings(graph_server, telegram_server),
        NEXTCLOUD_BOT_SECRET=BOT_SECRET,
        NEXTCLOUD_ALLOWED_BACKENDS=f"https://cloud.other.example, {nextcloud_server.base_url}/",
    )
    instance.queue = queue
    return instance


def post(
    client: Client,
    payload: dict[str, Any],
    backend: str,
    *,
    random: str | None = None,
    secret: str = BOT_SECRET,
    signed: bool = True,
) -> Any:
    """``payload`` posted as Talk posts it: signed over a fresh random (or ``random``) and the
    body, with its server's base URL (with the slash Nextcloud adds)."""
    body = json.dumps(payload).encode()
    random = random or secrets.token_hex(32)
    headers = {"content-type": "application/json", "x-nextcloud-talk-backend": backend + "/"}
    if signed:
        headers["x-nextcloud-talk-random"] = random
        headers["x-nextcloud-talk-signature"] = signature(secret, random, body)
    return client.request("POST", "/webhooks/nextcloud", headers=headers, body=body)


def stored(app: App, shop: str, room: str) -> Conversation:
    conversation = conversations.get(
        app.store, shop, conversation_id(BOT_SECRET, shop, "nextcloud", room)
    )
    assert conversation is not None
    return conversation


def test_a_signed_message_is_answered_once_with_a_signed_reply(
    client: Client,
    app: App,
    queue: RecordingQueue,
    nextcloud_server: NextcloudServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = nextcloud_server.base_url
    result = post(client, load_event("nextcloud_message"), backend)
    assert result.status == 200
    room = room_address(backend, TOKEN)
    conversation = stored(app, SHOP_ID, room)
    assert (conversation.channel, conversation.channel_user) == ("nextcloud", room)
    assert conversation.recent[-1].text == "Bonjour, avez-vous des sandales en cuir ?"
    (item,) = queue.items
    assert (item.kind, item.dedup_id) == ("channel_turn", f"{room}/1567")
    queue.run(app)
    assert queue.failures == []
    assert nextcloud_server.refused() == 0  # every signature the server checked was right
    (sent,) = nextcloud_server.messages(TOKEN)
    assert "Sandales en cuir" in sent["message"]
    assert re.fullmatch(r"[0-9a-f]{64}", sent["referenceId"])
    conversation = stored(app, SHOP_ID, room)
    reply = conversations.message(app.store, SHOP_ID, conversation.id, conversation.recent[-1].id)
    assert reply is not None and reply.role == "assistant"
    assert (reply.delivery, reply.external_ids) == ("accepted", [sent["referenceId"]])
    assert_clean(caplog.text, BOT_SECRET, "sandales en cuir")


@pytest.mark.parametrize(
    ("forgery", "status", "code"),
    [
        ({"secret": "another-secret-of-forty-characters-or-more!"}, 403, "invalid_signature"),
        ({"signed": False}, 401, "missing_signature"),
    ],
)
def test_a_forged_or_unsigned_post_is_refused(
    client: Client,
    app: App,
    queue: RecordingQueue,
    nextcloud_server: NextcloudServer,
    forgery: dict[str, Any],
    status: int,
    code: str,
) -> None:
    result = post(client, load_event("nextcloud_message"), nextcloud_server.base_url, **forgery)
    assert result.status == status
    assert result.json()["error"]["code"] == code
    assert queue.items == []
    assert app.store.query(SHOP_ID, "conversations").items == []


def test_a_body_changed_after_signing_is_refused(
    client: Client, queue: RecordingQueue, nextcloud_server: NextcloudServer
) -> None:
    body = json.dumps(load_event("nextcloud_message")).encode()
    random = secrets.token_hex(32)
    headers = {
        "x-nextcloud-talk-backend": nextcloud_server.base_url,
        "x-nextcloud-talk-random": random,
        "x-nextcloud-talk-signature": signature(BOT_SECRET, random, body),
    }
    tampered = body.replace(b"sandales", b"bijoux")
    result = client.request("POST", "/webhooks/nextcloud", headers=headers, body=tampered)
    assert result.status == 403
    assert queue.items == []


def test_a_server_not_allowed_is_refused_even_signed(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    result = post(client, load_event("nextcloud_message"), "https://cloud.attacker.example")
    assert result.status == 403
    assert result.json()["error"]["code"] == "unknown_backend"
    assert queue.items == []
    assert app.store.query(SHOP_ID, "conversations").items == []


def test_a_replayed_post_is_refused_and_a_message_handled_once(
    client: Client, app: App, queue: RecordingQueue, nextcloud_server: NextcloudServer
) -> None:
    backend, random = nextcloud_server.base_url, secrets.token_hex(32)
    assert post(client, load_event("nextcloud_message"), backend, random=random).status == 200
    replay = post(client, load_event("nextcloud_message"), backend, random=random)
    assert replay.status == 409
    assert replay.json()["error"]["code"] == "replayed"
    # The same message signed again over a new random: acknowledged, not stored or queued again.
    assert post(client, load_event("nextcloud_message"), backend).status == 200
    assert len(queue.items) == 1
    queue.run(app)
    assert len(nextcloud_server.messages(TOKEN)) == 1
    assert [m.role for m in stored(app, SHOP_ID, room_address(backend, TOKEN)).recent] == [
        "user",
        "assistant",
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("nextcloud_message", "Bonjour, avez-vous des sandales en cuir ?"),
        ("nextcloud_mention", "@Teranga avez-vous des sacs en raphia ?"),
        ("nextcloud_file", "[document: modele.jpg]"),
        ("nextcloud_bot_message", None),  # another bot's message gets no answer
        ("nextcloud_join", None),  # the bot added to a conversation
    ],
)
def test_every_recorded_post_parses(name: str, text: str | None) -> None:
    activity = Activity.model_validate(load_event(name))
    inbound = to_inbound(activity, "https://cloud.example.com")
    if text is None:
        assert inbound is None
        return
    assert inbound is not None
    assert (inbound.channel, inbound.text, inbound.name) == ("nextcloud", text, "Awa Diop")
    assert inbound.user == "https://cloud.example.com#n3xtc10ud"
    assert inbound.key == f"{inbound.user}/{activity.object.id}"


def test_what_gets_no_answer_is_acknowledged(
    client: Client, queue: RecordingQueue, nextcloud_server: NextcloudServer
) -> None:
    for name in ("nextcloud_join", "nextcloud_bot_message"):
        assert post(client, load_event(name), nextcloud_server.base_url).status == 200
    assert queue.items == []


def test_a_conversation_given_to_another_shop_is_answered_there(
    client: Client, app: App, queue: RecordingQueue, nextcloud_server: NextcloudServer
) -> None:
    app.store.put("maison-b", "shops", "maison-b", {**SHOP, "id": "maison-b", "name": "B"})
    backend = nextcloud_server.base_url
    args = argparse.Namespace(
        command="nextcloud-conversation", backend=backend + "/", token=TOKEN, shop="maison-b"
    )
    assert cli.run(args) == 0
    assert post(client, load_event("nextcloud_message"), backend).status == 200
    (item,) = queue.items
    assert item.shop == "maison-b"
    assert stored(app, "maison-b", room_address(backend, TOKEN)).channel == "nextcloud"
    assert app.store.query(SHOP_ID, "conversations").items == []
    # A conversation belongs to one shop: giving it to another is refused.
    assert cli.run(argparse.Namespace(**{**vars(args), "shop": SHOP_ID})) == 2


def test_the_sender_retries_a_failure_and_never_sends_to_a_server_not_allowed(
    app: App, nextcloud_server: NextcloudServer, sleeps: list[float]
) -> None:
    channel = sender_for(app.settings, app.shops.get(SHOP_ID), "nextcloud")
    assert isinstance(channel, NextcloudChannel)
    nextcloud_server.fail(Fail(503))
    sent = channel.send(room_address(nextcloud_server.base_url, TOKEN), "**Merci** !")
    (message,) = nextcloud_server.messages(TOKEN)
    assert message["message"] == "**Merci** !"  # Talk shows Markdown: kept as written
    assert (message["referenceId"], len(sleeps)) == (sent.id, 1)
    with pytest.raises(ChannelError) as refused:
        channel.send(room_address("https://cloud.attacker.example", TOKEN), "Bonjour")
    assert not refused.value.retryable
    assert len(nextcloud_server.calls) == 2  # the failed attempt and the accepted one


def test_the_console_filters_on_the_channel(
    client: Client, app: App, nextcloud_server: NextcloudServer
) -> None:
    from shared.admin.conversations import Filters

    assert post(client, load_event("nextcloud_message"), nextcloud_server.base_url).status == 200
    assert Filters.of({"channel": "nextcloud"}).channel == "nextcloud"
    (listed,) = app.store.query(SHOP_ID, "conversations").items
    assert listed.data["channel"] == "nextcloud"
