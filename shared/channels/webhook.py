"""What both webhook functions check before anything else, on the raw body: the provider's
signature or secret (constant-time compares), then JSON. Errors are the HTTP layer's JSON.

A signature proves who sent a body, not that it is sane: JSON nested deeper than ``MAX_DEPTH``
(providers nest a dozen levels) or holding a lone surrogate is refused with a 400 before anything
is stored (``shared.jsonsafe``), rather than failing in the parser, a store or a serialiser."""

from __future__ import annotations

import hashlib
import hmac
from typing import TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from shared import jsonsafe
from shared.exceptions import InvalidInputError
from shared.http import HTTPError
from shared.log import log_event

M = TypeVar("M", bound=BaseModel)
MAX_DEPTH = 64


def equal(given: str, expected: str) -> bool:
    """Constant-time string equality (any characters)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def configured(secret: SecretStr | None, variable: str) -> str:
    if secret is None:
        raise HTTPError(503, "not_configured", f"{variable} is not set on this server")
    return secret.get_secret_value()


def check_hub_signature(body: bytes, header: str, app_secret: str) -> None:
    """Meta's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""
    if not header:
        raise HTTPError(401, "missing_signature", "X-Hub-Signature-256 is required")
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not equal(header.strip(), expected):
        raise HTTPError(403, "invalid_signature", "the signature does not match the body")


def parse(body: bytes, model: type[M], channel: str) -> M | None:
    """The body as ``model``; 400 if it is not a sane JSON object. An authentic body of another
    shape is acknowledged (None): the provider would only send it again."""
    try:
        data = jsonsafe.loads(body, max_depth=MAX_DEPTH)
    except InvalidInputError as exc:  # not UTF-8 or JSON, nested too deep, a lone surrogate
        raise HTTPError(400, "malformed_json", str(exc)) from None
    if not isinstance(data, dict):
        raise HTTPError(400, "malformed_json", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        log_event(f"{channel}_webhook_unparsed", errors=exc.error_count())
        return None
