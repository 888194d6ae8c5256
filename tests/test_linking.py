"""One customer across channels: a widget (or Telegram) conversation links to the verified
WhatsApp customer only with the one-time code sent to that number on WhatsApp, through the
loopback Graph API; then memory, orders and opt-outs follow the customer, and an operator can
reach them on the channel they last wrote on."""

from __future__ import annotations

import io
import re
import time

import pytest

from shared import conversations, crm, memory
from shared.app import App
from shared.crm import list_leads
from shared.linking import CODE_TTL, MAX_ATTEMPTS
from shared.marketing import customer_addresses
from shared.models import Conversation
from shared.notify import notify
from tests.channels import conftest as channels
from tests.channels.conftest import (
    WA_ID,
    RecordingQueue,
    arrive,
    arrive_telegram,
    assert_clean,
    whatsapp_text,
)
from tests.eventlib import delivered_at, load_event
from tests.fixtures.app import Client, post_json
from tests.fixtures.graph_server import Fail, GraphServer
from tests.fixtures.telegram_server import TelegramServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

# The channels' test app (both channels on their loopback servers), its queue and sleeps.
app, queue, sleeps = channels.app, channels.queue, channels.sleeps
SHOP = "teranga"
WA_PHONE = "+221771234567"  # WA_ID's number
TYPED = "+221 77 123 45 67"
LINK_REQUEST = f"Je veux lier mon compte WhatsApp {TYPED}"


def whatsapp_customer(app: App, queue: RecordingQueue, text: str = "Bonjour") -> Conversation:
    """The WhatsApp conversation of WA_ID, answered: its verified customer exists."""
    assert arrive(whatsapp_text(text, f"wamid.L{time.monotonic_ns()}", delivered_at(1760000000)))
    queue.run(app)
    assert queue.failures == []
    return channel_conversation(app, "whatsapp")


def channel_conversation(app: App, channel: str) -> Conversation:
    """The one conversation on ``channel``."""
    [conversation] = [
        Conversation.from_doc(doc)
        for doc in app.store.scan(SHOP, conversations.CONVERSATIONS)
        if doc.data.get("channel") == channel
    ]
    return conversation


def web(client: Client, text: str, session_id: str | None = None) -> tuple[str, str]:
    payload = {"message": text, **({"session_id": session_id} if session_id else {})}
    result = post_json(client, "/chat", payload)
    assert result.status == 200, result.body
    body = result.json()
    return body["session_id"], body["reply"]


def sent_code(graph_server: GraphServer) -> str:
    """The code in the last message sent on WhatsApp, to WA_ID."""
    last = graph_server.sent[-1]
    assert last["to"] == WA_ID
    body = last["text"]["body"]
    found = re.search(r"\b\d{6}\b", body)
    assert found is not None, body
    return found.group()


def web_conversation(app: App, session_id: str) -> Conversation:
    conversation = conversations.get(app.store, SHOP, session_id)
    assert conversation is not None
    return conversation


