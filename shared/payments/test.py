"""The ``test`` provider: the embedded default, no account, no network.

A checkout is a random id and a page on our own server, ``{PUBLIC_BASE_URL}/pay/{id}``, which
the dev server serves with "Pay" and "Fail" buttons. Those post an event built by
``event_body`` and signed by ``sign`` (Stripe's scheme: ``Comptoir-Signature: t=<unix
seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` under ``PAYMENT_TEST_SECRET``) to the IPN
function, which verifies it like any provider's. The event:

    {"id": "evt_…", "type": "checkout.paid", "created": 1700000000,
     "data": {"checkout": "chk_…", "order": "ORDER", "amount": "15000", "currency": "XOF"}}

``type`` is ``checkout.`` and one of the port's statuses (paid, failed, expired, refunded).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.payments.base import (
    Checkout,
    CheckoutOrder,
    PaymentEvent,
    PaymentProvider,
    PaymentSettings,
    PaymentStatus,
    currency_field,
    decimal_field,
    exact_amount,
    int_field,
    text_field,
    timestamped_signature,
    verify_timestamped,
)

SIGNATURE_HEADER = "Comptoir-Signature"
CHECKOUT_LIFETIME = 24 * 3600.0  # seconds, as Stripe's default
_STATUSES: dict[str, PaymentStatus] = {
    "checkout.paid": "paid",
    "checkout.failed": "failed",
    "checkout.expired": "expired",
    "checkout.refunded": "refunded",
}


class TestProvider(PaymentProvider):
    name = "test"
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, *, secret: str, public_base_url: str) -> None:
        super().__init__(public_base_url=public_base_url)
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: PaymentSettings, **_clients: Any) -> TestProvider:
        return cls(
            secret=settings.payment_test_secret.get_secret_value(),
            public_base_url=settings.public_base_url,
        )

    def create_checkout(self, order: CheckoutOrder) -> Checkout:
        exact_amount(order.amount, order.currency)  # the same refusals as a real provider
        checkout_id = "chk_" + secrets.token_urlsafe(18)
        return Checkout(
            id=checkout_id,
            url=f"{self.public_base_url}/pay/{checkout_id}",
            expires_at=time.time() + CHECKOUT_LIFETIME,
        )

    def event_body(
        self,
        checkout_id: str,
        order_reference: str,
        amount: Decimal,
        currency: str,
        status: PaymentStatus,
        now: float,
    ) -> bytes:
        """The body of an event about ``checkout_id``, as the checkout page posts it."""
        event = {
            "id": "evt_" + secrets.token_urlsafe(18),
            "type": f"checkout.{status}",
            "created": int(now),
            "data": {
                "checkout": checkout_id,
                "order": order_reference,
                "amount": str(exact_amount(amount, currency)),
                "currency": currency.upper(),
            },
        }
        return json.dumps(event, separators=(",", ":")).encode()

    def sign(self, raw_body: bytes, now: float | None = None) -> dict[str, str]:
        """The headers that make ``raw_body`` an authentic event, signed at ``now``."""
        timestamp = int(time.time() if now is None else now)
        return {SIGNATURE_HEADER: timestamped_signature(self._secret, raw_body, timestamp, ".")}

    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: float) -> None:
        verify_timestamped(
            headers.get(SIGNATURE_HEADER.lower(), ""),
            raw_body,
            self._secret,
            now,
            separator=".",
            name=SIGNATURE_HEADER,
        )

    def parse(self, event: dict[str, Any], now: float) -> PaymentEvent | None:
        status = _STATUSES.get(text_field(event, "type"))
        if status is None:
            return None
        return PaymentEvent(
            event_id=text_field(event, "id"),
            provider_reference=text_field(event, "data.checkout"),
            order_reference=text_field(event, "data.order"),
            amount=decimal_field(event, "data.amount"),
            currency=currency_field(event, "data.currency"),
            status=status,
            occurred_at=float(int_field(event, "created")),
        )
