"""Speech-to-text for voice notes: OpenAI's audio transcriptions endpoint (through the real SDK
on a loopback server), Gemini's audio input (on the loopback Gemini server), and the
resilient chain picking a provider that can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from shared.exceptions import LLMRequestError, LLMUnavailableError
from shared.llm import LLMConfig, open_llm
from shared.llm.resilient import ResilientLLM
from tests.llm.conftest import ProviderUnderTest
from tests.llm.script import Reply
from tests.loopback import serving

VOICE = b"OggS\x00\x02" + bytes(range(256)) * 4


class TranscriptionServer:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status = 200

    def handler(self) -> type[BaseHTTPRequestHandler]:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                state.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                ok = self.path == "/v1/audio/transcriptions" and state.status == 200
                payload: dict[str, Any] = (
                    {"text": "  Je voudrais des sandales  "}
                    if ok
                    else {"error": {"message": "boom", "type": "server_error", "code": None}}
                )
                data = json.dumps(payload).encode()
                self.send_response(200 if ok else state.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def transcriptions() -> Iterator[tuple[TranscriptionServer, str]]:
    state = TranscriptionServer()
    with serving(state.handler(), "transcription-server") as server:
        yield state, f"{server.root}/v1"


def test_openai_transcribes_through_the_audio_endpoint(
    transcriptions: tuple[TranscriptionServer, str],
) -> None:
    state, base_url = transcriptions
    llm = open_llm(LLMConfig("openai", "gpt-4o-mini", "sk-test", base_url, timeout=5))
    assert llm.supports_audio
    assert llm.transcribe(VOICE, "audio/ogg; codecs=opus") == "Je voudrais des sandales"
    (body,) = state.bodies
    assert b'name="model"\r\n\r\ngpt-4o-mini-transcribe' in body
    assert b'filename="voice.ogg"' in body and VOICE in body
    state.status = 500
    with pytest.raises(LLMUnavailableError):
        llm.transcribe(VOICE, "audio/ogg")


def test_other_compatible_providers_do_not_claim_speech() -> None:
    llm = open_llm(LLMConfig("deepseek", "", "sk-test", "http://127.0.0.1:9", timeout=1))
    assert not llm.supports_audio
    with pytest.raises(LLMRequestError):
        llm.transcribe(VOICE, "audio/ogg")


def test_gemini_reads_the_audio_itself(gemini_provider: ProviderUnderTest) -> None:
    gemini_provider.script.then(Reply("Je voudrais des sandales"))
    llm = gemini_provider.make()
    assert llm.supports_audio
    assert llm.transcribe(VOICE, "audio/ogg; codecs=opus") == "Je voudrais des sandales"
    (seen,) = gemini_provider.script.seen
    (message,) = seen.messages
    assert "Transcribe" in message["text"] and message["images"] == 1  # the audio part
    assert seen.tools == []


def test_the_resilient_chain_transcribes_with_a_provider_that_can(
    transcriptions: tuple[TranscriptionServer, str],
) -> None:
    _, base_url = transcriptions
    offline = open_llm(LLMConfig("offline"))
    assert not offline.supports_audio
    chain = ResilientLLM([offline, open_llm(LLMConfig("openai", "m", "sk", base_url, timeout=5))])
    assert chain.supports_audio
    assert chain.transcribe(VOICE, "audio/ogg") == "Je voudrais des sandales"
    alone = ResilientLLM([offline])
    assert not alone.supports_audio
    with pytest.raises(LLMRequestError):
        alone.transcribe(VOICE, "audio/ogg")
