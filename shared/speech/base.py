"""The speech port: text in, a voice note out (OGG/Opus, what WhatsApp and Telegram play as a
voice message).

A backend implements ``_synthesize``; the base checks the arguments and says whether the backend
speaks at all (``speaks``: the offline one without espeak-ng does not, and is never called).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

OGG_OPUS = "audio/ogg"
MAX_TEXT_CHARS = 4096  # OpenAI's limit for one request; a longer reply stays text only
MIN_SPEED, MAX_SPEED = 0.25, 4.0


@dataclass(frozen=True)
class SpeechAudio:
    data: bytes  # an OGG/Opus file
    duration_s: float
    mime_type: str = OGG_OPUS


class Speech(ABC):
    """Text-to-speech. Thread-safe; errors are ``shared.speech.exceptions``'s."""

    name: ClassVar[str]

    @property
    def speaks(self) -> bool:
        """Whether ``synthesize`` can make audio at all (False: the caller sends text only)."""
        return True

    def synthesize(self, text: str, voice: str, language: str, speed: float = 1.0) -> SpeechAudio:
        """``text`` spoken in ``language`` (an ISO 639-1 code) by ``voice`` (empty: the
        backend's default) at ``speed`` (1.0 normal)."""
        text = text.strip()
        if not text or len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"speak 1 to {MAX_TEXT_CHARS} characters")
        speed = min(max(speed, MIN_SPEED), MAX_SPEED)
        return self._synthesize(text, voice, language, speed)

    @abstractmethod
    def _synthesize(self, text: str, voice: str, language: str, speed: float) -> SpeechAudio: ...
