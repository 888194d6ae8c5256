"""Payments on the channels: WhatsApp's CTA URL button (an interactive ``cta_url`` message),
Telegram's inline URL button, and the operator's alert when a payment does not match its
order."""

from __future__ import annotations

import time
from decimal import Decimal

from shared.app import App
from shared.channels import open_channel
from shared.channels.base import Link
from shared.ipn import receive
from tests.channels.conftest import TG_OPERATOR, RecordingQueue
from tests.channels.test_order_whatsapp import chat
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer
from tests.payments.test_ipn import awaiting, signed_event
from tests.test_tools import MakeCtx, make_ctx

__all__ = ["make_ctx"]  # the tool tests' fixture


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


def test_a_mismatched_payment_alerts_the_operator_once(
    app: App, queue: RecordingQueue, telegram_server: TelegramServer, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order, amount=Decimal("100"))
    for _ in range(2):  # a delivery, then the provider's retry
        assert receive(app, "test", body, headers, time.time()).outcome in ("mismatch", "duplicate")
    assert [item.kind for item in queue.items] == ["payment_notice"]
    queue.run(app)
    queue.run(app)  # the queue delivering the notice again sends nothing more
    assert queue.failures == []
    [alert] = [m for m in telegram_server.called("sendMessage") if m["chat_id"] == TG_OPERATOR]
    assert f"commande {order.id} (payment_mismatch) : reçu 100 XOF, attendu 45000 XOF" in (
        alert["text"]
    )
