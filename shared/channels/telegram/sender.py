"""Telegram Bot API sender: messages with inline buttons, the typing action, files, the webhook.

The bot token is part of every URL, so no URL ever reaches an error message or a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.channels.base import (
    Channel,
    Choice,
    Failure,
    Fetched,
    Link,
    Retry,
    Sent,
    default_shop_setting,
    shorten,
)
from shared.exceptions import ConfigError
from shared.models import Media, Shop

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings

CALLBACK_BYTES = 64  # callback_data limit
BUTTON_TEXT = 64  # keep buttons readable on a phone


class TelegramChannel(Channel):
    name = "telegram"
    voice_notes = True

    @classmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> TelegramChannel:
        if settings.telegram_bot_token is None:
            raise ConfigError("Telegram: set TELEGRAM_BOT_TOKEN")
        return cls(
            base_url=settings.telegram_api_base,
            token=settings.telegram_bot_token.get_secret_value(),
            retry=retry,
            max_media_bytes=settings.media_max_bytes,
        )

    @staticmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        chat = shop.operator_telegram_chat_id or default_shop_setting(
            settings, shop, settings.telegram_operator_chat_id
        )
        return chat.strip() if chat else None

    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        payload: dict[str, Any] = {"chat_id": to, "text": text}
        opens = [[{"text": shorten(link.label, BUTTON_TEXT), "url": link.url}]] if link else []
        buttons = opens + [
            [{"text": shorten(c.title, BUTTON_TEXT), "callback_data": c.id}]
            for c in choices
            if len(c.id.encode()) <= CALLBACK_BYTES
        ]
        if buttons:
            payload["reply_markup"] = {"inline_keyboard": buttons}
        result = self.method("sendMessage", payload)
        if not isinstance(result, dict) or "message_id" not in result:
            raise self._error("sendMessage answered without a message id", False)
        return Sent(str(result["message_id"]))

    def send_voice(self, to: str, ogg: bytes) -> Sent:
        voice = {"voice": ("reply.ogg", ogg, "audio/ogg")}
        result = self.method("sendVoice", {"chat_id": to}, files=voice)
        if not isinstance(result, dict) or "message_id" not in result:
            raise self._error("sendVoice answered without a message id", False)
        return Sent(str(result["message_id"]))

    def typing(self, to: str, external_id: str) -> None:
        self.method("sendChatAction", {"chat_id": to, "action": "typing"}, once=True)

    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        mime_type = self.check_media(media.mime_type, None, allowed)
        info = self.method("getFile", {"file_id": media.ref})
        if not isinstance(info, dict) or not isinstance(info.get("file_path"), str):
            raise self._error("file not available for download", False)
        size = info.get("file_size")
        self.check_media(mime_type, size if isinstance(size, int) else None, allowed)
        url = f"{self.base_url}/file/bot{self._token}/{info['file_path']}"
        return self.download(url, {}, mime_type)

    def set_webhook(self, url: str, secret: str) -> None:
        self.method(
            "setWebhook",
            {
                "url": url,
                "secret_token": secret,
                "allowed_updates": ["message", "edited_message", "callback_query"],
            },
        )

    def method(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        once: bool = False,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        """A Bot API method; with ``files``, a multipart upload (``payload`` its string
        fields)."""
        url = f"{self.base_url}/bot{self._token}/{name}"
        if files:
            body = self.call("POST", url, data=payload, files=files, once=once)
        else:
            body = self.call("POST", url, json=payload, once=once)
        if body.get("ok") is not True:
            raise self._error(f"{name} not ok", False)
        return body.get("result")

    def failure(self, response: httpx.Response) -> Failure:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else None
        status = response.status_code
        parameters = body.get("parameters")
        asked = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return Failure(
            self._error(f"HTTP {status}", status == 429 or status >= 500, code),
            float(asked) if isinstance(asked, int | float) else None,
        )
