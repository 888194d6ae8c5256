"""Nextcloud Talk bot sender: ``POST {server}/ocs/v2.php/apps/spreed/api/v1/bot/{token}/message``
signed as the server signs its posts: ``X-Nextcloud-Talk-Bot-Signature`` is the hex HMAC-SHA256,
under the bot's secret, of ``X-Nextcloud-Talk-Bot-Random`` followed by the message text (the
text alone, not the JSON body).

Talk renders Markdown and has no buttons: a reply keeps its Markdown, the products the customer
can pick become a list to answer with, a payment link a Markdown link. A bot can neither show
typing nor download a shared file. Replies go only to the servers in
NEXTCLOUD_ALLOWED_BACKENDS, whatever a conversation's address says.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.channels.base import Channel, Choice, Failure, Fetched, Link, Retry, Sent
from shared.channels.nextcloud.models import split_address
from shared.exceptions import ConfigError
from shared.models import Media, Shop

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings

MESSAGE_PATH = "/ocs/v2.php/apps/spreed/api/v1/bot/{token}/message"


def signature(secret: str, random: str, signed: bytes) -> str:
    """Talk's bot signature, both ways: hex HMAC-SHA256 of ``random`` then ``signed``."""
    return hmac.new(secret.encode(), random.encode() + signed, hashlib.sha256).hexdigest()


class NextcloudChannel(Channel):
    name = "nextcloud"
    text_limit = 32000  # Talk's default chat max-length

    def __init__(
        self,
        *,
        secret: str,
        backends: frozenset[str],
        retry: Retry,
        max_media_bytes: int,
        client: httpx.Client | None = None,
    ) -> None:
        # Each conversation's address names its server: there is no one base URL.
        super().__init__(
            base_url="", token=secret, retry=retry, max_media_bytes=max_media_bytes, client=client
        )
        self.backends = backends

    @classmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> NextcloudChannel:
        if settings.nextcloud_bot_secret is None:
            raise ConfigError("Nextcloud Talk: set NEXTCLOUD_BOT_SECRET")
        if not settings.nextcloud_allowed_backends:
            raise ConfigError("Nextcloud Talk: set NEXTCLOUD_ALLOWED_BACKENDS")
        return cls(
            secret=settings.nextcloud_bot_secret.get_secret_value(),
            backends=frozenset(settings.nextcloud_allowed_backends),
            retry=retry,
            max_media_bytes=settings.media_max_bytes,
        )

    @staticmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        return None  # a bot cannot open a conversation with the operator

    def render(self, text: str) -> str:
        return text  # Talk shows Markdown

    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        room = split_address(to)
        if room is None or room[0] not in self.backends:
            raise self._error("not a conversation on an allowed server", False)
        backend, token = room
        message = compose(text, choices, label, link)
        reference = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        url = backend + MESSAGE_PATH.format(token=token)

        def attempt() -> Sent:
            random = secrets.token_hex(32)  # a fresh one per request, retries included
            response = self.client.post(
                url,
                json={"message": message, "referenceId": reference},
                headers={
                    "OCS-APIRequest": "true",
                    "Accept": "application/json",
                    "X-Nextcloud-Talk-Bot-Random": random,
                    "X-Nextcloud-Talk-Bot-Signature": signature(
                        self._token, random, message.encode()
                    ),
                },
            )
            if not response.is_success:  # a success may be empty or XML: its body is not read
                raise self.failure(response)
            return Sent(reference)  # Talk answers no message id: the reference stands for it

        return self.retrying(attempt)

    def typing(self, to: str, external_id: str) -> None:
        pass  # the bot API has no typing indicator

    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        raise self._error("a bot cannot download shared files", False)

    def failure(self, response: httpx.Response) -> Failure:
        status = response.status_code
        asked = response.headers.get("retry-after", "")
        return Failure(
            self._error(f"HTTP {status}", status == 429 or status >= 500, status),
            float(asked) if asked.isdigit() else None,
        )


def compose(text: str, choices: Sequence[Choice], label: str, link: Link | None) -> str:
    """The reply as one Talk message: the products to pick as a list, the link as a link."""
    parts = [text]
    if choices:
        parts.append("\n".join([label, *(f"- {c.title}" for c in choices)]).strip())
    if link is not None:
        parts.append(f"[{link.label}]({link.url})")
    return "\n\n".join(parts)
