"""OpenAI's speech endpoint (``POST /v1/audio/speech``), asked for Opus: it answers an OGG/Opus
file, sent on as it is. Any server speaking the same endpoint works (TTS_API_BASE)."""

from __future__ import annotations

from shared.speech.base import SpeechAudio
from shared.speech.exceptions import SpeechError
from shared.speech.ogg import opus_duration
from shared.speech.remote import RemoteSpeech

LANGUAGE_NAMES = {"fr": "French", "en": "English"}  # the languages shops speak (models)


class OpenAISpeech(RemoteSpeech):
    name = "openai"

    def _synthesize(self, text: str, voice: str, language: str, speed: float) -> SpeechAudio:
        payload = {
            "model": self.model,
            "voice": voice or self.default_voice,
            "input": text,
            "speed": speed,
            "response_format": "opus",
            # The voice reads the language from the text; the accent follows this.
            "instructions": f"Speak {LANGUAGE_NAMES.get(language, language)}, warmly and clearly.",
        }
        headers = {"Authorization": f"Bearer {self._api_key}"}
        data = self.post("/v1/audio/speech", payload, headers).content
        try:
            return SpeechAudio(data, opus_duration(data))
        except ValueError:
            raise SpeechError("openai: the answer is not an OGG/Opus file") from None
