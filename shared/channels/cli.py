"""Operator commands for the channels, added to ``python -m shared``:

* ``telegram-webhook``: register this deployment's webhook with Telegram (setWebhook, with
  ``TELEGRAM_WEBHOOK_SECRET`` as the secret Telegram sends back on every update);
* ``whatsapp-number PHONE_NUMBER_ID --shop SHOP``: answer a WhatsApp number for a shop other
  than DEFAULT_SHOP (which owns ``WHATSAPP_PHONE_NUMBER_ID``);
* ``nextcloud-conversation BACKEND TOKEN --shop SHOP``: answer a Nextcloud Talk conversation for
  a shop other than DEFAULT_SHOP (which answers every other conversation of the allowed servers).
* ``messenger-page PAGE_ID --shop SHOP [--instagram]``: answer a Facebook Page's Messenger (or,
  with ``--instagram``, an Instagram account id) for a shop other than DEFAULT_SHOP (which owns
  ``MESSENGER_PAGE_ID`` and ``INSTAGRAM_ACCOUNT_ID``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Literal

from shared.exceptions import ComptoirError, ConfigError, InvalidInputError

if TYPE_CHECKING:
    from shared.app import App

COMMANDS = ("telegram-webhook", "whatsapp-number", "nextcloud-conversation", "messenger-page")
WEBHOOK_PATH = "/webhooks/telegram"
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what Telegram accepts as secret_token


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the channel commands to the CLI's ``add_subparsers()`` object."""
    cmd = subparsers.add_parser(
        "telegram-webhook", help="register the Telegram webhook (setWebhook with the secret)"
    )
    cmd.add_argument("--url", help=f"default: PUBLIC_BASE_URL + {WEBHOOK_PATH}")
    cmd = subparsers.add_parser(
        "whatsapp-number", help="route a WhatsApp phone number id to a shop"
    )
    cmd.add_argument("phone_number_id", metavar="PHONE_NUMBER_ID")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd = subparsers.add_parser(
        "nextcloud-conversation", help="route a Nextcloud Talk conversation to a shop"
    )
    cmd.add_argument("backend", metavar="BACKEND", help="the server's base URL")
    cmd.add_argument("token", metavar="TOKEN", help="the conversation's token (its URL's end)")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd = subparsers.add_parser(
        "messenger-page", help="route a Facebook Page id (or Instagram account id) to a shop"
    )
    cmd.add_argument("page_id", metavar="PAGE_ID")
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--instagram", action="store_true", help="PAGE_ID is an Instagram account id")


def run(args: argparse.Namespace) -> int:
    """Run a command added by ``add_commands``; 0 on success, 2 on error (printed)."""
    from shared.app import get_app

    try:
        app = get_app()
        if args.command == "telegram-webhook":
            url = telegram_webhook(app, args.url)
            print(f"Telegram now sends updates to {url}")
        elif args.command == "whatsapp-number":
            shop = args.shop or app.settings.default_shop
            whatsapp_number(app, shop, args.phone_number_id)
            print(f"WhatsApp number {args.phone_number_id} now answers for shop {shop}")
        elif args.command == "nextcloud-conversation":
            shop = args.shop or app.settings.default_shop
            nextcloud_conversation(app, shop, args.backend, args.token)
            print(f"Nextcloud Talk conversation {args.token} now answers for shop {shop}")
        elif args.command == "messenger-page":
            shop = args.shop or app.settings.default_shop
            channel: Literal["messenger", "instagram"] = (
                "instagram" if args.instagram else "messenger"
            )
            messenger_page(app, shop, channel, args.page_id)
            print(f"{channel.capitalize()} account {args.page_id} now answers for shop {shop}")
        else:
            raise InvalidInputError(f"not a channel command: {args.command}")
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def telegram_webhook(app: App, url: str | None = None) -> str:
    from shared.channels import open_channel
    from shared.channels.telegram.sender import TelegramChannel

    settings = app.settings
    secret = settings.telegram_webhook_secret
    if secret is None or not _SECRET_RE.match(secret.get_secret_value()):
        raise ConfigError("TELEGRAM_WEBHOOK_SECRET: set 1-256 characters of A-Z, a-z, 0-9, _ and -")
    url = url or settings.public_base_url.rstrip("/") + WEBHOOK_PATH
    channel = open_channel(app, app.shops.get(settings.default_shop), "telegram")
    assert isinstance(channel, TelegramChannel)
    channel.set_webhook(url, secret.get_secret_value())
    return url


def whatsapp_number(app: App, shop_id: str, phone_number_id: str) -> None:
    from shared.channels.receive import add_route
    from shared.shops import update_shop

    if not phone_number_id.isdigit():
        raise InvalidInputError(
            "a phone number id is the digits Meta shows in WhatsApp > API Setup"
        )
    shop = app.shops.get(shop_id)  # the shop must exist
    add_route(app, shop.id, "whatsapp", phone_number_id)
    update_shop(app.store, shop.id, {"whatsapp_phone_number_id": phone_number_id})


def nextcloud_conversation(app: App, shop_id: str, backend: str, token: str) -> None:
    from shared.channels.nextcloud.inbound import give_conversation
    from shared.channels.nextcloud.models import TOKEN

    backend = backend.rstrip("/")
    if backend not in app.settings.nextcloud_allowed_backends:
        raise InvalidInputError(f"{backend} is not in NEXTCLOUD_ALLOWED_BACKENDS")
    if not TOKEN.fullmatch(token):
        raise InvalidInputError("a conversation token is the letters and digits ending its URL")
    give_conversation(app, shop_id, backend, token)


def messenger_page(
    app: App, shop_id: str, channel: Literal["messenger", "instagram"], account: str
) -> None:
    from shared.channels.receive import add_route

    if not account.isdigit():
        raise InvalidInputError(
            "a Page id or Instagram account id is the digits Meta shows in the app's"
            " Messenger (or Instagram) settings"
        )
    add_route(app, app.shops.get(shop_id).id, channel, account)  # the shop must exist
