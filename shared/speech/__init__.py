"""The speech (text-to-speech) port and the factory that picks a provider from its config.

Voice notes out (``shared/channels/voice_notes.py``): a reply to a customer's voice note is also
sent spoken. The port reads no settings (``speech_config`` there turns them into a
``SpeechConfig``); each backend is imported only when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.backends import choose, load_target
from shared.speech.base import OGG_OPUS, Speech, SpeechAudio
from shared.speech.exceptions import SpeechError, SpeechUnavailableError


@dataclass(frozen=True)
class Provider:
    target: str  # "module:Class", imported only when the provider is used
    base_url: str  # the API's root (TTS_API_BASE replaces it)
    default_model: str
    default_voice: str


PROVIDERS: dict[str, Provider] = {
    "offline": Provider("shared.speech.offline:OfflineSpeech", "", "espeak-ng", ""),
    "openai": Provider(
        "shared.speech.openai:OpenAISpeech", "https://api.openai.com", "gpt-4o-mini-tts", "alloy"
    ),
    "gemini": Provider(
        "shared.speech.gemini:GeminiSpeech",
        "https://generativelanguage.googleapis.com",
        "gemini-2.5-flash-preview-tts",
        "Kore",
    ),
}


@dataclass(frozen=True)
class SpeechConfig:
    provider: str = "offline"
    model: str = ""  # empty: the provider's default
    api_key: str | None = None
    base_url: str | None = None  # None: the provider's own
    timeout: float = 20.0


def open_speech(config: SpeechConfig, **clients: Any) -> Speech:
    """Build one provider's speech backend; an HTTP client may be injected (``client=``)."""
    unknown = f"TTS_PROVIDER: unknown provider {config.provider!r} (have: {', '.join(PROVIDERS)})"
    provider = choose(PROVIDERS, config.provider, unknown)
    speech: Speech = load_target(provider.target)(
        base_url=config.base_url or provider.base_url,
        api_key=config.api_key,
        model=config.model or provider.default_model,
        default_voice=provider.default_voice,
        timeout=config.timeout,
        **clients,
    )
    return speech


__all__ = [
    "OGG_OPUS",
    "PROVIDERS",
    "Speech",
    "SpeechAudio",
    "SpeechConfig",
    "SpeechError",
    "SpeechUnavailableError",
    "open_speech",
]
