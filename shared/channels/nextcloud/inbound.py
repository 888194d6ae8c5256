"""Nextcloud Talk's bot webhook: every post is signed (``X-Nextcloud-Talk-Signature``, the hex
HMAC-SHA256 under the bot's secret of ``X-Nextcloud-Talk-Random`` followed by the raw body),
comes from a server in NEXTCLOUD_ALLOWED_BACKENDS (``X-Nextcloud-Talk-Backend``), and carries a
random used once: a post sent again with its random is refused (``ReplayedError``) for
``RANDOM_WINDOW``, and a message is stored and queued once whatever the number of posts
(``receive``, by server, conversation and message id).

A person's message in a conversation where the bot is enabled is answered in that conversation;
the bot being added or removed, reactions and other bots' messages are acknowledged and
ignored. A conversation belongs to DEFAULT_SHOP unless ``python -m shared nextcloud-conversation``
gave it to another shop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.channels.exceptions import (
    MissingSignatureError,
    ReplayedError,
    SignatureError,
    UnknownBackendError,
)
from shared.channels.nextcloud.models import TOKEN, Activity, room_address
from shared.channels.nextcloud.sender import signature
from shared.channels.receive import ROUTES, Inbound, add_route, receive, route_key
from shared.channels.webhook import Handled, Headers, Webhook, equal
from shared.log import log_event
from shared.store.idempotency import Idempotency, record_id

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop

RANDOM_WINDOW = 24 * 3600.0  # seconds a post's random is remembered
MAX_RANDOM = 256  # Talk sends 64 characters


class NextcloudWebhook(Webhook[Activity]):
    """One post's checks and handling. ``verify`` keeps the post's server and random for
    ``handle``, which has the settings and the store to check them (an instance per post)."""

    update = Activity
    backend = ""
    random = ""

    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        self.random = check_signature(body, header, secret)
        self.backend = header("x-nextcloud-talk-backend").strip().rstrip("/")

    def handle(self, app: App, update: Activity, secret: str) -> Handled:
        settings = app.settings
        if not self.backend or self.backend not in settings.nextcloud_allowed_backends:
            raise UnknownBackendError("X-Nextcloud-Talk-Backend is not an allowed server")
        window = Idempotency(app.store, ttl=RANDOM_WINDOW)
        if not window.claim(settings.default_shop, f"nextcloud-random:{self.random}"):
            raise ReplayedError("this post was already received")
        inbound = to_inbound(update, self.backend)
        if inbound is None:
            log_event("nextcloud_webhook", kind=update.kind, received=False)
            return Handled()
        shop = shop_for(app, inbound.user)
        received = receive(app, shop, inbound, secret) == "received"
        log_event("nextcloud_webhook", shop=shop.id, kind=update.kind, received=received)
        return Handled(shop.id)


def check_signature(body: bytes, header: Headers, secret: str) -> str:
    """The post's random, once its signature is the one ``secret`` gives the random and body."""
    random, given = header("x-nextcloud-talk-random"), header("x-nextcloud-talk-signature")
    if not random or not given:
        raise MissingSignatureError(
            "X-Nextcloud-Talk-Random and X-Nextcloud-Talk-Signature are required"
        )
    if len(random) > MAX_RANDOM:
        raise SignatureError("X-Nextcloud-Talk-Random is too long")
    if not equal(given.strip().lower(), signature(secret, random, body)):
        raise SignatureError("the signature does not match the body")
    return random


def to_inbound(activity: Activity, backend: str) -> Inbound | None:
    """A person's chat message, or None for what gets no answer."""
    content, target = activity.object.content, activity.target
    if activity.kind != "message" or content is None or target is None:
        return None
    if activity.actor.type != "Person" or not TOKEN.fullmatch(target.id):
        return None  # bots (another's messages) and what has no conversation to answer in
    text = content.text
    if not text.strip():
        return None
    room = room_address(backend, target.id)
    return Inbound(
        channel="nextcloud",
        user=room,
        key=f"{room}/{activity.object.id}",
        text=text,
        at=time.time(),  # a post carries no time; Talk sends it as the message is written
        name=activity.actor.name,
    )


def shop_for(app: App, room: str) -> Shop:
    """The shop ``room`` was given to, else DEFAULT_SHOP."""
    default = app.settings.default_shop
    route = app.store.get(default, ROUTES, route_key("nextcloud", record_id(room)))
    return app.shops.get(route.data["shop"] if route is not None else default)


def give_conversation(app: App, shop_id: str, backend: str, token: str) -> None:
    """Answer the conversation ``token`` of ``backend`` for ``shop_id`` (create-only: a
    conversation belongs to one shop; the shop must exist)."""
    room = room_address(backend, token)
    add_route(app, app.shops.get(shop_id).id, "nextcloud", record_id(room))
