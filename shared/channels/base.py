"""Sending through a channel's HTTP API: the retry loop every channel shares, and text cut to
the channel's limit.

A channel translates its API's errors into ``ChannelError`` (``retryable`` when waiting may
help: 429, 5xx, throughput limits, a dropped connection) and says how long the API asked to
wait. The loop retries those with exponential backoff and full jitter, then raises the last
error so the queue's own retries and dead-letter list take over: nothing is lost. Errors never
carry message text, phone numbers, tokens or URLs (a Telegram URL holds the bot token).
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from shared.backoff import Backoff
from shared.exceptions import ChannelError
from shared.models import Media, Shop, WhatsAppTemplate

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings

T = TypeVar("T")
ChannelName = Literal["whatsapp", "telegram", "nextcloud", "email", "messenger", "instagram"]
TIMEOUT = 20.0  # seconds per request: a send is small; a media download gets the same


# Images a model can read (a vision input); other files stay attachments.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


@dataclass(frozen=True)
class Retry(Backoff):
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def wait(self, attempt: int, asked: float | None) -> float:
        """The backoff's wait before retry ``attempt``; the API's own Retry-After wins if
        longer."""
        return max(asked or 0.0, self.delay(attempt))


@dataclass(frozen=True)
class Link:
    """A button that opens ``url`` (a payment link): WhatsApp's CTA URL button, Telegram's
    inline URL button."""

    url: str
    label: str


@dataclass(frozen=True)
class Choice:
    """A product the customer can tap (an interactive row or button, an inline button), or a
    card where the channel has them (Messenger's generic template: the picture and a button
    opening the product's page)."""

    id: str
    title: str
    description: str = ""
    image: str = ""
    link: Link | None = None


@dataclass(frozen=True)
class Sent:
    id: str  # the channel's message id
    template: bool = False  # outside the 24-hour window: the shop's template went instead


@dataclass(frozen=True)
class Fetched:
    data: bytes
    mime_type: str


class Failure(Exception):  # noqa: N818 - internal: carries a ChannelError to the retry loop
    def __init__(self, error: ChannelError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """One connection pool per warm instance (httpx clients are thread-safe)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import httpx  # lazy: the webhooks never send, so they never pay for it

                # httpx logs every URL at INFO (httpcore more at DEBUG), and a Telegram URL
                # holds the bot token: whatever the root logger's level, they stay quiet.
                for name in ("httpx", "httpcore"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                _client = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
    return _client


class Channel(ABC):
    name: ClassVar[ChannelName]
    text_limit: ClassVar[int] = 4096  # in UTF-16 code units, as both APIs count
    voice_notes: ClassVar[bool] = False  # whether send_voice sends (channels/voice_notes.py)

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        retry: Retry,
        max_media_bytes: int,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token  # the API's secret: never in a message or a log
        self.retry = retry
        self.max_media_bytes = max_media_bytes
        self.client = client or http_client()

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> Channel:
        """The shop's sender; a ConfigError naming the settings it lacks."""

    @staticmethod
    @abstractmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        """Where the shop's operator is told of handoffs on this channel, if anywhere."""

    def within_window(self, last_inbound_at: float | None, now: float, *, human: bool) -> Channel:
        """This sender for a customer who last wrote at ``last_inbound_at``, for a reply by a
        person (``human``) or by the bot: itself where the channel has no window (Telegram) or
        answers a closed one on its own (WhatsApp's template); a ChannelError that is not
        retryable when nothing may go (Messenger's)."""
        return self

    def render(self, text: str) -> str:
        """The reply as the channel shows it: plain text, without the Markdown bold that
        models write anyway."""
        return BOLD.sub(r"\1", text)

    @abstractmethod
    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        """Send one message (``text`` within ``text_limit``); ``choices`` become buttons or a
        list where they fit, under ``label``; ``link`` a button opening its URL (it takes the
        choices' place where a message holds only one kind). Raises ChannelError after the last
        retry."""

    def send_marketing(self, to: str, text: str | None, template: WhatsAppTemplate | None) -> Sent:
        """A campaign's message: ``text`` where the channel allows it, else ``template`` (a
        channel with a window for free text); a ChannelError that is not retryable when neither
        can go."""
        if text is None:
            raise self._error("no text for this channel", False)
        return self.send(to, text)

    def send_voice(self, to: str, ogg: bytes) -> Sent:
        """Send ``ogg`` (an OGG/Opus file) as a voice note; a ChannelError that is not
        retryable on a channel without them."""
        raise self._error("no voice notes on this channel", False)

    @abstractmethod
    def typing(self, to: str, external_id: str) -> None:
        """Show the customer the message ``external_id`` was read and an answer is coming."""

    @abstractmethod
    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        """The bytes of ``media`` if its type is in ``allowed`` and it is within
        ``max_media_bytes``; otherwise a ChannelError that is not retryable."""

    @abstractmethod
    def failure(self, response: httpx.Response) -> Failure:
        """The API's error response as a ChannelError, with the wait it asked for."""

    # --- the retry loop ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        once: bool = False,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A JSON API call, retried (unless ``once``) as the module docstring says; with
        ``files`` (name: (filename, bytes, type)) and ``data``, a multipart upload instead."""

        def attempt() -> dict[str, Any]:
            response = self.client.request(
                method, url, json=json, params=params, headers=headers, files=files, data=data
            )
            if not response.is_success:
                raise self.failure(response)
            try:
                body = response.json()
            except ValueError:
                raise Failure(self._error("malformed response", retryable=True)) from None
            if not isinstance(body, dict):
                raise Failure(self._error("malformed response", retryable=True))
            return body

        return self.retrying(attempt, attempts=1 if once else None)

    def download(self, url: str, headers: dict[str, str], mime_type: str) -> Fetched:
        """GET ``url``, refused as soon as it grows beyond ``max_media_bytes``."""

        def attempt() -> Fetched:
            with self.client.stream("GET", url, headers=headers) as response:
                if not response.is_success:
                    response.read()
                    raise self.failure(response)
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > self.max_media_bytes:
                        raise Failure(self._error("media over the size limit", retryable=False))
            return Fetched(bytes(data), mime_type)

        return self.retrying(attempt)

    def retrying(self, attempt: Callable[[], T], *, attempts: int | None = None) -> T:
        attempts = attempts or self.retry.attempts
        number = 0
        while True:
            number += 1
            try:
                with self._transport_errors():
                    return attempt()
            except Failure as failure:
                if not failure.error.retryable or number >= attempts:
                    raise failure.error from None
                self.retry.sleep(self.retry.wait(number, failure.retry_after))

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        import httpx

        try:
            yield
        except httpx.TimeoutException as exc:
            raise Failure(self._error(f"no answer in time ({type(exc).__name__})", True)) from None
        except httpx.HTTPError as exc:  # refused, reset, DNS, TLS... never its message (a URL)
            raise Failure(
                self._error(f"cannot reach the API ({type(exc).__name__})", True)
            ) from None

    def _error(self, what: str, retryable: bool, code: int | None = None) -> ChannelError:
        return ChannelError(f"{self.name}: {what}", retryable=retryable, code=code)

    def check_media(self, mime_type: str, size: int | None, allowed: frozenset[str]) -> str:
        """The bare MIME type, if acceptable before downloading anything."""
        bare = mime_type.split(";")[0].strip().lower()
        if bare not in allowed:
            raise self._error(f"media type {bare or 'unknown'} not accepted", False)
        if size is not None and size > self.max_media_bytes:
            raise self._error("media over the size limit", False)
        return bare


def default_shop_setting(settings: Settings, shop: Shop, value: str | None) -> str | None:
    """``value``, a channel setting from the environment, if ``shop`` is DEFAULT_SHOP (the
    shop those settings belong to); None for any other shop."""
    return value if shop.id == settings.default_shop else None


# --- text ------------------------------------------------------------------------------------

BOLD = re.compile(r"\*\*(.+?)\*\*")
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "… ", "; ", ", ", " ")


def units(text: str) -> int:
    """Length in UTF-16 code units: what WhatsApp and Telegram count (an emoji is two)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units, cut after a paragraph, else a line,
    else a sentence, else a word; a word longer than the limit is cut where it must be."""
    pieces: list[str] = []
    rest = text.strip()
    while units(rest) > limit:
        fits = _fitting(rest, limit)
        window = rest[:fits]
        cut = next(
            (
                window.rfind(mark) + len(mark)
                for mark in _BREAKS
                if window.rfind(mark) > limit // 4  # not a tiny first piece
            ),
            fits,
        )
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


def _fitting(text: str, limit: int) -> int:
    """How many characters of ``text`` fit in ``limit`` UTF-16 units."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, with an ellipsis if it had to be cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
