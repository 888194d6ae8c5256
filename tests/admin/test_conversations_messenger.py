"""The console with Messenger and Instagram conversations: the inbox filters by those channels,
and an operator's reply goes out through the Send API, tagged HUMAN_AGENT after 24 hours,
refused (and recorded "failed") after 7 days."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from shared import conversations
from shared.app import App
from shared.channels.base import ChannelName
from shared.channels.messenger.sender import OUTSIDE_WINDOW
from shared.models import Conversation, Message
from tests.admin.conftest import ADMIN_SECRET, signed_in
from tests.fixtures.app import LambdaClient, Result
from tests.fixtures.messenger_server import PAGE_TOKEN, MessengerServer

SHOP = "teranga"
API = "/admin/api"
PSID = "6123456789012345"


@pytest.fixture
def app(make_app: Callable[..., App], messenger_server: MessengerServer) -> App:
    return make_app(
        ADMIN_SESSION_SECRET=ADMIN_SECRET,
        MESSENGER_PAGE_ACCESS_TOKEN=PAGE_TOKEN,
        MESSENGER_API_BASE=messenger_server.base_url,
    )


def conversation(app: App, channel: ChannelName, wrote_hours_ago: float) -> Conversation:
    now = time.time()
    wrote = now - wrote_hours_ago * 3600
    said = Message(id=f"m-{channel}", role="user", text="Bonjour", at=wrote, external_ids=["m_1"])
    created = Conversation(
        id=f"{channel}-{wrote_hours_ago}",
        channel=channel,
        created_at=wrote,
        updated_at=wrote,
        channel_user=PSID,
        last_inbound_at=wrote,
        recent=[said],
    )
    conversations.create(app.store, SHOP, created)
    return created


def call(app: App, method: str, path: str, **kwargs: object) -> Result:
    headers = signed_in(app, SHOP)
    if method == "POST":
        headers["content-type"] = "application/json"
    return LambdaClient().request(method, API + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_the_inbox_filters_messenger_and_instagram(app: App) -> None:
    messenger = conversation(app, "messenger", 1)
    instagram = conversation(app, "instagram", 2)
    for channel, expected in (("messenger", messenger.id), ("instagram", instagram.id)):
        result = call(app, "GET", "/conversations", query={"channel": channel})
        assert result.status == 200, result.body
        assert [c["id"] for c in result.json()["conversations"]] == [expected]
    assert call(app, "GET", "/conversations", query={"channel": "fax"}).status == 400


def test_an_operator_reply_after_24_hours_is_tagged_and_after_7_days_refused(
    app: App, messenger_server: MessengerServer
) -> None:
    tagged = conversation(app, "messenger", 50)
    result = call(app, "POST", f"/conversations/{tagged.id}/reply", body=b'{"text": "Oui !"}')
    assert result.status == 200, result.body
    (sent,) = messenger_server.sent
    assert sent["recipient"] == {"id": PSID} and sent["tag"] == "HUMAN_AGENT"

    late = conversation(app, "messenger", 8 * 24)
    result = call(app, "POST", f"/conversations/{late.id}/reply", body=b'{"text": "Oui !"}')
    assert result.status >= 400
    assert len(messenger_server.sent) == 1  # nothing more went
    replies = conversations.latest_messages(app.store, SHOP, late.id, 10)
    reply = next(m for m in replies if m.role == "assistant")
    assert (reply.delivery, reply.error_code) == ("failed", OUTSIDE_WINDOW)
