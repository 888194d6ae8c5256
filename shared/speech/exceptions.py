"""Errors of the speech (text-to-speech) port, translated from each backend's own errors."""

from __future__ import annotations

from shared.exceptions import ComptoirError


class SpeechError(ComptoirError):
    """The provider refused to speak the text (a bad voice, a key refused, a text too long)."""


class SpeechUnavailableError(SpeechError):
    """No audio can be made now: the provider is down or slow, or this machine lacks what the
    backend needs (espeak-ng, the OGG/Opus encoder)."""
