"""Voice notes out, end to end through the webhooks, the worker and the loopback Graph API and
Telegram API, with the loopback speech provider: a customer's voice note gets the text reply and
then the same (price-guarded) text spoken as an OGG/Opus voice note; text only when the shop
turned it off, when the customer wrote, or when speaking or uploading fails."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.app import App
from shared.channels.base import ChannelName
from shared.channels.receive import conversation_id
from shared.channels.voice_notes import spoken
from shared.models import Conversation, Message
from shared.shops import update_shop
from tests.channels.conftest import (
    APP_SECRET,
    RecordingQueue,
    arrive,
    arrive_telegram,
    assert_clean,
    channel_settings,
    whatsapp_text,
)
from tests.channels.test_turn import ListeningLLM, bodies
from tests.eventlib import load_event
from tests.fixtures.graph_server import Fail, GraphServer, Upload
from tests.fixtures.speech_server import API_KEY, SpeechServer, check_ogg_opus, tone_ogg
from tests.fixtures.telegram_server import TelegramServer
from tests.llm.script import Reply, Script

SHOP = "teranga"
WA_MEDIA = "1040185394839572"  # the voice note in tests/events/whatsapp_voice.json
TG_FILE = "AwACAgQAAxkBAAIBvoice"  # and in telegram_voice.json
HEARD = "Je cherche des sandales en cuir"
ANSWER = "Les **Sandales en cuir** coûtent 15 000 FCFA. Voir https://teranga.example/p/1"
SPOKEN = "Les Sandales en cuir coûtent 15 000 FCFA. Voir"  # no Markdown, no link


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    speech_server: SpeechServer,
    sleeps: list[float],
    queue: RecordingQueue,
    tmp_path: Path,
) -> App:
    """The channels' app, speaking through the loopback OpenAI speech endpoint."""
    instance = make_app(
        **channel_settings(graph_server, telegram_server),
        TTS_PROVIDER="openai",
        TTS_API_BASE=speech_server.base_url,
        OPENAI_API_KEY=API_KEY,
        MEDIA_BLOB_URL=str(tmp_path / "media"),
    )
    instance.queue = queue
    instance.llm_override = ListeningLLM(Script().then(Reply(ANSWER)))
    graph_server.media[WA_MEDIA] = (tone_ogg(), "audio/ogg")
    telegram_server.files[TG_FILE] = (tone_ogg(), "voice/file_1.oga")
    return instance


def reply(app: App, channel: ChannelName, user: str) -> Message:
    cid = conversation_id(APP_SECRET, SHOP, channel, user)
    doc = app.store.get(SHOP, "conversations", cid)
    assert doc is not None
    (last,) = [m for m in Conversation.from_doc(doc).recent if m.role == "assistant"]
    stored = app.store.get(SHOP, f"conversations/{cid}/messages", last.id)
    assert stored is not None
    return Message.from_doc(stored)


def audio_sent(graph_server: GraphServer) -> list[dict[str, Any]]:
    return [m for m in graph_server.sent if m["type"] == "audio"]


def kept(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "media").glob("voice-notes/*/*/*.ogg"))


def test_a_whatsapp_voice_note_gets_text_then_a_voice_note(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    speech_server: SpeechServer,
    tmp_path: Path,
) -> None:
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert queue.failures == []
    text, audio = graph_server.sent
    assert "15 000 FCFA" in bodies(graph_server)[0]  # with the product's button
    # The upload, then the message that plays it: a valid OGG/Opus, the duration the provider's.
    (upload,) = graph_server.uploads
    assert upload["messaging_product"] == "whatsapp" and upload["type"] == "audio/ogg"
    file = upload["file"]
    assert isinstance(file, Upload) and file.content_type == "audio/ogg"
    assert check_ogg_opus(file.data) == pytest.approx(1.5, abs=0.03)
    assert audio["type"] == "audio" and audio["audio"] == {"id": upload["_id"]}
    assert audio["to"] == text["to"]
    # What was said is the stored, guarded reply, without its Markdown and its link.
    answer = reply(app, "whatsapp", text["to"])
    assert answer.delivery == "accepted" and answer.text.startswith("Les **Sandales")
    ((_, said, _),) = speech_server.requests
    assert said["input"] == SPOKEN and said["response_format"] == "opus"
    # Kept in the media store under a dated key named by the reply.
    (path,) = kept(tmp_path)
    assert path.name == f"{answer.id}.ogg" and path.read_bytes() == file.data
    # A second delivery of the same item sends nothing again.
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert len(graph_server.sent) == 2 and len(speech_server.requests) == 1