def test_the_widget_links_with_the_code_received_on_whatsapp(
    client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer, logs: io.StringIO
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)
    verified_id = on_whatsapp.customer_id
    crm.remember(app.store, SHOP, on_whatsapp, "taille M, préfère le bleu")
    # The web conversation, before the link: an order and a fact of its own contact.
    sid, _ = web(client, "Je voudrais commander le boubou brodé")
    web(client, "Aminata Diop, 77 123 45 67, Mermoz rue 10 Dakar", sid)
    web(client, "oui", sid)
    crm.remember(app.store, SHOP, web_conversation(app, sid), "livraison après 18h")
    [lead] = list_leads(app.store, SHOP)
    contact_id = lead.customer_id
    assert contact_id != verified_id  # the typed phone linked nothing

    _, reply = web(client, LINK_REQUEST, sid)
    assert "code à 6 chiffres" in reply
    code = sent_code(graph_server)
    assert code not in reply
    stored = web_conversation(app, sid).pending_link
    assert stored is not None and code not in stored.model_dump_json()  # only its keyed hash
    _, reply = web(client, code, sid)
    assert "reliée à votre compte WhatsApp" in reply

    linked = web_conversation(app, sid)
    assert linked.customer_id == verified_id and linked.pending_link is not None
    customer = crm.conversation_customer(app.store, SHOP, linked)
    assert customer is not None and customer.id == verified_id
    assert crm.identity_of(linked) in customer.verified_identities
    [lead] = list_leads(app.store, SHOP)
    assert lead.customer_id == verified_id  # the web order follows the customer
    kept, _ = memory.load(app.store, SHOP, customer)
    texts = [item.text for item in kept.items]
    assert "taille M, préfère le bleu" in texts and "livraison après 18h" in texts
    contact = crm.get_customer(app.store, SHOP, contact_id)
    assert contact is not None and memory.load(app.store, SHOP, contact)[0].items == []

    # The next web turn's prompt shows the WhatsApp customer's memory.
    script = Script()
    app.llm_override = ScriptedLLM(script)
    script.steps.append(Reply("Re-bonjour !"))
    web(client, "Vous avez ma taille ?", sid)
    system = script.seen[-1].messages[0]["text"]
    section = system[system.index("<customer_memory>") : system.index("</customer_memory>")]
    assert "taille M" in section and "livraison après 18h" in section

    text = logs.getvalue()
    assert_clean(text, code, "+221771234567")
    assert "conversation_linked" in text


def test_a_claim_alone_links_nothing(
    client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)
    sid, _ = web(client, f"C'est moi, mon numéro WhatsApp est {TYPED}")
    sent_before = len(graph_server.sent)
    web(client, "123456", sid)  # a code typed with none pending checks nothing
    conversation = web_conversation(app, sid)
    assert conversation.customer_id != on_whatsapp.customer_id
    assert len(graph_server.sent) == sent_before  # nothing sent to the number either
    verified = crm.get_customer(app.store, SHOP, on_whatsapp.customer_id)
    assert verified is not None and verified.verified_identities == []
    # A web identity put on the verified customer by an old link still does not count.
    crm.find_or_create_customer_by_phone(
        app.store, SHOP, WA_PHONE, "", crm.identity_of(conversation)
    )
    old_link = conversation.model_copy(update={"customer_id": on_whatsapp.customer_id})
    assert crm.conversation_customer(app.store, SHOP, old_link) is None


def test_five_wrong_codes_void_it(
    client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)
    sid, _ = web(client, LINK_REQUEST)
    code = sent_code(graph_server)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    replies = [web(client, wrong, sid)[1] for _ in range(MAX_ATTEMPTS)]
    assert "Essais restants : 4" in replies[0] and "Essais restants : 1" in replies[3]
    assert "plus valable" in replies[-1]
    _, reply = web(client, code, sid)  # the right one, too late
    assert "reliée" not in reply
    assert web_conversation(app, sid).customer_id != on_whatsapp.customer_id


def test_an_expired_code_links_nothing(
    client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)
    sid, _ = web(client, LINK_REQUEST)
    code = sent_code(graph_server)
    # Its expiry passed (as if CODE_TTL went by): the stored deadline is moved back.
    pending = web_conversation(app, sid).pending_link
    assert pending is not None
    expired = pending.model_copy(update={"expires_at": time.time() - 1})
    conversations.update(
        app.store, SHOP, sid, lambda c: c.model_copy(update={"pending_link": expired})
    )
    _, reply = web(client, code, sid)
    assert "expiré" in reply
    assert web_conversation(app, sid).customer_id != on_whatsapp.customer_id
    assert CODE_TTL == 600.0


