"""What a channel's webhook refuses before anything is stored. The HTTP layer maps each class to
its response (``shared.http``); a channel never speaks HTTP."""

from __future__ import annotations

from shared.exceptions import ComptoirError, ConfigError, InvalidInputError


class WebhookError(ComptoirError):
    """A webhook post or handshake refused: nothing was read past the check, nothing stored."""


class NotConfiguredError(WebhookError, ConfigError):
    """The secret the check needs is not set on this server; the message names the variable."""


class SignatureError(WebhookError):
    """The body's signature does not match it: the provider did not send it."""


class MissingSignatureError(SignatureError):
    """The post carries no signature at all; the message names the header."""


class InvalidSecretError(SignatureError):
    """The secret the provider sends back with every post (Telegram's) is wrong."""


class HandshakeError(SignatureError):
    """A subscription handshake (WhatsApp's ``hub.verify_token``) failed."""


class MalformedBodyError(WebhookError, InvalidInputError):
    """An authentic body that is not a sane JSON object; the message says why."""


class UnknownBackendError(SignatureError):
    """A signed post from a server this deployment does not answer (Nextcloud Talk's
    ``X-Nextcloud-Talk-Backend`` not in NEXTCLOUD_ALLOWED_BACKENDS)."""


class ReplayedError(SignatureError):
    """A signed post sent again with the random it was signed with (a replay)."""