def test_a_telegram_voice_note_gets_text_then_send_voice(
    app: App, queue: RecordingQueue, telegram_server: TelegramServer
) -> None:
    arrive_telegram(load_event("telegram_voice"))
    queue.run(app)
    assert queue.failures == []
    (text,) = telegram_server.called("sendMessage")
    (voice,) = telegram_server.called("sendVoice")
    assert str(voice["chat_id"]) == str(text["chat_id"]) == "700100200"
    assert isinstance(voice["voice"], Upload) and voice["voice"].content_type == "audio/ogg"
    check_ogg_opus(voice["voice"].data)
    # Text first, then the voice note.
    methods = [path.rsplit("/", 1)[-1] for _, path, body in telegram_server.calls]
    assert methods.index("sendMessage") < methods.index("sendVoice")


def test_a_shop_that_turned_it_off_answers_in_text_only(
    app: App, queue: RecordingQueue, graph_server: GraphServer, speech_server: SpeechServer
) -> None:
    update_shop(app.store, SHOP, {"voice_notes": {"enabled": False}})
    app.shops.invalidate(SHOP)
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert queue.failures == []
    assert audio_sent(graph_server) == [] and len(bodies(graph_server)) == 1
    assert graph_server.uploads == [] and speech_server.requests == []


def test_a_written_message_gets_text_only(
    app: App, queue: RecordingQueue, graph_server: GraphServer, speech_server: SpeechServer
) -> None:
    arrive(whatsapp_text("Vous avez des sandales ?"))
    queue.run(app)
    assert audio_sent(graph_server) == [] and len(bodies(graph_server)) == 1
    assert speech_server.requests == []


@pytest.mark.parametrize("fails", ["speech", "upload"])
def test_a_failure_leaves_the_text_reply_alone(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    speech_server: SpeechServer,
    logs: io.StringIO,
    fails: str,
) -> None:
    if fails == "speech":
        speech_server.status = 503
    else:
        graph_server.fail(None, Fail(400, 100))  # the text goes, the upload is refused
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert queue.failures == []  # never raised into the turn: nothing retried, nothing lost
    assert audio_sent(graph_server) == [] and len(bodies(graph_server)) == 1
    answer = reply(app, "whatsapp", graph_server.sent[0]["to"])
    assert answer.delivery == "accepted"
    error = "SpeechUnavailableError" if fails == "speech" else "ChannelError"
    assert "voice_note_not_sent" in logs.getvalue() and error in logs.getvalue()
    assert_clean(logs.getvalue(), HEARD, "Sandales en cuir", API_KEY)


def test_prices_are_spoken_as_the_guarded_text_says_them(
    app: App, queue: RecordingQueue, graph_server: GraphServer, speech_server: SpeechServer
) -> None:
    app.llm_override = ListeningLLM(
        Script().then(Reply("Les Sandales en cuir coûtent 9 000 FCFA."))  # not the catalogue's
    )
    arrive(load_event("whatsapp_voice"))
    queue.run(app)
    assert queue.failures == []
    answer = reply(app, "whatsapp", graph_server.sent[0]["to"])
    ((_, said, _),) = speech_server.requests
    assert "9 000" not in answer.text and "9 000" not in said["input"]
    assert said["input"] == spoken(answer.text)
    assert len(audio_sent(graph_server)) == 1


def test_what_is_said_leaves_out_what_is_only_read() -> None:
    text = (
        "Voici :\n- **Sandales** : 17 500 FCFA\n- *Cabas* : 24 000 FCFA\nVoir https://x.example/a"
    )
    assert spoken(text) == "Voici :\nSandales : 17 500 FCFA\nCabas : 24 000 FCFA\nVoir"


def test_make_voice_demo_answers_a_voice_note_in_text_then_in_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests import voice_demo

    monkeypatch.chdir(tmp_path)  # it writes .data/voice-demo-reply.ogg here
    monkeypatch.delenv("TTS_PROVIDER", raising=False)
    assert voice_demo.main() == 0
    printed = capsys.readouterr().out
    assert re.search(r"Sandales en cuir artisanales\* : 17\s500 FCFA", printed), printed
    assert "shop (voice note)" in printed
    check_ogg_opus((tmp_path / voice_demo.OUT).read_bytes())
