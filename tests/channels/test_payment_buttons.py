"""The payment link on the channels: WhatsApp's CTA URL button (an interactive ``cta_url``
message), Telegram's inline URL button."""

from __future__ import annotations

from shared.app import App
from shared.channels import open_channel
from shared.channels.base import Link
from tests.channels.conftest import RecordingQueue
from tests.channels.test_order_whatsapp import chat
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer


def test_a_confirmed_order_on_whatsapp_gets_a_cta_url_button(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    *_, done = chat(
        app,
        queue,
        graph_server,
        "Bonjour, je voudrais commander le boubou brodé",
        "Aminata Diop",
        "Mermoz, rue 10, Dakar",
        "oui",
    )
    assert "bouton « Payer »" in done
    interactive = graph_server.sent[-1]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["name"] == "cta_url"
    parameters = interactive["action"]["parameters"]
    assert parameters["display_text"] == "Payer"
    assert parameters["url"].startswith(app.settings.public_base_url.rstrip("/") + "/pay/chk_")


def test_telegram_shows_the_link_as_an_inline_url_button(
    app: App, telegram_server: TelegramServer
) -> None:
    channel = open_channel(app, app.shops.get(None), "telegram")
    channel.send("42", "Vous pouvez payer", link=Link("https://pay.example/chk_1", "Payer"))
    (sent,) = telegram_server.called("sendMessage")
    assert sent["reply_markup"]["inline_keyboard"] == [
        [{"text": "Payer", "url": "https://pay.example/chk_1"}]
    ]
