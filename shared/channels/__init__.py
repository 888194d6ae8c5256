"""WhatsApp and Telegram: webhooks that store and queue (``receive``), a worker that answers
(``turn``), and senders that share one retry loop (``base``).

Each channel is a package (``whatsapp/``, ``telegram/``) registered in ``CHANNELS``, its parts
imported only when used: a webhook's checks and handling by its function, a sender by the worker
(the HTTP client only on a first send: a webhook never sends). ``README.md`` says how to add
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.backends import choose, load_target
from shared.channels.base import Retry

if TYPE_CHECKING:
    from shared.app import App
    from shared.channels.base import Channel
    from shared.channels.webhook import Webhook
    from shared.models import Shop
    from shared.settings import Settings

RETRY = Retry()  # tests replace it with one that does not really sleep


@dataclass(frozen=True)
class ChannelPlugin:
    sender: str  # "module:Class", a Channel: from_settings reads what sending needs
    webhook: str  # "module:Class", a Webhook: verify, parse, handle
    secret: str  # the setting (Settings field) every post to the webhook is checked against


CHANNELS: dict[str, ChannelPlugin] = {
    "whatsapp": ChannelPlugin(
        "shared.channels.whatsapp.sender:WhatsAppChannel",
        "shared.channels.whatsapp.inbound:WhatsAppWebhook",
        "whatsapp_app_secret",
    ),
    "telegram": ChannelPlugin(
        "shared.channels.telegram.sender:TelegramChannel",
        "shared.channels.telegram.inbound:TelegramWebhook",
        "telegram_webhook_secret",
    ),
    "nextcloud": ChannelPlugin(
        "shared.channels.nextcloud.sender:NextcloudChannel",
        "shared.channels.nextcloud.inbound:NextcloudWebhook",
        "nextcloud_bot_secret",
    ),
    "email": ChannelPlugin(
        "shared.channels.email.sender:EmailChannel",
        "shared.channels.email.inbound:EmailWebhook",
        "email_inbound_secret",
    ),
    # One webhook for both (a post says "page" or "instagram"), one class on one API and token.
    "messenger": ChannelPlugin(
        "shared.channels.messenger.sender:MessengerChannel",
        "shared.channels.messenger.inbound:MessengerWebhook",
        "messenger_app_secret",
    ),
    "instagram": ChannelPlugin(
        "shared.channels.messenger.sender:InstagramChannel",
        "shared.channels.messenger.inbound:MessengerWebhook",
        "messenger_app_secret",
    ),
}


def open_channel(app: App, shop: Shop, name: str) -> Channel:
    """The sender of ``shop`` on channel ``name``, from the settings."""
    return sender_for(app.settings, shop, name)


def sender_for(settings: Settings, shop: Shop, name: str) -> Channel:
    """``open_channel`` for a caller holding the settings rather than the App (a chat turn)."""
    plugin = choose(CHANNELS, name, f"no sender for channel {name!r}")
    sender: type[Channel] = load_target(plugin.sender)
    return sender.from_settings(settings, shop, RETRY)


def open_webhook(name: str) -> Webhook[Any]:
    """Channel ``name``'s inbound side."""
    webhook: type[Webhook[Any]] = load_target(CHANNELS[name].webhook)
    return webhook()


def operators(settings: Settings, shop: Shop) -> list[tuple[str, str]]:
    """Where the shop's operator is told of handoffs: (channel, address) pairs."""
    found = []
    for name, plugin in CHANNELS.items():
        sender: type[Channel] = load_target(plugin.sender)
        address = sender.operator(settings, shop)
        if address is not None:
            found.append((name, address))
    return found
