"""The payment-provider port: what a provider does, and what every provider shares.

A provider creates a hosted checkout for an order (``create_checkout``) and reads the events it
posts back (``verify_and_parse``): the signature is checked on the raw body, with a constant-time
compare, before a byte of it is parsed. Amounts are ``Decimal`` in the currency's main unit on
this side of the port; each provider converts them to what its API takes (``minor_units``,
``exact_amount``) and back.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from shared import jsonsafe
from shared.backoff import Backoff
from shared.exceptions import InvalidInputError
from shared.payments.exceptions import (
    InvalidPaymentSignatureError,
    MalformedPaymentEventError,
    MissingPaymentSignatureError,
    PaymentNotConfiguredError,
    PaymentRequestError,
    PaymentUnavailableError,
    StalePaymentSignatureError,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

PaymentStatus = Literal["paid", "failed", "expired", "refunded"]
SIGNATURE_TOLERANCE = 300.0  # seconds a signed timestamp may be away from our clock

# ISO 4217 digits after the decimal point, for the currencies that do not have two. Stripe's
# "zero-decimal currencies" are this list's zeros; Wave takes the same precision as a string.
_DIGITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


@dataclass(frozen=True)
class CheckoutOrder:
    """What to collect, in the port's own terms (no domain type crosses it)."""

    reference: str  # our order's id: the provider echoes it in every event of the checkout
    amount: Decimal  # in the currency's main unit (15000 XOF, 12.50 EUR)
    currency: str  # ISO 4217, any case
    description: str  # what the customer sees on the provider's page
    success_url: str | None = None  # where the customer lands after paying; None: our root
    cancel_url: str | None = None  # after giving up or failing; None: our root
    idempotency_key: str | None = None  # the same key never creates two checkouts; None: fresh


@dataclass(frozen=True)
class Checkout:
    id: str  # the provider's checkout id
    url: str  # the page the customer pays on
    expires_at: float | None  # seconds since the epoch; None: the provider did not say


@dataclass(frozen=True)
class PaymentEvent:
    """One authentic provider event about an order's payment."""

    event_id: str  # the provider's id of the event: deliveries of one event share it
    provider_reference: str  # the checkout (or, for a refund, the payment) the event is about
    order_reference: str  # ``CheckoutOrder.reference``, as the provider echoes it
    amount: Decimal  # what was paid (or refunded), in the currency's main unit
    currency: str  # ISO 4217, upper case
    status: PaymentStatus
    occurred_at: float  # seconds since the epoch


class PaymentSettings(Protocol):
    """The settings the providers read (``shared.settings.Settings`` has them all); named
    here so that the port imports no settings module."""

    @property
    def public_base_url(self) -> str: ...
    @property
    def payment_test_secret(self) -> SecretStr: ...
    @property
    def wave_api_key(self) -> SecretStr | None: ...
    @property
    def wave_webhook_secret(self) -> SecretStr | None: ...
    @property
    def wave_api_base(self) -> str: ...
    @property
    def stripe_api_key(self) -> SecretStr | None: ...
    @property
    def stripe_webhook_secret(self) -> SecretStr | None: ...
    @property
    def stripe_api_base(self) -> str: ...


class PaymentProvider(ABC):
    name: ClassVar[str]

    def __init__(self, *, public_base_url: str) -> None:
        self.public_base_url = public_base_url.rstrip("/")

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: PaymentSettings, **clients: Any) -> PaymentProvider:
        """The provider with its keys from ``settings``; a missing key fails when it is needed
        (an IPN needs no API key, a checkout no webhook secret)."""

    @abstractmethod
    def create_checkout(self, order: CheckoutOrder) -> Checkout:
        """A hosted checkout collecting ``order.amount``; PaymentRequestError if the provider
        refuses it (or the amount has more decimals than the currency), PaymentUnavailableError
        if the provider cannot be reached after retries."""

    def verify_and_parse(
        self, raw_body: bytes, headers: Mapping[str, str], now: float
    ) -> PaymentEvent | None:
        """The event ``raw_body`` carries, once its signature is checked against ``headers``
        (any case) at time ``now``; None for an authentic event this port does not act on (a
        type it ignores, a checkout still pending), which the caller acknowledges. Raises a
        PaymentSignatureError (missing, invalid, stale) or MalformedPaymentEventError."""
        lowered = {name.lower(): value for name, value in headers.items()}
        self.verify(raw_body, lowered, now)
        try:
            payload = jsonsafe.loads(raw_body)
        except InvalidInputError as exc:
            raise MalformedPaymentEventError(f"{self.name} event: {exc}") from None
        if not isinstance(payload, dict):
            raise MalformedPaymentEventError(f"{self.name} event: not a JSON object")
        return self.parse(payload, now)

    @abstractmethod
    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: float) -> None:
        """Raise a PaymentSignatureError unless the provider sent ``raw_body`` (``headers`` by
        lower-case name). Reads nothing of the body but its bytes."""

    @abstractmethod
    def parse(self, event: dict[str, Any], now: float) -> PaymentEvent | None:
        """The port's event from an authentic, parsed body; MalformedPaymentEventError (through
        the ``field`` helpers) when it lacks what the port needs."""

    def return_url(self, url: str | None) -> str:
        return url or self.public_base_url + "/"


