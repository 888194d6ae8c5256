"""Messenger and Instagram end to end at a loopback Send API: a signed post through the webhook
function, the worker's turn, one reply (its text, then the products as a generic template) to
the right recipient; forged posts refused, replays answered once, the handshake, receipts and
echoes, page routes, and the 24-hour window."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from functions import webhook_messenger
from shared import conversations
from shared.app import App
from shared.channels import open_channel
from shared.channels.base import IMAGE_TYPES, ChannelName, Retry
from shared.channels.cli import messenger_page
from shared.channels.messenger.sender import OUTSIDE_WINDOW, MessengerChannel
from shared.channels.receive import conversation_id
from shared.exceptions import ChannelError, InvalidInputError
from shared.http import Request, Response
from shared.models import Conversation, Media, Message
from tests.channels.conftest import RecordingQueue
from tests.eventlib import load_event
from tests.fixtures.messenger_server import PAGE_TOKEN, MessengerServer

APP_SECRET = "messenger-app-secret-3b7e"
VERIFY_TOKEN = "messenger-verify-9c1d"
PAGE_ID = "104871235678901"  # the Page and Instagram account in tests/events/messenger_*.json
IG_ID = "17841400000000001"
PSID = "6123456789012345"
IGSID = "7234567890123456"
PRICE = "15\u202f000 FCFA"  # the catalogue's price of "Sandales en cuir", as written in French


@pytest.fixture
def app(
    make_app: Callable[..., App], messenger_server: MessengerServer, queue: RecordingQueue
) -> App:
    instance = make_app(
        MESSENGER_APP_SECRET=APP_SECRET,
        MESSENGER_VERIFY_TOKEN=VERIFY_TOKEN,
        MESSENGER_PAGE_ACCESS_TOKEN=PAGE_TOKEN,
        MESSENGER_PAGE_ID=PAGE_ID,
        INSTAGRAM_ACCOUNT_ID=IG_ID,
        MESSENGER_API_BASE=messenger_server.base_url,
    )
    instance.queue = queue
    return instance


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(payload: dict[str, Any], signature: str | None = None) -> Response:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature or sign(body)}
    return webhook_messenger.handler(
        Request("POST", "/webhooks/messenger", headers=headers, body=body)
    )


def the_reply(app: App, channel: ChannelName, user: str) -> Message:
    """The assistant's reply as stored (its delivery is on the message document)."""
    conversation = the_conversation(app, channel, user)
    reply = next(m for m in conversation.recent if m.role == "assistant")
    stored = conversations.message(app.store, app.settings.default_shop, conversation.id, reply.id)
    assert stored is not None
    return stored


def the_conversation(app: App, channel: ChannelName, user: str) -> Conversation:
    shop = app.settings.default_shop
    found = conversations.get(app.store, shop, conversation_id(APP_SECRET, shop, channel, user))
    assert found is not None
    return found


def test_a_messenger_question_gets_one_reply_with_product_cards(
    app: App, queue: RecordingQueue, messenger_server: MessengerServer
) -> None:
    assert post(load_event("messenger_text")).status == 200
    assert queue.kinds() == ["channel_turn"]
    queue.run(app)
    assert queue.failures == []
    text, cards = messenger_server.sent
    assert text["recipient"] == {"id": PSID} and cards["recipient"] == {"id": PSID}
    assert text["messaging_type"] == "RESPONSE"
    assert "Sandales en cuir" in text["message"]["text"] and PRICE in text["message"]["text"]
    payload = cards["message"]["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    card = next(e for e in payload["elements"] if e["title"] == "Sandales en cuir")
    assert card["subtitle"] == PRICE
    assert card["image_url"] == "https://cdn.example/sandales.jpg"
    assert card["buttons"] == [
        {
            "type": "web_url",
            "url": "https://maison-teranga.example/products/sandales-cuir",
            "title": "Voir",
        }
    ]
    assert messenger_server.actions == ["mark_seen", "typing_on"]
    assert the_conversation(app, "messenger", PSID).channel == "messenger"
    reply = the_reply(app, "messenger", PSID)
    assert reply.delivery == "accepted" and reply.external_ids == [text["_id"]]


def test_an_instagram_message_is_answered_on_instagram(
    app: App, queue: RecordingQueue, messenger_server: MessengerServer
) -> None:
    assert post(load_event("instagram_text")).status == 200
    queue.run(app)
    assert messenger_server.sent[0]["recipient"] == {"id": IGSID}
    assert len(messenger_server.sent[0]["message"]["text"]) <= 1000
    assert the_conversation(app, "instagram", IGSID).channel == "instagram"
    # Instagram's read receipt names the reply it read.
    read = load_event("instagram_read")
    read["entry"][0]["messaging"][0]["read"]["mid"] = messenger_server.sent[0]["_id"]
    assert post(read).status == 200
    assert the_reply(app, "instagram", IGSID).delivery == "read"


@pytest.mark.parametrize(
    "forged",
    [sign(b"{}"), sign(json.dumps(load_event("messenger_text")).encode(), "another-secret"), "x"],
)
def test_a_forged_post_is_refused_and_nothing_stored(
    app: App, queue: RecordingQueue, forged: str
) -> None:
    response = post(load_event("messenger_text"), signature=forged)
    assert response.status == 403
    assert queue.items == []
    body = json.dumps(load_event("messenger_text")).encode()
    unsigned = webhook_messenger.handler(Request("POST", "/webhooks/messenger", body=body))
    assert unsigned.status == 401


def test_a_replayed_delivery_is_acknowledged_and_answered_once(
    app: App, queue: RecordingQueue, messenger_server: MessengerServer
) -> None:
    event = load_event("messenger_text")
    assert post(event).status == 200
    queue.run(app)
    sent = len(messenger_server.sent)
    for _ in range(2):
        assert post(event).status == 200
    queue.run(app)
    assert len(messenger_server.sent) == sent
    conversation = the_conversation(app, "messenger", PSID)
    assert [m.role for m in conversation.recent] == ["user", "assistant"]


def test_the_handshake_echoes_the_challenge_to_the_right_token(app: App) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "4242"}
    response = webhook_messenger.handler(Request("GET", "/webhooks/messenger", query=query))
    assert (response.status, response.body) == (200, b"4242")
    wrong = {**query, "hub.verify_token": "nope"}
    refused = webhook_messenger.handler(Request("GET", "/webhooks/messenger", query=wrong))
    assert refused.status == 403


