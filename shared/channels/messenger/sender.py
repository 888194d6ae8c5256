"""The Send API (``POST /me/messages`` with the Page access token), for Messenger and for the
Instagram account linked to the Page: text, quick replies, a payment link as a button template,
products as a generic template's cards, sender actions (seen, typing), attachments downloaded.

The standard messaging window: free messages for 24 hours after the customer last wrote. After
that only a person may answer, for 7 days, with the ``HUMAN_AGENT`` tag; the bot sends nothing
(``within_window`` refuses, and the worker records the refusal on the reply). Messenger and
Instagram are two channel names (their conversations, routes and delivery records apart) on
one class: the same API, token and window; only the text limit differs.
"""

from __future__ import annotations

import copy
import mimetypes
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from shared.channels.base import (
    Channel,
    Choice,
    Failure,
    Fetched,
    Link,
    Retry,
    Sent,
    shorten,
)
from shared.channels.meta import graph_failure
from shared.exceptions import ChannelError, ConfigError
from shared.log import log_event
from shared.models import Media, Shop, WhatsAppTemplate

if TYPE_CHECKING:
    import httpx

    from shared.channels.base import ChannelName
    from shared.settings import Settings

STANDARD_WINDOW = 24 * 3600  # seconds after the customer's last message: any message
HUMAN_AGENT_WINDOW = 7 * 24 * 3600  # a person's reply, tagged HUMAN_AGENT
OUTSIDE_WINDOW = 2018278  # Meta's error subcode for a message outside the allowed window
# Rate limits (4, 17, 32, 613), temporary failures (1, 2).
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613})
BUTTON_TEXT = 640  # a button template's text
CARDS, CARD_TITLE, CARD_SUBTITLE, BUTTON_TITLE = 10, 80, 80, 20
QUICK_REPLIES, REPLY_TITLE = 13, 20
GUESSED_TYPES = {"image": "image/jpeg", "voice": "audio/mp4", "audio": "audio/mp4"}


class MessengerChannel(Channel):
    name: ClassVar[ChannelName] = "messenger"
    text_limit = 2000

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        retry: Retry,
        max_media_bytes: int,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            token=token,
            retry=retry,
            max_media_bytes=max_media_bytes,
            client=client,
        )
        self._auth = {"Authorization": f"Bearer {token}"}
        self.tag: str | None = None  # set by ``within_window`` outside the standard window

    @classmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> MessengerChannel:
        if settings.messenger_page_access_token is None:
            raise ConfigError(f"{cls.name}: set MESSENGER_PAGE_ACCESS_TOKEN")
        return cls(
            base_url=settings.messenger_api_base,
            token=settings.messenger_page_access_token.get_secret_value(),
            retry=retry,
            max_media_bytes=settings.media_max_bytes,
        )

    @staticmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        return None  # operators are told on WhatsApp or Telegram

    def within_window(
        self, last_inbound_at: float | None, now: float, *, human: bool
    ) -> MessengerChannel:
        age = now - last_inbound_at if last_inbound_at is not None else float("inf")
        if age <= STANDARD_WINDOW:
            return self
        if human and age <= HUMAN_AGENT_WINDOW:
            tagged = copy.copy(self)
            tagged.tag = "HUMAN_AGENT"
            return tagged
        rule = "a person's reply, 7 days" if human else "the 24-hour window"
        raise self._error(f"the customer last wrote too long ago ({rule})", False, OUTSIDE_WINDOW)

    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        if link is not None and len(text) <= BUTTON_TEXT:
            template = {"template_type": "button", "text": text, "buttons": [_button(link)]}
            return Sent(self._post(to, {"attachment": _template(template)}))
        if link is not None:  # too long for a button's text: the link goes in the text
            text = f"{text}\n{link.url}"
        cards = [c for c in choices if c.link is not None or c.image][:CARDS]
        message: dict[str, Any] = {"text": text}
        if choices and not cards:
            message["quick_replies"] = [
                {"content_type": "text", "title": shorten(c.title, REPLY_TITLE), "payload": c.id}
                for c in choices[:QUICK_REPLIES]
            ]
        sent = Sent(self._post(to, message))
        if cards:
            self._cards(to, cards)
        return sent

    def send_marketing(self, to: str, text: str | None, template: WhatsAppTemplate | None) -> Sent:
        # A console reply outside 24 hours comes here, tagged by ``within_window``; a campaign
        # never does (campaigns reach WhatsApp and Telegram only).
        if text is None:
            raise self._error("outside the window, nothing may go", False, OUTSIDE_WINDOW)
        return self.send(to, text)

    def typing(self, to: str, external_id: str) -> None:
        for action in ("mark_seen", "typing_on"):
            self.call(
                "POST",
                self._messages_url,
                json={"recipient": {"id": to}, "sender_action": action},
                headers=self._auth,
                once=True,
            )

    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        # The webhook gave the attachment's CDN URL; its type is guessed from the file name
        # (Meta's URLs end with one), else from the kind.
        if urlsplit(media.ref).scheme not in ("https", "http"):
            raise self._error("media without a download URL", False)
        guessed = mimetypes.guess_type(urlsplit(media.ref).path)[0]
        mime_type = self.check_media(
            media.mime_type or guessed or GUESSED_TYPES.get(media.kind, ""), None, allowed
        )
        return self.download(media.ref, {}, mime_type)

    def failure(self, response: httpx.Response) -> Failure:
        return graph_failure(response, RETRYABLE_CODES, self._error)

    @property
    def _messages_url(self) -> str:
        return f"{self.base_url}/me/messages"

    def _cards(self, to: str, choices: Sequence[Choice]) -> None:
        """The products as a generic template, after the text that names them: a nicety the
        reply stands without, so a failure is logged, never raised (the text would go twice)."""
        elements = [_card(choice) for choice in choices]
        payload = {"template_type": "generic", "elements": elements}
        try:
            self._post(to, {"attachment": _template(payload)})
        except ChannelError as error:
            log_event("channel_cards_failed", channel=self.name, code=error.code)

    def _post(self, to: str, message: dict[str, Any]) -> str:
        body: dict[str, Any] = {"recipient": {"id": to}, "message": message}
        if self.tag is None:
            body["messaging_type"] = "RESPONSE"
        else:
            body.update(messaging_type="MESSAGE_TAG", tag=self.tag)
        result = self.call("POST", self._messages_url, json=body, headers=self._auth)
        message_id = result.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise self._error("send answered without a message id", False)
        return message_id


class InstagramChannel(MessengerChannel):
    name = "instagram"
    text_limit = 1000


def _template(payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "template", "payload": payload}


def _card(choice: Choice) -> dict[str, Any]:
    """A product's card: its title, its price (the guarded text) as subtitle, its picture and a
    button opening its page."""
    card: dict[str, Any] = {"title": shorten(choice.title, CARD_TITLE)}
    if choice.description:
        # The guarded price as written (``shorten`` would fold its narrow no-break space).
        card["subtitle"] = choice.description[:CARD_SUBTITLE]
    if choice.image:
        card["image_url"] = choice.image
    if choice.link is not None:
        card["buttons"] = [_button(choice.link)]
    return card


def _button(link: Link) -> dict[str, str]:
    return {"type": "web_url", "url": link.url, "title": shorten(link.label, BUTTON_TITLE)}
