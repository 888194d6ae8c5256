"""The speech port's contract over its backends: OpenAI's /v1/audio/speech and Gemini's TTS
against a loopback provider, and the offline backend (espeak-ng where installed). Every backend
gives a real OGG/Opus voice note (container and duration checked), or one of the port's errors."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.channels.voice_notes import speech_config
from shared.exceptions import ConfigError
from shared.settings import Settings
from shared.speech import (
    Speech,
    SpeechConfig,
    SpeechError,
    SpeechUnavailableError,
    open_speech,
)
from shared.speech.ogg import opus_duration
from tests.fixtures.speech_server import API_KEY, SECONDS, SpeechServer, check_ogg_opus, tone_ogg
from tests.loopback import free_port

ESPEAK = shutil.which("espeak-ng")
SAID = "Les sandales en cuir coûtent 15 000 FCFA."


def remote(provider: str, server: SpeechServer) -> Speech:
    config = SpeechConfig(provider, api_key=API_KEY, base_url=server.base_url, timeout=5)
    return open_speech(config)


@pytest.fixture(params=["openai", "gemini", "offline"])
def backend(request: pytest.FixtureRequest, speech_server: SpeechServer) -> Iterator[Speech]:
    if request.param == "offline":
        if ESPEAK is None:
            message = "espeak-ng is not installed (apt-get install espeak-ng)"
            if os.environ.get("CI"):  # .ci/run installs it: a missing one is a failure there
                pytest.fail(message)
            pytest.skip(message)
        yield open_speech(SpeechConfig())
    else:
        yield remote(request.param, speech_server)


def test_every_backend_speaks_an_ogg_opus_voice_note(backend: Speech) -> None:
    audio = backend.synthesize(SAID, "", "fr", 1.0)
    assert audio.mime_type == "audio/ogg"
    duration = check_ogg_opus(audio.data)
    assert audio.duration_s == pytest.approx(duration)
    assert 0.5 < duration < 10
    with pytest.raises(ValueError, match="characters"):
        backend.synthesize("   ", "", "fr")
    with pytest.raises(ValueError, match="characters"):
        backend.synthesize("a" * 4097, "", "fr")


def test_openai_asks_for_opus_and_passes_the_file_on(speech_server: SpeechServer) -> None:
    audio = remote("openai", speech_server).synthesize(SAID, "nova", "fr", 9.0)
    assert audio.data == tone_ogg()  # as the provider made it: nothing re-encoded
    assert audio.duration_s == pytest.approx(SECONDS, abs=0.03)
    ((path, body, headers),) = speech_server.requests
    assert path == "/v1/audio/speech"
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert body["model"] == "gpt-4o-mini-tts" and body["voice"] == "nova"
    assert body["input"] == SAID and body["response_format"] == "opus"
    assert body["speed"] == 4.0  # the port keeps the speed within what providers take
    assert "French" in body["instructions"]


def test_gemini_pcm_is_encoded_to_ogg_opus(speech_server: SpeechServer) -> None:
    audio = remote("gemini", speech_server).synthesize(SAID, "", "en", 1.0)
    assert check_ogg_opus(audio.data) == pytest.approx(SECONDS, abs=0.05)
    ((path, body, headers),) = speech_server.requests
    assert path == "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"
    assert headers["x-goog-api-key"] == API_KEY
    config = body["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    assert config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"
    assert body["contents"][0]["parts"][0]["text"].endswith(SAID)


def test_gemini_without_pyav_is_unavailable(
    speech_server: SpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(SpeechUnavailableError, match="PyAV"):
        remote("gemini", speech_server).synthesize(SAID, "", "fr")


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, SpeechUnavailableError), (429, SpeechUnavailableError), (400, SpeechError)],
)
@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_provider_errors_become_the_ports(
    speech_server: SpeechServer, provider: str, status: int, error: type[SpeechError]
) -> None:
    speech_server.status = status
    with pytest.raises(error) as raised:
        remote(provider, speech_server).synthesize(SAID, "", "fr")
    assert (status == 400) is (type(raised.value) is SpeechError)
    assert SAID not in str(raised.value) and API_KEY not in str(raised.value)


def test_an_unreachable_provider_is_unavailable() -> None:
    config = SpeechConfig("openai", api_key="k", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SpeechUnavailableError):
        open_speech(config).synthesize(SAID, "", "fr")


def test_offline_without_espeak_speaks_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng there
    offline = open_speech(SpeechConfig())
    assert not offline.speaks
    with pytest.raises(SpeechUnavailableError, match="espeak-ng"):
        offline.synthesize(SAID, "", "fr")


def test_an_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TTS_PROVIDER"):
        open_speech(SpeechConfig("elevenlabs"))


def test_the_key_is_the_llms_when_the_provider_is_the_same() -> None:
    same = Settings.from_env(
        {"TTS_PROVIDER": "openai", "LLM_PROVIDER": "openai", "LLM_API_KEY": "sk-llm"},
        env_file=None,
    )
    assert speech_config(same).api_key == "sk-llm"
    other = Settings.from_env(
        {
            "TTS_PROVIDER": "openai",
            "LLM_PROVIDER": "gemini",
            "LLM_API_KEY": "gm-llm",
            "OPENAI_API_KEY": "sk-own",
            "TTS_API_BASE": "http://127.0.0.1:8090",
        },
        env_file=None,
    )
    config = speech_config(other)
    assert (config.api_key, config.base_url) == ("sk-own", "http://127.0.0.1:8090")


def test_the_duration_is_read_from_the_container() -> None:
    assert opus_duration(tone_ogg(0.5)) == pytest.approx(0.5, abs=0.03)
    for junk in (b"", b"RIFF" + bytes(60), tone_ogg()[:-10]):
        with pytest.raises(ValueError, match="OGG"):
            opus_duration(junk)
