"""Whole conversations through the chat API, as a shopper has them: the offline responder (no
key), then the same through the real OpenAI SDK against a loopback model server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared import conversations
from shared.app import App
from shared.crm import list_leads
from tests.fixtures.app import Client, post_json
from tests.llm.script import Reply, SeenRequest


def say(client: Client, text: str, session_id: str | None = None) -> dict[str, Any]:
    result = post_json(client, "/chat", {"message": text, "session_id": session_id})
    assert result.status == 200, result.body
    body: dict[str, Any] = result.json()
    return body


def sse(
    client: Client, text: str, session_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    result = client.request(
        "POST",
        "/chat",
        headers={"content-type": "application/json", "accept": "text/event-stream"},
        body=json.dumps({"message": text, "session_id": session_id}).encode(),
    )
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in result.body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_product_questions_get_catalogue_prices_in_both_languages(client: Client, app: App) -> None:
    fr = say(client, "Combien coûtent les sandales en cuir ?")
    assert "Sandales en cuir" in fr["reply"]
    assert "à partir de 15\u202f000 FCFA" in fr["reply"]
    assert fr["products"][0]["id"] == "sandales-cuir"
    en = say(client, "How much is the embroidered boubou, the boubou brode?")
    assert "Boubou brodé" in en["reply"]
    assert "45,000 FCFA" in en["reply"]


def test_typos_still_find_the_product(client: Client, app: App) -> None:
    body = say(client, "vous avez des sandale en cuire ?")
    assert "Sandales en cuir" in body["reply"]


def test_faq_question(client: Client, app: App) -> None:
    body = say(client, "Quels sont les délais de livraison ?")
    assert "24 h" in body["reply"]


def test_a_hesitating_customer_gets_the_shops_offer(client: Client, app: App) -> None:
    body = say(client, "Hmm c'est un peu cher pour moi, j'hésite")
    assert "livraison offerte" in body["reply"]


def test_buying_across_two_messages_captures_a_lead(client: Client, app: App) -> None:
    first = say(client, "Bonjour, je voudrais commander le boubou brodé")
    sid = first["session_id"]
    assert "votre nom" in first["reply"]
    assert "votre numéro de téléphone" in first["reply"]
    assert "votre adresse de livraison" in first["reply"]
    assert first["lead"] is None
    second = say(client, "Je m'appelle Aminata Diop, mon numéro est le 77 123 45 67", sid)
    assert "votre adresse de livraison" in second["reply"]
    assert "votre nom" not in second["reply"]
    third = say(client, "Livrez à Sacré-Coeur 3, villa 12, Dakar", sid)
    assert "récapitulatif de votre commande" in third["reply"]
    assert "45\u202f000 FCFA" in third["reply"]
    assert third["lead"]["status"] == "draft"  # read back, not confirmed yet
    fourth = say(client, "Oui c'est bon", sid)
    assert "Votre commande est confirmée" in fourth["reply"]
    lead = fourth["lead"]
    assert lead["id"] == third["lead"]["id"]  # the draft became the order, in place
    assert lead["phone"] == "+221771234567"
    assert lead["product_id"] == "boubou-brode"
    assert lead["status"] == "confirmed"
    assert lead["total"] == 45000
    stored = list_leads(app.store, "teranga")
    assert [(le.name, le.phone, le.address, le.quantity) for le in stored] == [
        ("Aminata Diop", "+221771234567", "Sacré-Coeur 3, villa 12, Dakar", 1)
    ]


def test_a_turn_ends_with_typed_models_and_the_id_of_its_stored_reply(app: App) -> None:
    from decimal import Decimal

    from shared.models import Lead, Product

    chat, shop = app.chat, app.shops.get(None)
    first = chat.turn(shop, None, "Combien coûtent les sandales en cuir ?")
    assert first.products[0].id == "sandales-cuir"
    assert all(isinstance(p, Product) and isinstance(p.price, Decimal) for p in first.products)
    stored = conversations.message(app.store, shop.id, first.session_id, first.reply_id or "-")
    assert stored is not None and (stored.role, stored.text) == ("assistant", first.reply)
    assert first.conversation.recent[-1] == stored
    sid = chat.turn(shop, None, "Je voudrais commander le boubou brodé").session_id
    chat.turn(shop, sid, "Je m'appelle Aminata Diop, mon numéro est le 77 123 45 67")
    chat.turn(shop, sid, "Livrez à Sacré-Coeur 3, villa 12, Dakar")
    third = chat.turn(shop, sid, "oui")
    assert isinstance(third.lead, Lead) and third.lead.status == "confirmed"
    assert (third.lead.product_id, third.lead.total) == ("boubou-brode", Decimal(45000))


def test_english_purchase_with_international_number_and_quantity(client: Client, app: App) -> None:
    first = say(client, "Hello, I'd like to buy 2 raffia bags")
    assert "your name" in first["reply"]
    done = say(
        client,
        "My name is John Smith, phone +221 76 555 44 33, deliver to 12 rue Carnot, Dakar",
        first["session_id"],
    )
    assert "summary of your order" in done["reply"]
    done = say(client, "yes that is correct", first["session_id"])
    assert "Your order is confirmed" in done["reply"]
    assert done["lead"]["status"] == "confirmed"
    assert done["lead"]["quantity"] == 2
    assert done["lead"]["total"] == 45000
    assert done["lead"]["phone"] == "+221765554433"


def test_asking_for_a_person_hands_the_conversation_over(client: Client, app: App) -> None:
    first = say(client, "Je voudrais parler à un conseiller")
    assert "conseiller" in first["reply"]
    second = say(client, "Vous êtes là ?", first["session_id"])
    assert second["reply"] == ""  # the bot stays silent while a person has the conversation
    history = client.request(
        "GET", "/chat/history", query={"session_id": first["session_id"]}
    ).json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user"]


def test_streaming_sends_deltas_then_the_same_json(client: Client, app: App) -> None:
    events = sse(client, "Avez-vous des sacs en raphia ?")
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done"
    assert "delta" in kinds
    done = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "delta") == done["reply"]
    assert set(done) == {
        "session_id",
        "state",
        "reply",
        "products",
        "lead",
        "lang",
        "payment",
        "voice",
    }
    assert done["voice"] is False  # the shop offers no voice call: no microphone
    assert done["products"][0]["id"] == "sac-raphia"


# --- the same through the real OpenAI SDK, against the loopback Chat Completions server ------


@pytest.fixture
def openai_app(make_app: Callable[..., App], openai_server: Any) -> App:
    return make_app(
        LLM_PROVIDER="openai", LLM_BASE_URL=openai_server.base_url, OPENAI_API_KEY="sk-test"
    )


def _tool_results(seen: SeenRequest) -> list[dict[str, Any]]:
    return [json.loads(m["text"]) for m in seen.messages if m["role"] == "tool"]


def salesperson(seen: SeenRequest) -> Reply:
    """A model that sells like the offline responder, but through the OpenAI wire protocol."""
    user = [m["text"] for m in seen.messages if m["role"] == "user"]
    results = _tool_results(seen)
    last = seen.messages[-1]
    if last["role"] == "tool":
        result = results[-1]
        if "confirmation" in result:
            return Reply(f"Merci ! Commande enregistrée, total {result['total']} FCFA.")
        product = result["products"][0]
        if "Aminata" in user[-1]:
            return Reply(
                tool_calls=[
                    (
                        "capture_lead",
                        {
                            "name": "Aminata Diop",
                            "phone": "77 123 45 67",
                            "address": "Sacré-Coeur 3, Dakar",
                            "product_id": product["id"],
                            "quantity": 1,
                        },
                    )
                ]
            )
        return Reply(f"Le {product['title']} coûte {product['price']} FCFA.")
    return Reply(tool_calls=[("search_products", {"query": "boubou"})])


def test_the_same_sale_through_the_openai_protocol(
    client: Client, openai_app: App, openai_server: Any
) -> None:
    openai_server.script.reset()
    openai_server.script.responder = salesperson
    first = say(client, "Combien coûte le boubou brodé ?")
    assert first["reply"] == "Le Boubou brodé coûte 45000 FCFA."
    assert first["products"][0]["id"] == "boubou-brode"
    done = say(
        client,
        "Je le prends. Aminata Diop, 77 123 45 67, Sacré-Coeur 3, Dakar",
        first["session_id"],
    )
    assert done["lead"]["phone"] == "+221771234567"
    assert "45000 FCFA" in done["reply"]
    offered = openai_server.script.seen[0].tools
    assert {"search_products", "get_product", "capture_lead", "request_human", "remember"} <= set(
        offered
    )


def hallucinator(seen: SeenRequest) -> Reply:
    if seen.tools and not _tool_results(seen):
        return Reply(tool_calls=[("search_products", {"query": "boubou"})])
    return Reply("Promo spéciale : le Boubou brodé est à 9 900 FCFA aujourd'hui !")


def test_an_invented_price_never_reaches_the_customer(
    client: Client, openai_app: App, openai_server: Any
) -> None:
    openai_server.script.reset()
    openai_server.script.responder = hallucinator
    body = say(client, "Combien coûte le boubou brodé ?")
    assert "9 900" not in body["reply"] and "9\u202f900" not in body["reply"]
    assert "45\u202f000 FCFA" in body["reply"]
    events = sse(client, "Et le boubou ?", body["session_id"])
    kinds = [k for k, _ in events]
    assert "replace" in kinds
    replaced = [d["text"] for k, d in events if k == "replace"][-1]
    assert "9 900" not in replaced
    assert events[-1][1]["reply"] == replaced
    history = client.request(
        "GET", "/chat/history", query={"session_id": body["session_id"]}
    ).json()
    assert not any("9 900" in m["text"] for m in history["messages"])


def test_a_concurrent_turn_does_not_undo_a_handoff(client: Client, app: App) -> None:
    """Turn A loads the conversation; turn B hands it to a person; A saves: still handed off."""
    from shared.models import Conversation

    sid = say(client, "Bonjour")["session_id"]
    shop = app.shops.get(None)
    doc = app.store.get(shop.id, "conversations", sid)
    assert doc is not None
    loaded = Conversation.from_doc(doc)
    say(client, "Je voudrais parler à un conseiller", sid)  # turn B, complete
    conversations.save_turn(app.store, shop.id, loaded, loaded, doc.version, [], loaded.updated_at)
    after = app.store.get(shop.id, "conversations", sid)
    assert after is not None
    assert after.data["state"] == "human"
    assert len(after.data["recent"]) == 4
