"""Gemini's speech generation (a TTS model's ``generateContent`` with the AUDIO modality). It
answers raw PCM (mono, signed 16-bit, 24 kHz), encoded here to OGG/Opus with PyAV; without
PyAV the backend raises SpeechUnavailableError and the reply stays text. Gemini takes no speed:
the prompt asks for it."""

from __future__ import annotations

import base64
import binascii

from shared.speech.base import SpeechAudio
from shared.speech.exceptions import SpeechError
from shared.speech.ogg import opus_duration, opus_from_pcm
from shared.speech.openai import LANGUAGE_NAMES
from shared.speech.remote import RemoteSpeech

PCM_RATE = 24_000


class GeminiSpeech(RemoteSpeech):
    name = "gemini"

    def _synthesize(self, text: str, voice: str, language: str, speed: float) -> SpeechAudio:
        pace = "" if speed == 1.0 else f" at {speed:g} times the normal pace"
        said = f"Say in {LANGUAGE_NAMES.get(language, language)}{pace}: {text}"
        payload = {
            "contents": [{"parts": [{"text": said}]}],
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {
                    "voiceConfig": {
                        "prebuiltVoiceConfig": {"voiceName": voice or self.default_voice}
                    }
                },
            },
        }
        headers = {"x-goog-api-key": self._api_key}
        answer = self.post(f"/v1beta/models/{self.model}:generateContent", payload, headers)
        try:
            part = answer.json()["candidates"][0]["content"]["parts"][0]["inlineData"]
            pcm = base64.b64decode(part["data"], validate=True)
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
            raise SpeechError("gemini: an answer without audio") from None
        data = opus_from_pcm(pcm, PCM_RATE)
        return SpeechAudio(data, opus_duration(data))
