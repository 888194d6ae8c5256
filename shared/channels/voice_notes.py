"""Voice notes out: a reply to a customer's voice note goes as text, then spoken.

After the text reply is accepted, its stored (price-guarded) text is spoken by the speech port
(TTS_PROVIDER) in the reply's language with the shop's voice and speed, kept in the media blob
store, and sent as a voice note (WhatsApp: media upload then an audio message; Telegram:
sendVoice). Once per reply, whatever the number of deliveries. Any failure (no speech, the
provider down, the upload refused) leaves the text alone: it is logged by kind and never raised
into the turn.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared import conversations
from shared.channels.base import BOLD, Channel
from shared.exceptions import ComptoirError
from shared.llm_chain import provider_key
from shared.log import log_event
from shared.speech import SpeechConfig
from shared.store.idempotency import Idempotency

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Conversation, Message, Shop
    from shared.settings import Settings
    from shared.speech import SpeechAudio

VOICE_KINDS = frozenset({"voice", "audio"})
KEY_PREFIX = "voice-notes"
_URL = re.compile(r"\s*https?://\S+")  # a link is read on screen, not heard
_BULLET = re.compile(r"^\s*[-•]\s+", re.MULTILINE)  # a list's dash would be said aloud


def speech_config(settings: Settings) -> SpeechConfig:
    """TTS_* as the speech port's config; the key is LLM_API_KEY when the LLM provider is the
    same, else the provider's own variable."""
    provider = settings.tts_provider
    own = settings.llm_api_key if settings.llm_provider == provider else None
    return SpeechConfig(
        provider=provider,
        model=settings.tts_model,
        api_key=(own.get_secret_value() if own else None) or provider_key(settings, provider),
        base_url=settings.tts_api_base,
        timeout=settings.tts_timeout,
    )


def answers_voice(pending: Sequence[Message]) -> bool:
    """Whether the customer's messages a reply answers hold a voice note."""
    return any(m.media is not None and m.media.kind in VOICE_KINDS for m in pending)


def spoken(text: str) -> str:
    """The reply as it is said: no Markdown emphasis, list dashes or links."""
    return _URL.sub("", _BULLET.sub("", BOLD.sub(r"\1", text))).replace("*", "").strip()


def send_voice_note(
    app: App, shop: Shop, conversation: Conversation, channel: Channel, reply_id: str, lang: str
) -> None:
    """Speak and send the reply ``reply_id`` if the shop and the channel allow it and its text
    went as written (not a template in its place). Never raises."""
    wanted = shop.voice_notes
    if not wanted.enabled or not channel.voice_notes or conversation.channel_user is None:
        return
    try:
        speech = app.speech
        if not speech.speaks:
            return
        reply = conversations.message(app.store, shop.id, conversation.id, reply_id)
        if reply is None or reply.delivery != "accepted" or not spoken(reply.text):
            return
        with Idempotency(app.store).once(shop.id, f"voice:{reply_id}") as first:
            if not first:
                return
            audio = speech.synthesize(spoken(reply.text), wanted.voice, lang, wanted.speed)
            _keep(app, shop, reply_id, audio)
            channel.send_voice(conversation.channel_user, audio.data)
    except (ComptoirError, ValueError) as error:  # ValueError: a text over the port's limit
        log_event(
            "voice_note_not_sent", channel=channel.name, shop=shop.id, error=type(error).__name__
        )
        return
    log_event(
        "voice_note_sent", channel=channel.name, shop=shop.id, seconds=round(audio.duration_s, 1)
    )


def _keep(app: App, shop: Shop, reply_id: str, audio: SpeechAudio) -> None:
    """The voice note in the media store, under a dated prefix a bucket lifecycle rule expires
    (the blob port has no expiry of its own). Failing to keep it does not stop the send."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    key = f"{KEY_PREFIX}/{day}/{shop.id}/{reply_id}.ogg"
    try:
        app.media_blob.put(key, audio.data, content_type=audio.mime_type)
    except ComptoirError as error:
        log_event("voice_note_not_kept", shop=shop.id, error=type(error).__name__)
