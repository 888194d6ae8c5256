"""WhatsApp and Telegram: webhooks that store and queue (``receive``), a worker that answers
(``turn``), and senders that share one retry loop (``base``).

Senders and their HTTP client are imported only by the worker: a webhook never sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.channels.base import Retry
from shared.exceptions import ConfigError
from shared.models import Shop, WhatsAppTemplate

if TYPE_CHECKING:
    from shared.app import App
    from shared.channels.base import Channel
    from shared.settings import Settings

RETRY = Retry()  # tests replace it with one that does not really sleep


def open_channel(app: App, shop: Shop, name: str) -> Channel:
    """The sender of ``shop`` on channel ``name``, from the settings."""
    settings = app.settings
    if name == "whatsapp":
        from shared.channels.whatsapp.sender import WhatsAppChannel

        number = shop.whatsapp_phone_number_id or _default(settings, shop, "phone_number_id")
        if settings.whatsapp_access_token is None or not number:
            raise ConfigError(
                "WhatsApp: set WHATSAPP_ACCESS_TOKEN and the shop's phone number id"
                " (WHATSAPP_PHONE_NUMBER_ID for DEFAULT_SHOP)"
            )
        return WhatsAppChannel(
            base_url=settings.whatsapp_api_base,
            token=settings.whatsapp_access_token.get_secret_value(),
            phone_number_id=number,
            template=shop.whatsapp_template or WhatsAppTemplate(),
            retry=RETRY,
            max_media_bytes=settings.media_max_bytes,
        )
    if name == "telegram":
        from shared.channels.telegram.sender import TelegramChannel

        if settings.telegram_bot_token is None:
            raise ConfigError("Telegram: set TELEGRAM_BOT_TOKEN")
        return TelegramChannel(
            base_url=settings.telegram_api_base,
            token=settings.telegram_bot_token.get_secret_value(),
            retry=RETRY,
            max_media_bytes=settings.media_max_bytes,
        )
    raise ConfigError(f"no sender for channel {name!r}")


def operators(settings: Settings, shop: Shop) -> list[tuple[str, str]]:
    """Where the shop's operator is told of handoffs: (channel, address) pairs."""
    found = []
    whatsapp = shop.operator_whatsapp or _default(settings, shop, "operator")
    if whatsapp:
        found.append(("whatsapp", "".join(ch for ch in whatsapp if ch.isdigit())))
    telegram = shop.operator_telegram_chat_id or _default(settings, shop, "telegram_operator")
    if telegram:
        found.append(("telegram", telegram.strip()))
    return found


def _default(settings: Settings, shop: Shop, what: str) -> str | None:
    """DEFAULT_SHOP's channel settings come from the environment."""
    if shop.id != settings.default_shop:
        return None
    return {
        "phone_number_id": settings.whatsapp_phone_number_id,
        "operator": settings.whatsapp_operator,
        "telegram_operator": settings.telegram_operator_chat_id,
    }[what]
