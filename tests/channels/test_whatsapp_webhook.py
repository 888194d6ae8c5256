"""The WhatsApp webhook through both cloud adapters: the verification handshake, signatures on
the raw body, every update type, batches, statuses, preferences, customers, and duplicates."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from functions import webhook_whatsapp
from shared import crm, marketing
from shared.app import App
from shared.channels.receive import Inbound, add_route, conversation_id
from shared.channels.whatsapp.inbound import to_inbound
from shared.channels.whatsapp.models import (
    AudioMessage,
    ButtonMessage,
    ContactsMessage,
    DocumentMessage,
    ImageMessage,
    InteractiveMessage,
    LocationMessage,
    OrderMessage,
    ReactionMessage,
    StickerMessage,
    TextMessage,
    UnsupportedMessage,
    VideoMessage,
    WebhookPayload,
)
from shared.http import Request
from shared.ids import is_session_id, new_session_id
from shared.models import Conversation, Customer, Message
from shared.store.idempotency import record_id
from tests.channels.conftest import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WA_ID,
    RecordingQueue,
    assert_clean,
    post_whatsapp,
    signature,
    whatsapp_text,
)
from tests.eventlib import delivered_at, load_event
from tests.fixtures.app import Client, make_settings
from tests.fixtures.graph_server import GraphServer

SHOP = "teranga"
CID = conversation_id(APP_SECRET, SHOP, "whatsapp", WA_ID)
TEXT = "Bonjour, combien coûtent les sandales en cuir ?"


def conversation(app: App, cid: str = CID) -> Conversation:
    doc = app.store.get(SHOP, "conversations", cid)
    assert doc is not None
    return Conversation.from_doc(doc)


# --- verification handshake ------------------------------------------------------------------


def test_the_handshake_echoes_the_challenge_to_the_right_token(client: Client) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    result = client.request("GET", "/webhooks/whatsapp", query=query)
    assert result.status == 200
    assert result.body == b"1158201444"
    assert result.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {},
    ],
)
def test_the_handshake_refuses_anything_else(client: Client, query: dict[str, str]) -> None:
    result = client.request("GET", "/webhooks/whatsapp", query=query)
    assert result.status == 403
    assert result.json()["error"]["code"] == "forbidden"


# --- signatures ------------------------------------------------------------------------------


def test_a_post_without_signature_is_401(client: Client, queue: RecordingQueue) -> None:
    result = post_whatsapp(client, load_event("whatsapp_text"), sign=False)
    assert result.status == 401
    assert result.json()["error"]["code"] == "missing_signature"
    assert queue.items == []


@pytest.mark.parametrize(
    "forged",
    [
        signature(b"{}"),  # a valid signature of another body
        signature(json.dumps(load_event("whatsapp_text")).encode(), "another-secret"),
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=é",
    ],
)
def test_a_forged_signature_is_403(client: Client, queue: RecordingQueue, forged: str) -> None:
    result = post_whatsapp(client, load_event("whatsapp_text"), forged=forged)
    assert result.status == 403
    assert result.json()["error"]["code"] == "invalid_signature"
    assert queue.items == []


def test_the_signature_covers_the_raw_bytes(client: Client, queue: RecordingQueue) -> None:
    # The same JSON re-serialised differently (spacing, escapes) is another body.
    raw = json.dumps(load_event("whatsapp_text"), ensure_ascii=True, indent=1).encode()
    assert post_whatsapp(client, raw).status == 200
    respaced = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    sig = signature(raw)
    assert post_whatsapp(client, respaced, forged=sig).status == 403
    assert len(queue.items) == 1


def test_malformed_json_is_400_after_the_signature(client: Client) -> None:
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        result = post_whatsapp(client, body)
        assert result.status == 400
        assert result.json()["error"]["code"] == "malformed_json"
    assert post_whatsapp(client, b"{not json", sign=False).status == 401


def test_without_an_app_secret_nothing_is_accepted(
    client: Client, app: App, tmp_path: Path
) -> None:
    app.settings = make_settings(tmp_path)
    result = post_whatsapp(client, load_event("whatsapp_text"))
    assert result.status == 503
    assert result.json()["error"]["code"] == "not_configured"


# --- every update type -----------------------------------------------------------------------

MESSAGE_TYPES = {
    "whatsapp_text": TextMessage,
    "whatsapp_interactive_button": InteractiveMessage,
    "whatsapp_interactive_list": InteractiveMessage,
    "whatsapp_button": ButtonMessage,
    "whatsapp_image": ImageMessage,
    "whatsapp_voice": AudioMessage,
    "whatsapp_audio": AudioMessage,
    "whatsapp_video": VideoMessage,
    "whatsapp_document": DocumentMessage,
    "whatsapp_sticker": StickerMessage,
    "whatsapp_location": LocationMessage,
    "whatsapp_reaction": ReactionMessage,
    "whatsapp_contacts": ContactsMessage,
    "whatsapp_order": OrderMessage,
    "whatsapp_unsupported": UnsupportedMessage,
    "whatsapp_system": UnsupportedMessage,
    "whatsapp_interactive_error": UnsupportedMessage,
}
EXPECTED_TEXT = {
    "whatsapp_text": TEXT,
    "whatsapp_interactive_button": "Sandales en cuir",
    "whatsapp_interactive_list": "Sac en raphia",
    "whatsapp_button": "Voir les nouveautés",
    "whatsapp_image": "Vous avez ce modèle ?",
    "whatsapp_voice": "[voice]",
    "whatsapp_audio": "[audio]",
    "whatsapp_video": "[video]",
    "whatsapp_document": "[document: facture.pdf]",
    "whatsapp_sticker": "[sticker]",
    "whatsapp_location": "📍 Marché Sandaga, Avenue Lamine Guèye, Dakar (14.6928, -17.4467)",
    "whatsapp_contacts": "👤 Moussa Ndiaye: +221 76 555 44 33",
    "whatsapp_order": "🛒 2 × sandales-cuir (15000 XOF)\nLivraison à Dakar svp",
}


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_message_type_parses(name: str) -> None:
    payload = WebhookPayload.model_validate(load_event(name))
    value = payload.entry[0].changes[0].value
    assert value is not None and value.metadata is not None
    assert value.metadata.phone_number_id == PHONE_NUMBER_ID
    (message,) = value.messages
    assert type(message) is MESSAGE_TYPES[name]
    inbound = to_inbound(message, "Aminata Diop")
    if name not in EXPECTED_TEXT:  # reactions, system notices, unsupported: no answer
        assert inbound is None
        return
    assert isinstance(inbound, Inbound)
    assert inbound.text == EXPECTED_TEXT[name]
    assert inbound.user == WA_ID
    assert inbound.phone == f"+{WA_ID}"
    assert inbound.key == message.id
    assert inbound.at == delivered_at(1760000000)


def test_media_messages_keep_their_reference() -> None:
    def media(name: str) -> tuple[str, str, str]:
        value = WebhookPayload.model_validate(load_event(name)).entry[0].changes[0].value
        assert value is not None
        inbound = to_inbound(value.messages[0], "")
        assert inbound is not None and inbound.media is not None
        return inbound.media.kind, inbound.media.ref, inbound.media.mime_type

    assert media("whatsapp_voice") == ("voice", "1040185394839572", "audio/ogg; codecs=opus")
    assert media("whatsapp_audio") == ("audio", "1040185394839573", "audio/mpeg")
    assert media("whatsapp_image") == ("image", "1537282630612740", "image/jpeg")


def test_statuses_and_preferences_parse() -> None:
    failed = WebhookPayload.model_validate(load_event("whatsapp_status_failed"))
    value = failed.entry[0].changes[0].value
    assert value is not None
    (status,) = value.statuses
    assert (status.id, status.status, status.errors[0].code) == ("wamid.OUT1", "failed", 131047)
    for name, wanted in (("whatsapp_status_sent", "sent"), ("whatsapp_status_read", "read")):
        value = WebhookPayload.model_validate(load_event(name)).entry[0].changes[0].value
        assert value is not None and value.statuses[0].status == wanted
    stop = WebhookPayload.model_validate(load_event("whatsapp_preferences_stop"))
    change = stop.entry[0].changes[0]
    assert change.field == "user_preferences"
    assert change.value is not None
    preference = change.value.user_preferences[0]
    assert (preference.category, preference.value) == ("marketing_messages", "stop")
    assert preference.detail == "User requested to stop marketing messages"


def test_unknown_shapes_never_crash() -> None:
    payload = WebhookPayload.model_validate(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                                "messages": [
                                    {"from": WA_ID, "id": "wamid.X", "type": "hologram"},
                                    {"from": WA_ID, "id": "wamid.Y", "type": "text"},
                                    {
                                        "from": WA_ID,
                                        "id": "wamid.Z",
                                        "type": "location",
                                        "location": {"latitude": "north"},
                                    },
                                    {
                                        "from": WA_ID,
                                        "id": "wamid.W",
                                        "type": "text",
                                        "text": {"body": "Bonjour"},
                                    },
                                ],
                            },
                        },
                    ],
                }
            ],
        }
    )
    value = payload.entry[0].changes[1].value
    assert value is not None
    assert [type(m) for m in value.messages] == [UnsupportedMessage] * 3 + [TextMessage]
    assert [m.id for m in value.messages] == ["wamid.X", "wamid.Y", "wamid.Z", "wamid.W"]
    assert payload.entry[0].changes[0].value is not None
    assert payload.entry[0].changes[0].value.metadata is None


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_authentic_post_is_acknowledged(
    client: Client, app: App, queue: RecordingQueue, name: str
) -> None:
    result = post_whatsapp(client, load_event(name))
    assert result.status == 200
    assert len(queue.items) == (1 if name in EXPECTED_TEXT else 0)


def test_an_authentic_post_of_an_unexpected_shape_is_acknowledged(
    client: Client, queue: RecordingQueue
) -> None:
    assert post_whatsapp(client, {"object": "page", "entry": "not a list"}).status == 200
    assert queue.items == []


# --- what a message becomes ------------------------------------------------------------------


def test_a_text_is_stored_linked_and_queued(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    (item,) = queue.items
    assert (item.kind, item.shop, item.group) == ("channel_turn", SHOP, CID)
    assert item.dedup_id == "wamid.HBgMMjIxNzcxMjM0NTY3FQIAEhggQTFCMkMzRDRFNUY2"
    assert item.payload == {"conversation": CID}
    assert is_session_id(CID)
    stored = conversation(app)
    assert stored.channel == "whatsapp"
    assert stored.channel_user == WA_ID
    assert stored.last_inbound_at == delivered_at(1760000000)
    (message,) = stored.recent
    assert (message.role, message.text, message.external_ids) == ("user", TEXT, [item.dedup_id])
    doc = app.store.get(SHOP, f"conversations/{CID}/messages", message.id)
    assert doc is not None and Message.from_doc(doc) == message
    assert stored.customer_id is not None
    customer_doc = app.store.get(SHOP, "customers", stored.customer_id)
    assert customer_doc is not None
    customer = Customer.from_doc(customer_doc)
    assert (customer.phone, customer.name) == (f"+{WA_ID}", "Aminata Diop")
    assert customer.identities == [f"whatsapp:{CID}"]


def test_a_phone_typed_in_the_widget_is_not_the_whatsapp_customer(
    client: Client, app: App
) -> None:
    # A lead captured in the widget with the local form of the number: a claim, not a proof.
    now = time.time()
    web = Conversation(id=new_session_id(), created_at=now, updated_at=now)
    app.store.create(SHOP, "conversations", web.id, web.to_doc())
    phone = crm.normalise_phone("77 123 45 67", "SN")
    widget, _ = crm.contact_for_order(app.store, SHOP, web, phone, "Quelqu'un")
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    customer = _customer(app)
    assert conversation(app).customer_id == customer.id != widget.id
    assert (customer.phone, customer.phone_verified) == (phone, True)
    stored = app.store.get(SHOP, "customers", widget.id)
    assert stored is not None and Customer.from_doc(stored) == widget


def test_a_whatsapp_conversation_is_not_the_webs(client: Client, app: App) -> None:
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    history = client.request("GET", "/chat/history", query={"session_id": CID})
    assert history.status == 404
    chat = client.request(
        "POST",
        "/chat",
        headers={"content-type": "application/json"},
        body=json.dumps({"message": "Bonjour", "session_id": CID}).encode(),
    )
    assert chat.status == 200
    assert chat.json()["session_id"] != CID
    assert len(conversation(app).recent) == 1


def test_a_batch_of_entries_changes_and_messages(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    # The second entry's number belongs to another shop, through a route document.
    app.store.put("boutique2", "shops", "boutique2", {"name": "Boutique 2"})
    add_route(app, "boutique2", "whatsapp", "106540352242999")
    assert post_whatsapp(client, load_event("whatsapp_batch")).status == 200
    assert [(i.shop, i.dedup_id) for i in queue.items] == [
        (SHOP, "wamid.BATCH1"),
        (SHOP, "wamid.BATCH2"),
        (SHOP, "wamid.BATCH3"),
        ("boutique2", "wamid.BATCH4"),
    ]
    assert [m.text for m in conversation(app).recent] == ["Bonjour", "Vous livrez à Thiès ?"]
    other = conversation(app, conversation_id(APP_SECRET, SHOP, "whatsapp", "221781112233"))
    assert [m.text for m in other.recent] == ["Hello, do you have raffia bags?"]
    cid4 = conversation_id(APP_SECRET, "boutique2", "whatsapp", "221701234567")
    assert app.store.get("boutique2", "conversations", cid4) is not None


def test_a_number_no_shop_owns_is_acknowledged_and_ignored(
    client: Client, queue: RecordingQueue, logs: io.StringIO
) -> None:
    assert post_whatsapp(client, load_event("whatsapp_batch")).status == 200
    assert len(queue.items) == 3  # the fourth message's number has no route
    assert '"ignored":1' in logs.getvalue()


# --- duplicates ------------------------------------------------------------------------------


def test_a_redelivery_is_a_no_op(client: Client, app: App, queue: RecordingQueue) -> None:
    for _ in range(3):
        assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    assert len(queue.items) == 1
    assert len(conversation(app).recent) == 1
    page = app.store.query(SHOP, f"conversations/{CID}/messages")
    assert len(page.items) == 1


def test_a_failed_enqueue_answers_500_and_the_redelivery_succeeds(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    queue.refuse = 1
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 500
    assert queue.items == []
    # Meta delivers it again: the message already stored is queued, not stored twice.
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    assert len(queue.items) == 1
    assert len(conversation(app).recent) == 1


def test_five_concurrent_deliveries_of_one_message_queue_it_once(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    body = json.dumps(load_event("whatsapp_text")).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature(body)}
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver() -> None:
        request = Request("POST", "/webhooks/whatsapp", headers=headers, body=body)
        barrier.wait()
        statuses.append(webhook_whatsapp.handler(request).status)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 5
    assert len(queue.items) == 1
    queue.run(app)
    assert queue.failures == []
    assert len(graph_server.sent) == 1


# --- statuses and preferences ----------------------------------------------------------------


def _sent_reply(client: Client, app: App, queue: RecordingQueue) -> Message:
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    queue.run(app)
    reply = conversation(app).recent[-1]
    doc = app.store.get(SHOP, f"conversations/{CID}/messages", reply.id)
    assert doc is not None
    return Message.from_doc(doc)


def _status(name: str, wamid: str) -> dict[str, object]:
    event = load_event(name)
    event["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
    return event


def test_statuses_are_recorded_on_the_reply_and_never_go_back(
    client: Client, app: App, queue: RecordingQueue
) -> None:
    reply = _sent_reply(client, app, queue)
    assert reply.delivery == "accepted"
    assert reply.external_ids is not None
    wamid = reply.external_ids[0]

    def delivery() -> str | None:
        doc = app.store.get(SHOP, f"conversations/{CID}/messages", reply.id)
        assert doc is not None
        return Message.from_doc(doc).delivery

    for name, expected in (
        ("whatsapp_status_sent", "sent"),
        ("whatsapp_status_read", "read"),
        ("whatsapp_status_delivered", "read"),  # late, out of order: read stays
    ):
        assert post_whatsapp(client, _status(name, wamid)).status == 200
        assert delivery() == expected
    # A status about a message this service did not send is acknowledged.
    assert post_whatsapp(client, _status("whatsapp_status_read", "wamid.UNKNOWN")).status == 200


def test_a_131047_failure_status_queues_the_template(
    client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    reply = _sent_reply(client, app, queue)
    assert reply.external_ids is not None
    assert (
        post_whatsapp(client, _status("whatsapp_status_failed", reply.external_ids[0])).status
        == 200
    )
    assert queue.kinds() == ["channel_reengage"]
    queue.run(app)
    assert queue.failures == []
    assert graph_server.sent[-1]["type"] == "template"
    assert graph_server.sent[-1]["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }
    doc = app.store.get(SHOP, f"conversations/{CID}/messages", reply.id)
    assert doc is not None and Message.from_doc(doc).delivery == "template"
    # A redelivered failure status does not send the template twice.
    assert (
        post_whatsapp(client, _status("whatsapp_status_failed", reply.external_ids[0])).status
        == 200
    )
    queue.run(app)
    assert [m["type"] for m in graph_server.sent].count("template") == 1


def _customer(app: App) -> Customer:
    claim = app.store.get(SHOP, crm.PHONES, record_id(f"+{WA_ID}"))
    assert claim is not None
    doc = app.store.get(SHOP, "customers", claim.data["customer_id"])
    assert doc is not None
    return Customer.from_doc(doc)


ADDRESS = f"whatsapp:+{WA_ID}"


def _opted_out(app: App) -> bool:
    return ADDRESS in marketing.opted_out(app.store, SHOP, [ADDRESS])


def test_marketing_preferences_without_a_customer_are_kept_for_the_number(
    client: Client, app: App
) -> None:
    assert post_whatsapp(client, load_event("whatsapp_preferences_stop")).status == 200
    assert _opted_out(app)
    assert app.store.get(SHOP, crm.PHONES, record_id(f"+{WA_ID}")) is None  # no customer made
    assert post_whatsapp(client, load_event("whatsapp_preferences_resume")).status == 200
    assert not _opted_out(app)
    # The old "stop" delivered again after the newer "resume" changes nothing.
    assert post_whatsapp(client, load_event("whatsapp_preferences_stop")).status == 200
    assert not _opted_out(app)


def test_marketing_preferences_are_recorded_in_order_for_the_customer(
    client: Client, app: App, logs: io.StringIO
) -> None:
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200  # the customer
    for _ in range(2):  # redelivered: the same outcome
        assert post_whatsapp(client, load_event("whatsapp_preferences_stop")).status == 200
        assert _customer(app).marketing_opt_out is True and _opted_out(app)
    assert post_whatsapp(client, load_event("whatsapp_preferences_resume")).status == 200
    assert _customer(app).marketing_opt_out is False and not _opted_out(app)
    assert post_whatsapp(client, load_event("whatsapp_preferences_stop")).status == 200
    assert _customer(app).marketing_opt_out is False and not _opted_out(app)
    assert_clean(logs.getvalue(), CID)


def test_a_forged_preference_changes_nothing(client: Client, app: App) -> None:
    assert post_whatsapp(client, load_event("whatsapp_text")).status == 200
    forged = signature(json.dumps(load_event("whatsapp_preferences_stop")).encode(), "forger")
    result = post_whatsapp(client, load_event("whatsapp_preferences_stop"), forged=forged)
    assert result.status == 403
    assert _customer(app).marketing_opt_out is False and not _opted_out(app)


@pytest.mark.parametrize(
    ("word", "opt_out"),
    [
        ("STOP", True),
        ("Arrêt", True),
        ("arreter", True),
        ("Désabonner", True),
        ("DESINSCRIRE", True),
        ("unsubscribe!", True),
        ("START", False),
        ("Reprendre", False),
        ("resume", False),
    ],
)
def test_typed_keywords_are_recorded_and_confirmed(
    client: Client,
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    word: str,
    opt_out: bool,
) -> None:
    if not opt_out:  # START after a STOP
        stop = whatsapp_text("STOP", "wamid.S", delivered_at(1760000400))
        assert post_whatsapp(client, stop).status == 200
        assert _opted_out(app)
    event = whatsapp_text(word, "wamid.K", delivered_at(1760000500))
    assert post_whatsapp(client, event).status == 200
    assert _customer(app).marketing_opt_out is opt_out
    assert _opted_out(app) is opt_out
    queue.run(app)
    sent = graph_server.sent[-1]
    assert sent["text"]["body"] in {marketing.confirmation(opt_out, lang) for lang in ("fr", "en")}


def test_the_webhook_logs_counts_and_nothing_of_the_customer(
    client: Client, app: App, queue: RecordingQueue, logs: io.StringIO
) -> None:
    post_whatsapp(client, load_event("whatsapp_text"))
    post_whatsapp(client, load_event("whatsapp_text"))
    post_whatsapp(client, load_event("whatsapp_contacts"))
    post_whatsapp(client, load_event("whatsapp_text"), sign=False)
    queue.run(app)
    text = logs.getvalue()
    assert '"event":"whatsapp_webhook"' in text
    assert '"duplicates":1' in text
    assert_clean(text, TEXT, "sandales", "Aminata", "Moussa", "76 555 44 33", CID)
