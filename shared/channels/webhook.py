"""The inbound contract every channel's webhook follows, in order, on the raw body: verify (the
provider's signature or secret, constant-time compares), parse to the channel's typed update,
handle (store and queue through ``receive``). Refusals are ``shared.channels.exceptions``, which
the HTTP layer maps to responses.

A signature proves who sent a body, not that it is sane: JSON nested deeper than ``MAX_DEPTH``
(providers nest a dozen levels) or holding a lone surrogate is refused before anything is stored
(``shared.jsonsafe``), rather than failing in the parser, a store or a serialiser."""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from shared import jsonsafe
from shared.channels.exceptions import MalformedBodyError, NotConfiguredError
from shared.exceptions import InvalidInputError
from shared.log import log_event

if TYPE_CHECKING:
    from shared.app import App

M = TypeVar("M", bound=BaseModel)
MAX_DEPTH = 64
Headers = Callable[[str], str]  # a request header by its lower-case name, "" when absent


@dataclass(frozen=True)
class Handled:
    """What became of a post, for the response: the shop (for the request log line) and a call
    the response body carries instead of ``{"ok": true}`` (Telegram's)."""

    shop: str = ""
    answer: dict[str, Any] | None = None


class Webhook(ABC, Generic[M]):
    """One channel's inbound side. The registry (``shared.channels.CHANNELS``) names it with
    the setting holding the secret posts are checked against."""

    update: ClassVar[type[BaseModel]]  # what a body parses to: the type ``handle`` takes

    @abstractmethod
    def verify(self, body: bytes, header: Headers, secret: str) -> None:
        """Raise a ``SignatureError`` unless the provider sent ``body``. Pure: no store."""

    @abstractmethod
    def handle(self, app: App, update: M, secret: str) -> Handled:
        """Store and queue what ``update`` carries; never an error for what gets no answer."""


def receive_post(
    app: App, name: str, body: bytes, header: Headers, webhook: Webhook[Any] | None = None
) -> Handled:
    """A post to channel ``name``'s webhook (or to ``webhook``, a second inbound route of the
    channel: e-mail's SES notifications): verified, parsed, handled."""
    from shared.channels import CHANNELS, open_webhook

    variable = CHANNELS[name].secret
    secret = configured(getattr(app.settings, variable), variable.upper())
    webhook = webhook or open_webhook(name)
    webhook.verify(body, header, secret)
    update = parse(body, webhook.update, name)
    return webhook.handle(app, update, secret) if update is not None else Handled()


def equal(given: str, expected: str) -> bool:
    """Constant-time string equality (any characters)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def configured(secret: SecretStr | None, variable: str) -> str:
    if secret is None:
        raise NotConfiguredError(f"{variable} is not set on this server")
    return secret.get_secret_value()


def parse(body: bytes, model: type[M], channel: str) -> M | None:
    """The body as ``model``; MalformedBodyError if it is not a sane JSON object. An authentic
    body of another shape is acknowledged (None): the provider would only send it again."""
    try:
        data = jsonsafe.loads(body, max_depth=MAX_DEPTH)
    except InvalidInputError as exc:  # not UTF-8 or JSON, nested too deep, a lone surrogate
        raise MalformedBodyError(str(exc)) from None
    if not isinstance(data, dict):
        raise MalformedBodyError("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        log_event(f"{channel}_webhook_unparsed", errors=exc.error_count())
        return None
