"""An order on WhatsApp with the offline responder, through the signed webhook, the queue and the
worker: the phone the customer writes from is known, so it is never asked for; another number
they offer is read back for them to confirm."""

from __future__ import annotations

from shared.app import App
from shared.crm import list_leads
from tests.channels.conftest import RecordingQueue, arrive, whatsapp_text
from tests.eventlib import delivered_at
from tests.fixtures.graph_server import GraphServer

SHOP = "teranga"


def chat(app: App, queue: RecordingQueue, graph_server: GraphServer, *texts: str) -> list[str]:
    """Each text sent in turn, answered before the next; the replies sent to the customer."""
    replies: list[str] = []
    for index, text in enumerate(texts):
        at = delivered_at(1760000000 + 60 * index)
        assert arrive(whatsapp_text(text, f"wamid.O{index}", at)) == 200
        queue.run(app)
        assert queue.failures == []
        sent = graph_server.sent[len(replies) :]
        replies.append(
            "\n".join(
                m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"]
                for m in sent
            )
        )
    return replies


def test_whatsapp_never_asks_for_the_phone(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    first, second, summary, done = chat(
        app,
        queue,
        graph_server,
        "Bonjour, je voudrais commander le boubou brodé",
        "Aminata Diop",
        "Mermoz, rue 10, Dakar",
        "oui",
    )
    for reply in (first, second, summary, done):
        assert "numéro de téléphone" not in reply
    assert "votre nom" in first and "votre adresse de livraison" in first
    assert "Téléphone : +221771234567 (ce numéro WhatsApp)" in summary
    assert "Votre commande est confirmée" in done
    [lead] = list_leads(app.store, SHOP)
    assert (lead.status, lead.channel, lead.phone, lead.name, lead.address) == (
        "awaiting_payment",
        "whatsapp",
        "+221771234567",
        "Aminata Diop",
        "Mermoz, rue 10, Dakar",
    )


def test_another_number_offered_on_whatsapp_is_read_back_to_confirm(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    *_, summary = chat(
        app,
        queue,
        graph_server,
        "Je voudrais commander le boubou brodé",
        "Aminata Diop, appelez plutôt le 76 555 44 33, Mermoz, rue 10, Dakar",
    )
    assert "+221765554433 (et non celui de ce WhatsApp : est-ce bien le bon ?)" in summary
    [lead] = list_leads(app.store, SHOP)
    assert (lead.status, lead.phone) == ("draft", "+221765554433")