# --- amounts -------------------------------------------------------------------------------


def currency_digits(currency: str) -> int:
    return _DIGITS.get(currency.upper(), 2)


def exact_amount(amount: Decimal, currency: str) -> Decimal:
    """``amount`` with exactly the currency's digits (12.5 EUR -> 12.50); PaymentRequestError
    when it is not a positive amount of that currency (12.5 XOF, 0.001 EUR, -3, NaN)."""
    digits = currency_digits(currency)
    if not amount.is_finite() or amount <= 0:
        raise PaymentRequestError(f"{amount} is not an amount to collect")
    exact = amount.quantize(Decimal(1).scaleb(-digits))
    if exact != amount:
        raise PaymentRequestError(
            f"{amount} {currency.upper()} cannot be paid: the currency has {digits} decimals"
        )
    return exact


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's smallest unit (12.50 EUR -> 1250, 15000 XOF -> 15000), as
    Stripe takes it; PaymentRequestError as ``exact_amount``."""
    return int(exact_amount(amount, currency).scaleb(currency_digits(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    """The reverse of ``minor_units`` (1250 EUR -> 12.50)."""
    digits = currency_digits(currency)
    return Decimal(units).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


# --- signatures ----------------------------------------------------------------------------


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _signed_hex(secret: str, body: bytes, timestamp: int, separator: str) -> str:
    """The one way a ``t=…,v1=…`` signature is computed, to sign and to verify."""
    return hmac_hex(secret, f"{timestamp}{separator}".encode() + body)


def timestamped_signature(secret: str, body: bytes, timestamp: int, separator: str) -> str:
    """A ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp><separator><body>">`` header value
    (Stripe's scheme with ".", Wave's with "")."""
    return f"t={timestamp},v1={_signed_hex(secret, body, timestamp, separator)}"


def verify_timestamped(
    header: str, body: bytes, secret: str, now: float, *, separator: str, name: str
) -> None:
    """Check a ``t=…,v1=…`` header (``header`` is its name: the messages name it): any of its
    ``v1`` values (several while a secret is rolled) must be the HMAC of
    ``"<t><separator><body>"``, and ``t`` within ``SIGNATURE_TOLERANCE`` of ``now``."""
    timestamp, signatures = _split_signature(header, name)
    expected = _signed_hex(secret, body, timestamp, separator)
    if not any_matches(expected, signatures):
        raise InvalidPaymentSignatureError(f"{name}: the signature does not match the body")
    if abs(now - timestamp) > SIGNATURE_TOLERANCE:
        raise StalePaymentSignatureError(
            f"{name}: signed {int(now - timestamp)} s from now, more than "
            f"{int(SIGNATURE_TOLERANCE)} s"
        )


def _split_signature(value: str, name: str) -> tuple[int, list[str]]:
    if not value:
        raise MissingPaymentSignatureError(f"no {name} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit() and len(item) <= 12:
            timestamp = int(item)
        elif key == "v1" and item:
            signatures.append(item)
    if timestamp is None or not signatures:
        raise InvalidPaymentSignatureError(f"{name}: expected t=<timestamp>,v1=<signature>")
    return timestamp, signatures


def secret_value(secret: SecretStr | None, variable: str) -> str:
    """The secret, or PaymentNotConfiguredError naming the variable that should hold it."""
    if secret is None or not secret.get_secret_value():
        raise PaymentNotConfiguredError(f"{variable} is not set")
    return secret.get_secret_value()


# --- reading an event: each lack is a MalformedPaymentEventError naming the field -----------


def field(event: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``"data.object.id"``); Malformed when a step is missing."""
    value: Any = event
    for step in path.split("."):
        if not isinstance(value, Mapping) or value.get(step) is None:
            raise MalformedPaymentEventError(f"the event has no {path}")
        value = value[step]
    return value


def text_field(event: Mapping[str, Any], path: str) -> str:
    value = field(event, path)
    if not isinstance(value, str) or not value or len(value) > 500:
        raise MalformedPaymentEventError(f"{path} is not a short non-empty string")
    return value