def test_a_code_to_a_number_that_never_wrote_makes_its_verified_customer(
    client: Client, app: App, graph_server: GraphServer
) -> None:
    assert crm.verified_customer_id(app.store, SHOP, WA_PHONE) is None
    sid, _ = web(client, LINK_REQUEST)
    _, reply = web(client, sent_code(graph_server), sid)
    assert "reliée" in reply
    customer_id = crm.verified_customer_id(app.store, SHOP, WA_PHONE)
    assert customer_id is not None and web_conversation(app, sid).customer_id == customer_id
    customer = crm.get_customer(app.store, SHOP, customer_id)
    assert customer is not None and customer.phone_verified
    assert customer_addresses(customer) == ["whatsapp:+221771234567"]


def test_outside_the_window_the_code_goes_as_the_authentication_template(
    client: Client, app: App, graph_server: GraphServer
) -> None:
    shop = app.store.get(SHOP, "shops", SHOP)
    assert shop is not None
    code_template = {"name": "link_code", "language": "fr"}
    app.store.put(SHOP, "shops", SHOP, {**shop.data, "whatsapp_code_template": code_template})
    graph_server.fail(Fail(400, 131047))
    sid, reply = web(client, LINK_REQUEST)
    assert "code à 6 chiffres" in reply
    template = graph_server.sent[-1]["template"]
    assert template["name"] == "link_code"
    code = template["components"][0]["parameters"][0]["text"]
    assert "reliée" in web(client, code, sid)[1]


def test_without_an_authentication_template_no_generic_template_goes(
    client: Client, app: App, graph_server: GraphServer
) -> None:
    graph_server.fail(Fail(400, 131047))
    _, reply = web(client, LINK_REQUEST)
    assert "pas pu envoyer de code" in reply
    assert graph_server.sent == []  # hello_world would not carry the code


def test_telegram_links_to_the_whatsapp_number_and_is_notified_there(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)

    def telegram(text: str, update_id: int) -> str:
        update = load_event("telegram_message")
        update["update_id"] = update_id
        update["message"]["text"] = text
        update["message"]["message_id"] = update_id
        update["message"]["date"] = int(time.time())
        assert arrive_telegram(update) == 200
        queue.run(app)
        assert queue.failures == []
        return str(telegram_server.called("sendMessage")[-1]["text"])

    assert "code à 6 chiffres" in telegram(LINK_REQUEST, 9001)
    assert "reliée" in telegram(sent_code(graph_server), 9002)
    tg = channel_conversation(app, "telegram")
    assert tg.customer_id == on_whatsapp.customer_id
    customer = crm.conversation_customer(app.store, SHOP, tg)
    assert customer is not None and customer.id == on_whatsapp.customer_id

    # The customer last wrote on Telegram: the operator's message goes there, and is kept.
    before = len(graph_server.sent)
    notified = notify(app, SHOP, customer.id, "Votre commande est prête.")
    assert notified.id == tg.id
    assert telegram_server.called("sendMessage")[-1]["text"] == "Votre commande est prête."
    assert len(graph_server.sent) == before
    assert conversations.latest_messages(app.store, SHOP, tg.id, 1)[0].text == (
        "Votre commande est prête."
    )


def test_notify_goes_on_whatsapp_with_the_template_outside_the_window(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    on_whatsapp = whatsapp_customer(app, queue)
    assert on_whatsapp.customer_id is not None
    notify(app, SHOP, on_whatsapp.customer_id, "Votre commande est prête.")
    assert graph_server.sent[-1]["text"]["body"] == "Votre commande est prête."
    graph_server.fail(Fail(400, 131047))
    notify(app, SHOP, on_whatsapp.customer_id, "Toujours là ?")
    assert graph_server.sent[-1]["type"] == "template"


@pytest.mark.parametrize("text", ["Bonjour", "123456"])
def test_a_web_customer_cannot_be_notified(client: Client, app: App, text: str) -> None:
    from shared.exceptions import InvalidInputError

    sid, _ = web(client, text)
    customer, _ = crm.own_contact(app.store, SHOP, web_conversation(app, sid))
    with pytest.raises(InvalidInputError):
        notify(app, SHOP, customer.id, "Bonjour")
