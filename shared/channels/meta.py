"""What Meta's platforms (WhatsApp Cloud API, Messenger, Instagram messaging) share: the
webhook's subscription handshake, the ``X-Hub-Signature-256`` of every post, and the Graph
API's error body read as a ``ChannelError``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shared.channels.base import Failure
from shared.channels.exceptions import HandshakeError, MissingSignatureError, SignatureError
from shared.channels.webhook import equal
from shared.exceptions import ChannelError

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr


def check_signature(body: bytes, signature: str, app_secret: str) -> None:
    """Meta's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""
    if not signature:
        raise MissingSignatureError("X-Hub-Signature-256 is required")
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not equal(signature.strip(), expected):
        raise SignatureError("the signature does not match the body")


def handshake(query: Mapping[str, str], verify_token: SecretStr | None) -> str:
    """Meta's subscription check (``GET`` with ``hub.mode``, ``hub.verify_token``): the
    ``hub.challenge`` to answer, or HandshakeError."""
    if (
        verify_token is None
        or query.get("hub.mode") != "subscribe"
        or not equal(query.get("hub.verify_token", ""), verify_token.get_secret_value())
    ):
        raise HandshakeError("verification failed")
    return query.get("hub.challenge", "")


def graph_failure(
    response: httpx.Response,
    retryable_codes: frozenset[int],
    error: Callable[[str, bool, int | None], ChannelError],
) -> Failure:
    """A Graph API error response (``{"error": {"code": ...}}``) as the channel's ``error``:
    retryable for 429, 5xx and ``retryable_codes``, with the Retry-After it asked for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    found = body.get("error") if isinstance(body, dict) else None
    code = found.get("code") if isinstance(found, dict) else None
    code = code if isinstance(code, int) else None
    status = response.status_code
    retryable = status == 429 or status >= 500 or code in retryable_codes
    what = f"HTTP {status}" + (f", code {code}" if code is not None else "")
    asked = response.headers.get("retry-after", "")
    return Failure(error(what, retryable, code), float(asked) if asked.isdigit() else None)