def test_postbacks_quick_replies_and_attachments_are_stored_typed(
    app: App, queue: RecordingQueue
) -> None:
    for name in ("messenger_postback", "messenger_quick_reply", "messenger_image"):
        assert post(load_event(name)).status == 200
    recent = the_conversation(app, "messenger", PSID).recent
    assert [m.text for m in recent] == ["Commencer", "Sandales en cuir", "[image]"]
    media = recent[2].media
    assert media is not None and media.kind == "image" and media.ref.startswith("https://")
    assert [[item.dedup_id] for item in queue.items] == [m.external_ids for m in recent]


def test_echoes_and_receipts_are_not_answered(
    app: App, queue: RecordingQueue, messenger_server: MessengerServer
) -> None:
    assert post(load_event("messenger_text")).status == 200
    queue.run(app)
    delivery = load_event("messenger_delivery")
    delivery["entry"][0]["messaging"][0]["delivery"]["mids"] = [messenger_server.sent[0]["_id"]]
    for event in (load_event("messenger_echo"), delivery, load_event("messenger_read")):
        assert post(event).status == 200
    assert queue.items == []
    assert the_reply(app, "messenger", PSID).delivery == "delivered"


def test_a_page_answers_for_the_shop_it_is_routed_to(app: App, queue: RecordingQueue) -> None:
    event = load_event("messenger_text")
    event["entry"][0]["id"] = "999000111"
    assert post(event).status == 200
    assert queue.items == []  # nobody's page: acknowledged, not stored
    shop = app.settings.default_shop
    messenger_page(app, shop, "messenger", "999000111")
    assert post(event).status == 200
    assert [item.shop for item in queue.items] == [shop]
    with pytest.raises(InvalidInputError):
        messenger_page(app, shop, "messenger", "not-digits")
    # A page belongs to one shop: another shop cannot take it over.
    app.store.put(shop, "channel_routes", "messenger:555", {"shop": "other-shop"})
    with pytest.raises(InvalidInputError, match="another shop"):
        messenger_page(app, shop, "messenger", "555")
    route = app.store.get(shop, "channel_routes", "messenger:555")
    assert route is not None and route.data == {"shop": "other-shop"}


def test_the_bot_does_not_write_after_24_hours_and_records_why(
    app: App, queue: RecordingQueue, messenger_server: MessengerServer
) -> None:
    event = load_event("messenger_text")
    event["entry"][0]["messaging"][0]["timestamp"] = int((time.time() - 25 * 3600) * 1000)
    assert post(event).status == 200
    queue.run(app)
    assert queue.failures == []  # refused for good: not retried
    assert messenger_server.sent == []
    reply = the_reply(app, "messenger", PSID)
    assert (reply.delivery, reply.error_code) == ("failed", OUTSIDE_WINDOW)


def test_a_person_may_answer_for_7_days_with_the_human_agent_tag(
    app: App, messenger_server: MessengerServer
) -> None:
    channel = open_channel(app, app.shops.get(app.settings.default_shop), "messenger")
    now = time.time()
    assert channel.within_window(now - 3600, now, human=False) is channel
    channel.within_window(now - 3 * 86400, now, human=True).send(PSID, "Bonjour !")
    (sent,) = messenger_server.sent
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    for human, age in ((False, 25 * 3600), (True, 8 * 86400)):
        with pytest.raises(ChannelError) as refused:
            channel.within_window(now - age, now, human=human)
        assert refused.value.code == OUTSIDE_WINDOW and not refused.value.retryable
    with pytest.raises(ChannelError):
        channel.within_window(None, now, human=True)


def test_an_attachment_is_downloaded_with_its_type(
    app: App, messenger_server: MessengerServer
) -> None:
    url = messenger_server.file_url("photo_n.jpg", b"\xff\xd8\xff-jpeg", "image/jpeg")
    channel = MessengerChannel(
        base_url=messenger_server.base_url,
        token=PAGE_TOKEN,
        retry=Retry(sleep=lambda _: None),
        max_media_bytes=1000,
    )
    fetched = channel.fetch(Media(kind="image", ref=url), IMAGE_TYPES)
    assert (fetched.data, fetched.mime_type) == (b"\xff\xd8\xff-jpeg", "image/jpeg")
    with pytest.raises(ChannelError):
        channel.fetch(Media(kind="image", ref="file:///etc/passwd"), IMAGE_TYPES)
