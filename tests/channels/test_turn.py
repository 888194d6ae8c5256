"""The worker's channel turn against the loopback Graph API: one reply per message, retries
with backoff, the template outside the 24-hour window, poison messages, split replies, media,
handoffs and the operator's notification."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared import conversations
from shared.app import App
from shared.channels import turn
from shared.channels.base import Choice, Retry, shorten, split_text, units
from shared.channels.receive import conversation_id
from shared.channels.whatsapp.sender import _message
from shared.exceptions import ChannelError
from shared.llm import Completion, LLMRequest, TextDelta
from shared.models import Conversation, Message
from shared.store.base import Key
from shared.worker import deliver, list_dead_letters
from tests.channels.conftest import (
    APP_SECRET,
    TG_OPERATOR,
    WA_ID,
    Faults,
    FaultyStore,
    RecordingQueue,
    arrive,
    assert_clean,
    channel_settings,
    whatsapp_text,
)
from tests.eventlib import delivered_at, load_event
from tests.fixtures.graph_server import Fail, GraphServer
from tests.fixtures.telegram_server import TelegramServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script, SeenRequest

SHOP = "teranga"
CID = conversation_id(APP_SECRET, SHOP, "whatsapp", WA_ID)
ANSWER = "Les Sandales en cuir coûtent 15 000 FCFA. Quelle pointure ?"


def scripted(app: App, *replies: Reply) -> Script:
    script = Script().then(*replies)
    app.llm_override = ScriptedLLM(script)
    return script


def stored(app: App) -> Conversation:
    doc = app.store.get(SHOP, "conversations", CID)
    assert doc is not None
    return Conversation.from_doc(doc)


def reply_doc(app: App, index: int = -1) -> Message:
    replies = [m for m in stored(app).recent if m.role == "assistant"]
    doc = app.store.get(SHOP, f"conversations/{CID}/messages", replies[index].id)
    assert doc is not None
    return Message.from_doc(doc)


def bodies(graph_server: GraphServer) -> list[str]:
    return [
        m["text"]["body"] if m["type"] == "text" else m["interactive"]["body"]["text"]
        for m in graph_server.sent
        if m["type"] in ("text", "interactive")
    ]


def burst_out_of_id_order(app: App, first: str, second: str, third: str) -> None:
    """Three quick messages (wamid.A, B, C) stored by concurrent deliveries: the second takes
    its id, then is held before it is written while the third is stored whole."""
    store = FaultyStore(app.store, Faults())
    app.store = store
    held, release = threading.Event(), threading.Event()

    def hold_the_second(key: Key, data: dict[str, Any]) -> None:
        if key.collection.endswith("/messages") and data.get("external_ids") == ["wamid.B"]:
            held.set()
            assert release.wait(10)

    store.before_write = hold_the_second
    arrive(whatsapp_text(first, "wamid.A"))
    held_back = threading.Thread(target=arrive, args=(whatsapp_text(second, "wamid.B"),))
    held_back.start()
    assert held.wait(10)
    arrive(whatsapp_text(third, "wamid.C"))
    release.set()
    held_back.join()


# --- one reply -------------------------------------------------------------------------------


def test_a_message_gets_one_reply_a_read_receipt_and_a_record(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    scripted(app, Reply(ANSWER))
    assert arrive(whatsapp_text("Combien coûtent les sandales ?")) == 200
    queue.run(app)
    assert queue.failures == []
    (read,) = graph_server.reads
    assert read["message_id"] == "wamid.T1"
    assert read["typing_indicator"] == {"type": "text"}
    (sent,) = graph_server.sent
    assert sent["to"] == WA_ID
    assert bodies(graph_server) == [ANSWER]
    reply = reply_doc(app)
    assert (reply.delivery, reply.external_ids) == ("accepted", [sent["_id"]])
    assert reply.reply_to == stored(app).recent[0].id


def test_two_quick_messages_get_one_coherent_reply(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    script = scripted(app, Reply(ANSWER))
    arrive(whatsapp_text("Bonjour", "wamid.A", delivered_at(1760000000)))
    arrive(whatsapp_text("Vous avez des sandales ?", "wamid.B", delivered_at(1760000002)))
    assert len(queue.items) == 2
    queue.run(app)
    assert queue.failures == []
    (seen,) = script.seen  # the second item found nothing left to answer
    assert [m["text"] for m in seen.messages[-2:]] == ["Bonjour", "Vous avez des sandales ?"]
    assert bodies(graph_server) == [ANSWER]
    # A third message later is answered on its own.
    script.then(Reply("Avec plaisir."))
    arrive(whatsapp_text("Merci", "wamid.C", delivered_at(1760000100)))
    queue.run(app)
    assert script.seen[-1].messages[-1]["text"] == "Merci"
    assert bodies(graph_server) == [ANSWER, "Avec plaisir."]


def test_a_burst_stored_out_of_id_order_gets_one_reply(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    """Three quick messages, stored by concurrent deliveries: the second takes its id, then is
    held before it is written while the third is stored whole, so the conversation holds them
    as 1, 3, 2 with ids in the order 1, 2, 3. The first item answers all three; the other two
    items find nothing left to answer."""
    script = scripted(app, Reply(ANSWER), Reply("Redundant."))
    burst_out_of_id_order(app, "Bonjour", "Des sandales ?", "En cuir, pointure 40")
    recent = stored(app).recent
    assert [m.external_ids for m in recent] == [["wamid.A"], ["wamid.C"], ["wamid.B"]]
    assert recent[1].id > recent[2].id  # the race: stored after an id taken later
    assert len(queue.items) == 3
    queue.run(app)
    assert queue.failures == []
    (seen,) = script.seen
    assert [m["text"] for m in seen.messages[-3:]] == [
        "Bonjour",
        "En cuir, pointure 40",
        "Des sandales ?",
    ]
    assert bodies(graph_server) == [ANSWER]
    # A message after the reply is answered on its own.
    arrive(whatsapp_text("Merci", "wamid.D"))
    queue.run(app)
    assert script.seen[-1].messages[-1]["text"] == "Merci"
    assert bodies(graph_server) == [ANSWER, "Redundant."]


def test_messages_arriving_during_a_turn_get_one_more_reply_together(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    """Messages 2 and 3 arrive while turn 1 is answering: turn 1 answers message 1, the next
    item answers 2 and 3 together, the last finds nothing to do."""
    replies = iter(["Bonjour !", ANSWER])

    def respond(request: SeenRequest) -> Reply:
        if len(script.seen) == 1:  # the model is answering message 1: 2 and 3 arrive
            arrive(whatsapp_text("Des sandales ?", "wamid.B"))
            arrive(whatsapp_text("En cuir", "wamid.C"))
        return Reply(next(replies))

    script = Script(responder=respond)
    app.llm_override = ScriptedLLM(script)
    arrive(whatsapp_text("Bonjour", "wamid.A"))
    queue.run(app)
    assert queue.failures == []
    first, second = script.seen
    assert first.messages[-1]["text"] == "Bonjour"
    assert [m["text"] for m in second.messages[-2:]] == ["Des sandales ?", "En cuir"]
    assert bodies(graph_server) == ["Bonjour !", ANSWER]


def test_a_product_reply_offers_its_products_as_buttons(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    arrive(whatsapp_text("Bonjour, avez-vous des sandales en cuir ?"))
    queue.run(app)  # the offline responder names the products it found
    (sent,) = graph_server.sent
    assert sent["type"] == "interactive"
    interactive = sent["interactive"]
    assert interactive["type"] == "button"
    assert "*Sandales en cuir*" in interactive["body"]["text"]  # Markdown bold, WhatsApp's way
    assert "**" not in interactive["body"]["text"]
    titles = [b["reply"]["title"] for b in interactive["action"]["buttons"]]
    assert "Sandales en cuir" in titles
    assert all(len(t) <= 20 for t in titles)


def test_many_products_become_a_list_and_long_text_stays_text() -> None:
    choices = [
        Choice(f"product:p{i}", f"Produit numéro {i} très long", "15 000 FCFA") for i in range(5)
    ]
    listed = _message(WA_ID, "Voici", choices, "Produits")
    assert listed["interactive"]["type"] == "list"
    rows = listed["interactive"]["action"]["sections"][0]["rows"]
    assert len(rows) == 5 and all(len(r["title"]) <= 24 for r in rows)
    assert rows[0]["description"] == "15 000 FCFA"
    assert _message(WA_ID, "x" * 1025, choices, "Produits")["type"] == "text"
    assert _message(WA_ID, "Voici", [], "")["type"] == "text"
    same = [
        Choice("product:a", "Sandales en cuir tressé 40"),
        Choice("product:b", "Sandales en cuir tressé 44"),
    ]
    buttons = _message(WA_ID, "Voici", same, "")["interactive"]["action"]["buttons"]
    assert len(buttons) == 1  # two titles cut to the same 20 characters: one button


# --- retries ---------------------------------------------------------------------------------


def test_provider_500_then_200_gives_one_reply(
    app: App, queue: RecordingQueue, graph_server: GraphServer, sleeps: list[float]
) -> None:
    scripted(app, Reply(ANSWER))
    graph_server.fail(Fail(500))
    arrive(whatsapp_text("Combien coûtent les sandales ?"))
    queue.run(app)
    assert queue.failures == []
    assert graph_server.attempts() == 2
    assert bodies(graph_server) == [ANSWER]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_a_429_storm_backs_off_and_loses_nothing(
    app: App, queue: RecordingQueue, graph_server: GraphServer, sleeps: list[float]
) -> None:
    script = scripted(app, Reply(ANSWER))
    # 4 refusals (429, throughput, pair rate), then a Retry-After of 3 s: all in one attempt.
    graph_server.fail(Fail(429), Fail(400, 130429), Fail(400, 131056), Fail(429, retry_after="3"))
    arrive(whatsapp_text("Combien coûtent les sandales ?"))
    queue.run(app)
    assert queue.failures == []
    assert bodies(graph_server) == [ANSWER]
    ceilings = [0.5, 1.0, 2.0]
    assert all(0 <= s <= c for s, c in zip(sleeps[:3], ceilings, strict=True))
    assert sleeps[3] >= 3
    # A storm longer than the sender's attempts: the item raises, the queue delivers it again,
    # and the stored reply goes out then, once, without asking the model again.
    script.then(Reply("Elles existent en 40 et 44."))
    graph_server.fail(*[Fail(429)] * 5)
    arrive(whatsapp_text("Quelles pointures ?", "wamid.T2", delivered_at(1760000100)))
    queue.run(app, attempts=2)
    (failure,) = queue.failures
    assert isinstance(failure, ChannelError) and failure.retryable
    assert bodies(graph_server) == [ANSWER, "Elles existent en 40 et 44."]
    assert len(script.seen) == 2


def test_131047_sends_the_template_instead_of_retrying_text(
    app: App, queue: RecordingQueue, graph_server: GraphServer, sleeps: list[float]
) -> None:
    shop = app.store.get(SHOP, "shops", SHOP)
    assert shop is not None
    app.store.put(
        SHOP,
        "shops",
        SHOP,
        {
            **shop.data,
            "whatsapp_template": {
                "name": "reprise_conversation",
                "language": "fr",
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "!"}]}],
            },
        },
    )
    scripted(app, Reply(ANSWER))
    graph_server.fail(Fail(400, 131047))
    arrive(whatsapp_text("Combien coûtent les sandales ?"))
    queue.run(app)
    assert queue.failures == []
    assert graph_server.attempts() == 2
    (template,) = graph_server.sent
    assert template["type"] == "template"
    assert template["template"] == {
        "name": "reprise_conversation",
        "language": {"code": "fr"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "!"}]}],
    }
    assert sleeps == []
    assert reply_doc(app).delivery == "template"


def test_a_poison_message_raises_every_time_and_nothing_is_half_sent(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    script = scripted(app, Reply(ANSWER))
    graph_server.fail(*[Fail(400, 100)] * 3)  # invalid parameter: retrying cannot help
    arrive(whatsapp_text("Combien coûtent les sandales ?"))
    (item,) = queue.items
    for attempt in (1, 2, 3):
        with pytest.raises(ChannelError) as raised:
            turn.handle(app, item.model_copy(update={"attempt": attempt}))
        assert raised.value.code == 100 and not raised.value.retryable
    assert graph_server.sent == []
    assert graph_server.attempts() == 3  # once per delivery: not retried by the sender
    assert len(script.seen) == 1  # the stored reply is resent, not written again
    assert reply_doc(app).delivery == "pending"
    # Through the worker: a non-retryable failure becomes a dead letter with its reason.
    graph_server.fail(Fail(400, 100))
    deliver(item.model_copy(update={"attempt": 4}), app=app)
    (letter,) = list_dead_letters(app.store, SHOP)
    assert letter.reason.startswith("ChannelError") and "code 100" in letter.reason
    # The conversation is not stuck behind it: the next message is answered.
    graph_server.fail(Fail(400, 100))
    script.then(Reply("Bien reçu."))
    arrive(whatsapp_text("Allô ?", "wamid.T2", delivered_at(1760000100)))
    queue.items = queue.items[1:]
    queue.run(app)
    assert queue.failures == []
    assert bodies(graph_server) == ["Bien reçu."]
    assert reply_doc(app, 0).delivery == "failed"


def test_a_long_reply_is_split_and_resumed_where_it_stopped(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    paragraph = "Nos sandales sont faites main à Ngaye Mékhé. " * 40
    long = "\n\n".join(f"{n}. {paragraph.strip()}" for n in range(1, 6))
    scripted(app, Reply(long))
    graph_server.fail(None, Fail(400, 100))  # the first part goes, the second is refused
    arrive(whatsapp_text("Racontez-moi tout"))
    queue.run(app, attempts=2)
    assert len(queue.failures) == 1
    parts = bodies(graph_server)
    assert len(parts) == len(split_text(long, 4096)) == 3
    assert all(units(p) <= 4096 for p in parts)
    assert len(set(parts)) == 3  # part one was not sent again
    assert "\n\n".join(parts).split() == long.split()
    assert reply_doc(app).delivery == "accepted"
    assert reply_doc(app).external_ids == [m["_id"] for m in graph_server.sent]


# --- media -----------------------------------------------------------------------------------


class ListeningLLM(ScriptedLLM):
    supports_audio = True

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.heard: list[tuple[bytes, str]] = []

    def transcribe(self, audio: bytes, mime_type: str) -> str:
        self.heard.append((audio, mime_type))
        return "Je cherche des sandales en cuir"


def test_a_voice_note_is_transcribed_and_answered(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    script = Script().then(Reply(ANSWER))
    llm = ListeningLLM(script)
    app.llm_override = llm
    graph_server.media["1040185394839572"] = (b"OggS" + b"\x00" * 2000, "audio/ogg")
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert queue.failures == []
    assert llm.heard == [(b"OggS" + b"\x00" * 2000, "audio/ogg")]
    assert script.seen[0].messages[-1]["text"] == "Je cherche des sandales en cuir"
    assert bodies(graph_server) == [ANSWER]
    voice = stored(app).recent[0]
    assert voice.text == "🎤 Je cherche des sandales en cuir"
    doc = app.store.get(SHOP, f"conversations/{CID}/messages", voice.id)
    assert doc is not None and doc.data["text"] == voice.text
    # The media URL was fetched with the bearer token, the bytes too.
    gets = [
        h
        for (m, p, b), h in zip(graph_server.calls, graph_server.headers, strict=True)
        if m == "GET"
    ]
    assert len(gets) == 2 and all(h["authorization"].startswith("Bearer ") for h in gets)


def test_an_image_goes_to_a_vision_model(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    script = scripted(app, Reply(ANSWER))
    graph_server.media["1537282630612740"] = (b"\xff\xd8\xff" + b"\x00" * 1500, "image/jpeg")
    arrive(load_event("whatsapp_image"))
    queue.run(app)
    assert queue.failures == []
    last = script.seen[0].messages[-1]
    assert (last["text"], last["images"]) == ("Vous avez ce modèle ?", 1)


@pytest.mark.parametrize(
    ("event", "media_id", "data", "mime_type"),
    [
        ("whatsapp_video", "765756756", b"\x00" * 100, "video/mp4"),  # no model watches videos
        ("whatsapp_voice", "1040185394839572", b"OggS", "audio/ogg"),  # offline: no speech-to-text
        ("whatsapp_image", "1537282630612740", b"GIF89a", "image/gif"),  # a type not accepted
        ("whatsapp_image", "1537282630612740", b"\xff" * 5000, "image/jpeg"),  # over the limit
    ],
)
def test_what_cannot_be_read_gets_a_polite_request_for_text(
    make_app: Callable[..., App],
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    event: str,
    media_id: str,
    data: bytes,
    mime_type: str,
) -> None:
    small = make_app(**channel_settings(graph_server, telegram_server), MEDIA_MAX_BYTES="4096")
    small.queue = queue
    vision = ScriptedLLM(Script())  # sees images, but not these
    if event == "whatsapp_image":
        small.llm_override = vision
    graph_server.media[media_id] = (data, mime_type)
    arrive(load_event(event))
    queue.run(small)
    assert queue.failures == []
    if event == "whatsapp_image":
        # The caption is still answered, without the image.
        (seen,) = vision.script.seen
        assert (seen.messages[-1]["text"], seen.messages[-1]["images"]) == (
            "Vous avez ce modèle ?",
            0,
        )
        return
    # Where espeak-ng is installed, the offline speech also says it (a voice note answered).
    sent, *spoken = graph_server.sent
    assert "écrire" in sent["text"]["body"]
    assert all(m["type"] == "audio" for m in spoken)


# --- handoff ---------------------------------------------------------------------------------


def test_a_handoff_notifies_the_operator_and_the_bot_stays_silent(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    logs: io.StringIO,
) -> None:
    secret_text = "Je veux parler au gérant, mon colis est abîmé"
    scripted(
        app,
        Reply(tool_calls=[("request_human", {"reason": "colis abîmé"})]),
        Reply("Je transmets votre demande à un conseiller de la boutique."),
    )
    arrive(whatsapp_text(secret_text))
    queue.run(app)
    assert queue.failures == []
    customer, operator = graph_server.sent
    assert customer["to"] == WA_ID
    assert operator["to"] == "221709998877"
    note = operator["text"]["body"]
    assert secret_text in note and f"https://wa.me/{WA_ID}" in note and "colis abîmé" in note
    assert f"python -m shared release {CID} --shop {SHOP}" in note
    (telegram,) = telegram_server.called("sendMessage")
    assert telegram["chat_id"] == TG_OPERATOR and f"/release {CID}" in telegram["text"]
    # While a person has it, the bot neither answers nor shows "typing".
    arrive(whatsapp_text("Allô ?", "wamid.T2", delivered_at(1760000100)))
    queue.run(app)
    assert len(graph_server.sent) == 2 and len(graph_server.reads) == 1
    # Given back, the assistant answers again.
    conversations.set_state(app.store, SHOP, CID, "bot")
    arrive(whatsapp_text("Merci !", "wamid.T3", delivered_at(1760000200)))
    scripted(app, Reply("Avec plaisir."))
    queue.run(app)
    assert bodies(graph_server)[-1] == "Avec plaisir."
    assert_clean(logs.getvalue(), secret_text, "abîmé", "Allô", CID)


def test_the_operator_reads_every_message_of_a_burst_stored_out_of_id_order(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    """The messages quoted to the operator are those the reply answered, by their place on the
    conversation: the third message, stored before the second, has the larger id but was
    answered too."""
    scripted(
        app,
        Reply(tool_calls=[("request_human", {"reason": "colis"})]),
        Reply("Je transmets votre demande à un conseiller de la boutique."),
    )
    burst_out_of_id_order(app, "Bonjour", "Mon colis", "est abîmé")
    recent = stored(app).recent
    assert recent[1].id > recent[2].id  # C was stored before B, with the larger id
    queue.run(app)
    assert queue.failures == []
    note = next(m["text"]["body"] for m in graph_server.sent if m["to"] == "221709998877")
    assert "« Bonjour »\n« est abîmé »\n« Mon colis »" in note


# --- text ------------------------------------------------------------------------------------


def test_split_text_cuts_at_paragraphs_then_sentences_then_words() -> None:
    assert split_text("Court.", 4096) == ["Court."]
    assert split_text("Un.\n\nDeux.", 8) == ["Un.", "Deux."]
    assert split_text("Une phrase. Une autre phrase.", 20) == ["Une phrase.", "Une autre phrase."]
    assert split_text("abcdefghij" * 3, 10) == ["abcdefghij"] * 3
    emoji = "😀" * 3000  # 6,000 UTF-16 units
    parts = split_text(emoji, 4096)
    assert [units(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == emoji


def test_shorten_and_retry_delays() -> None:
    assert shorten("Sandales  en\ncuir", 20) == "Sandales en cuir"
    assert shorten("Sandales en cuir tressé", 10) == "Sandales…"
    retry = Retry(base_delay=1, max_delay=4)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (6, 4)):
        assert all(0 <= retry.wait(attempt, None) <= ceiling for _ in range(50))
    assert retry.wait(1, 10) == 10


class _Unused(ScriptedLLM):
    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        raise AssertionError("the model must not be asked")


def test_stop_is_confirmed_without_the_model(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    app.llm_override = _Unused()
    arrive(whatsapp_text("STOP"))
    queue.run(app)
    assert queue.failures == []
    assert "START" in bodies(graph_server)[0]
