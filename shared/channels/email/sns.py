"""Amazon SNS message signatures: an HTTP(S) subscription's posts are signed by SNS with the key
of a certificate it publishes at ``SigningCertURL``. The signature covers the canonical string of
the message's fields (``Key\\nValue\\n`` in a fixed order, by message type); version 1 is
SHA1withRSA, version 2 SHA256withRSA.

The certificate is fetched only from an https URL on an SNS host (``sns.<region>.amazonaws.com``)
and kept per warm instance. ``VERIFIER`` is the one instance: tests replace it with one whose
host pattern and fetch reach a loopback server holding a local certificate.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.channels.email.models import SnsMessage
from shared.channels.exceptions import SignatureError

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
MAX_CERTIFICATE_BYTES = 16_384
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]


def fetch_https(url: str) -> bytes:
    """GET ``url`` (a certificate, a subscription confirmation), bounded in size."""
    from shared.channels.base import http_client

    with http_client().stream("GET", url) as response:
        if not response.is_success:
            raise SignatureError(f"SNS answered HTTP {response.status_code}")
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_CERTIFICATE_BYTES:
                raise SignatureError("SNS answer too large")
    return bytes(data)


@dataclass
class SnsVerifier:
    host: re.Pattern[str] = SNS_HOST
    fetch: Callable[[str], bytes] = fetch_https
    schemes: frozenset[str] = frozenset({"https"})
    _certificates: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_url(self, url: str) -> str:
        """``url`` if it is on an SNS host over https; a SignatureError otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in self.schemes or not self.host.fullmatch(parts.netloc.lower()):
            raise SignatureError("the SNS URL is not on an SNS host")
        return url

    def verify(self, message: SnsMessage) -> None:
        """Raise a SignatureError unless SNS signed ``message``."""
        import httpx
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}.get(message.SignatureVersion)
        names = SIGNED_FIELDS.get(message.Type)
        if algorithm is None or names is None:
            raise SignatureError("unknown SNS signature version or message type")
        try:
            signature = base64.b64decode(message.Signature, validate=True)
        except binascii.Error:
            raise SignatureError("the SNS signature is not base64") from None
        url = self.check_url(message.SigningCertURL)
        try:
            certificate = x509.load_pem_x509_certificate(self._certificate(url))
        except (ValueError, httpx.HTTPError):
            raise SignatureError("no usable SNS signing certificate") from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("the SNS signing certificate has no RSA key")
        try:
            key.verify(signature, canonical(message, names), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SignatureError("the SNS signature does not match") from None

    def _certificate(self, url: str) -> bytes:
        with self._lock:
            cached = self._certificates.get(url)
        if cached is None:
            cached = self.fetch(url)
            with self._lock:
                self._certificates[url] = cached
        return cached


def canonical(message: SnsMessage, names: tuple[str, ...]) -> bytes:
    """The string SNS signs: each present field's name and value, a line each."""
    values = message.model_dump()
    return "".join(
        f"{name}\n{values[name]}\n" for name in names if values.get(name) is not None
    ).encode()


VERIFIER = SnsVerifier()