def int_field(event: Mapping[str, Any], path: str) -> int:
    value = field(event, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPaymentEventError(f"{path} is not an integer")
    return value


def currency_field(event: Mapping[str, Any], path: str) -> str:
    value = text_field(event, path)
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise MalformedPaymentEventError(f"{path} is not a currency code")
    return value.upper()


def decimal_field(event: Mapping[str, Any], path: str) -> Decimal:
    """A decimal amount written as a string ("15000", "12.50"), as Wave writes them."""
    value = text_field(event, path)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise MalformedPaymentEventError(f"{path} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise MalformedPaymentEventError(f"{path} is not a decimal amount")
    return amount


def time_field(event: Mapping[str, Any], path: str) -> float:
    """An ISO 8601 time with its offset ("2024-01-01T17:45:00Z") as seconds since the epoch."""
    value = text_field(event, path)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPaymentEventError(f"{path} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise MalformedPaymentEventError(f"{path} has no time zone")
    return when.timestamp()


# --- providers over HTTP -------------------------------------------------------------------

_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})  # 409: Stripe's idempotency race
DEFAULT_BACKOFF = Backoff(attempts=3, base_delay=0.5, max_delay=2.0)


class HTTPProvider(PaymentProvider):
    """A provider reached over its REST API with httpx: one client per provider (injected by
    tests), retries of what may pass next time with the project's backoff, and every failure
    as the port's own error."""

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        webhook_secret: SecretStr | None,
        api_base: str,
        public_base_url: str,
        client: httpx.Client | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(public_base_url=public_base_url)
        self.api_base = api_base.rstrip("/")
        self.backoff = backoff
        self._client = client
        # Checked when used: an IPN needs no API key, a checkout no webhook secret.
        self._api_key = api_key
        self._webhook_secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: PaymentSettings, **clients: Any) -> PaymentProvider:
        # Each HTTP provider's settings are named after it: WAVE_API_KEY, STRIPE_API_BASE...
        return cls(
            api_key=getattr(settings, f"{cls.name}_api_key"),
            webhook_secret=getattr(settings, f"{cls.name}_webhook_secret"),
            api_base=getattr(settings, f"{cls.name}_api_base"),
            public_base_url=settings.public_base_url,
            **clients,
        )

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx  # lazy: an IPN only verifies, it never pays for the HTTP client

            self._client = httpx.Client(
                timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False
            )
        return self._client

    def send(
        self, method: str, path: str, *, headers: dict[str, str], **content: Any
    ) -> dict[str, Any]:
        """The JSON object the provider answers ``method path`` with. ``content`` is httpx's
        (``json=``, ``data=``); ``headers`` carry the key and the idempotency key, the same on
        every attempt so that a retry never creates a second checkout."""
        import httpx

        failure = ""
        for _ in self.backoff:
            try:
                response = self.client.request(
                    method, self.api_base + path, headers=headers, **content
                )
            except httpx.TimeoutException:
                failure = "timed out"
                continue
            except httpx.HTTPError as exc:  # refused, reset, DNS, TLS: its type, never its text
                failure = type(exc).__name__
                continue
            if response.is_success:
                return self._answer(response)
            failure = f"{response.status_code} {self.error_message(response)}"
            if response.status_code not in _RETRYABLE:
                raise PaymentRequestError(f"{self.name} refused {method} {path}: {failure}")
        raise PaymentUnavailableError(f"{self.name} {method} {path}: {failure}")

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        try:
            answer = jsonsafe.loads(response.content)
        except InvalidInputError:
            answer = None
        if not isinstance(answer, dict):
            raise PaymentUnavailableError(f"{self.name}: the answer is not a JSON object")
        return answer

    def error_message(self, response: httpx.Response) -> str:
        """The provider's own words for a refusal, short; its reason phrase otherwise."""
        try:
            body = jsonsafe.loads(response.content)
        except InvalidInputError:
            body = None
        message = self.message_of(body) if isinstance(body, dict) else None
        return (message or response.reason_phrase)[:300]

    @abstractmethod
    def message_of(self, error: dict[str, Any]) -> str | None:
        """The message in the provider's error body, if it has one."""


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (lower-case names)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def any_matches(expected: str, candidates: Iterable[str]) -> bool:
    """Whether one of ``candidates`` is ``expected``: each compared in constant time, every one
    compared (no early exit)."""
    wanted = expected.encode()
    return any([hmac.compare_digest(wanted, c.encode(errors="replace")) for c in candidates])
