"""WhatsApp Cloud API sender: messages, read receipts, templates and media, on the Graph API.

Error codes (Graph's ``error.code``) decide what happens: throughput (130429), pair rate
(131056) and Meta's transient failures are retried with backoff like 429 and 5xx; 131047 (the
customer last wrote more than 24 hours ago) is never retried as free text: the shop's approved
template goes instead, which reopens the conversation when the customer answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.channels.base import (
    BOLD,
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
from shared.channels.meta import graph_failure
from shared.exceptions import ChannelError, ConfigError
from shared.models import Media, Shop, WhatsAppTemplate

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings

REENGAGEMENT = 131047  # outside the 24-hour customer service window
# Throughput (130429), pair rate (131056), app and account rate limits (4, 80007), and Meta's
# own transient failures (131000 something went wrong, 131016 service unavailable, 133004).
RETRYABLE_CODES = frozenset({4, 80007, 130429, 131000, 131016, 131056, 133004})
BODY_LIMIT = 1024  # an interactive message's body
CTA_TEXT = 20  # a CTA URL button's display_text
BUTTONS, BUTTON_TITLE = 3, 20
ROWS, ROW_TITLE, ROW_DESCRIPTION, LIST_BUTTON = 10, 24, 72, 20


class WhatsAppChannel(Channel):
    name = "whatsapp"
    voice_notes = True

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        phone_number_id: str,
        template: WhatsAppTemplate,
        retry: Retry,
        code_template: WhatsAppTemplate | None = None,
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
        self.phone_number_id = phone_number_id
        self.template = template
        self.code_template = code_template

    @classmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> WhatsAppChannel:
        number = shop.whatsapp_phone_number_id or default_shop_setting(
            settings, shop, settings.whatsapp_phone_number_id
        )
        if settings.whatsapp_access_token is None or not number:
            raise ConfigError(
                "WhatsApp: set WHATSAPP_ACCESS_TOKEN and the shop's phone number id"
                " (WHATSAPP_PHONE_NUMBER_ID for DEFAULT_SHOP)"
            )
        return cls(
            base_url=settings.whatsapp_api_base,
            token=settings.whatsapp_access_token.get_secret_value(),
            phone_number_id=number,
            template=shop.whatsapp_template or WhatsAppTemplate(),
            code_template=shop.whatsapp_code_template,
            retry=retry,
            max_media_bytes=settings.media_max_bytes,
        )

    @staticmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        number = shop.operator_whatsapp or default_shop_setting(
            settings, shop, settings.whatsapp_operator
        )
        return "".join(ch for ch in number if ch.isdigit()) if number else None

    def render(self, text: str) -> str:
        return BOLD.sub(r"*\1*", text)  # WhatsApp's own bold

    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        try:
            return Sent(self._post(_message(to, text, choices, label, link)))
        except ChannelError as error:
            if error.code != REENGAGEMENT:
                raise
        return self.send_template(to)

    def send_template(self, to: str, template: WhatsAppTemplate | None = None) -> Sent:
        """An approved template (the shop's, unless another is given): what may be sent
        outside the 24-hour window."""
        template = template or self.template
        body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if template.components:
            body["components"] = template.components
        payload = {**_head(to), "type": "template", "template": body}
        return Sent(self._post(payload), template=True)

    def send_marketing(self, to: str, text: str | None, template: WhatsAppTemplate | None) -> Sent:
        # Free text only inside the window (the caller knows when the customer last wrote);
        # outside it, the campaign's own template, never the shop's re-engagement one.
        if text is not None:
            try:
                return Sent(self._post(_message(to, text, (), "")))
            except ChannelError as error:
                if error.code != REENGAGEMENT or template is None:
                    raise
        if template is None:
            raise self._error("outside the 24-hour window, no template", False, REENGAGEMENT)
        return self.send_template(to, template)

    def send_code(self, to: str, text: str, code: str) -> Sent:
        """A one-time ``code``: ``text`` (which holds it) inside the 24-hour window, else the
        shop's authentication template with the code as its body parameter and its copy-code
        button's. Never the generic template, which could not carry the code: without an
        authentication template a number outside the window raises the 131047 ChannelError."""
        template = None
        if self.code_template is not None:
            parameter = [{"type": "text", "text": code}]
            components = [
                {"type": "body", "parameters": parameter},
                {"type": "button", "sub_type": "url", "index": "0", "parameters": parameter},
            ]
            template = self.code_template.model_copy(update={"components": components})
        return self.send_marketing(to, text, template)

    def send_voice(self, to: str, ogg: bytes) -> Sent:
        # Upload first (the media id lives 30 days), then a message that plays it as a voice
        # note: WhatsApp does so for an OGG/Opus audio.
        uploaded = self.call(
            "POST",
            f"{self.base_url}/{self.phone_number_id}/media",
            headers=self._auth,
            data={"messaging_product": "whatsapp", "type": "audio/ogg"},
            files={"file": ("reply.ogg", ogg, "audio/ogg")},
        )
        media_id = uploaded.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise self._error("media upload answered without an id", False)
        return Sent(self._post({**_head(to), "type": "audio", "audio": {"id": media_id}}))

    def typing(self, to: str, external_id: str) -> None:
        # Marks the message (and those before it) read, and shows "typing…" until the reply.
        self.call(
            "POST",
            self._messages_url,
            json={
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": external_id,
                "typing_indicator": {"type": "text"},
            },
            headers=self._auth,
            once=True,
        )

    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        # The media id gives a short-lived URL, which wants the same bearer token.
        if not media.ref.isdigit():  # an id, never a path
            raise self._error("not a media id", False)
        info = self.call("GET", f"{self.base_url}/{media.ref}", headers=self._auth)
        size = info.get("file_size")
        mime_type = self.check_media(
            str(info.get("mime_type") or media.mime_type),
            int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
            allowed,
        )
        url = info.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise self._error("media without a download URL", False)
        return self.download(url, self._auth, mime_type)

    def failure(self, response: httpx.Response) -> Failure:
        return graph_failure(response, RETRYABLE_CODES, self._error)

    @property
    def _messages_url(self) -> str:
        return f"{self.base_url}/{self.phone_number_id}/messages"

    def _post(self, payload: dict[str, Any]) -> str:
        result = self.call("POST", self._messages_url, json=payload, headers=self._auth)
        messages = result.get("messages")
        if not isinstance(messages, list) or not messages or "id" not in messages[0]:
            raise self._error("send answered without a message id", False)
        return str(messages[0]["id"])


def _head(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}


def _message(
    to: str, text: str, choices: Sequence[Choice], label: str, link: Link | None = None
) -> dict[str, Any]:
    """A text message, or an interactive one when the choices (or the link) fit WhatsApp's
    limits. A link is a CTA URL button, which a message cannot hold with reply buttons."""
    head = _head(to)
    if link is not None and len(text) <= BODY_LIMIT:
        opens = {"display_text": shorten(link.label, CTA_TEXT), "url": link.url}
        interactive = {
            "type": "cta_url",
            "body": {"text": text},
            "action": {"name": "cta_url", "parameters": opens},
        }
        return {**head, "type": "interactive", "interactive": interactive}
    if link is not None:  # too long for a button's body: the link goes in the text
        text = f"{text}\n{link.url}"
    if not choices or len(text) > BODY_LIMIT or len(choices) > ROWS:
        return {**head, "type": "text", "text": {"preview_url": False, "body": text}}
    if len(choices) <= BUTTONS:
        buttons, titles = [], set()
        for choice in choices:
            title = shorten(choice.title, BUTTON_TITLE)
            if title in titles:  # WhatsApp refuses two buttons with one title
                continue
            titles.add(title)
            buttons.append({"type": "reply", "reply": {"id": choice.id[:256], "title": title}})
        action: dict[str, Any] = {"buttons": buttons}
        kind = "button"
    else:
        rows = [
            {
                "id": choice.id[:200],
                "title": shorten(choice.title, ROW_TITLE),
                **(
                    {"description": shorten(choice.description, ROW_DESCRIPTION)}
                    if choice.description
                    else {}
                ),
            }
            for choice in choices
        ]
        action = {
            "button": shorten(label or "Menu", LIST_BUTTON),
            "sections": [{"title": shorten(label or "Menu", ROW_TITLE), "rows": rows}],
        }
        kind = "list"
    return {
        **head,
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": text}, "action": action},
    }
