"""Wave: the Checkout API and its webhooks (docs.wave.com/checkout, docs.wave.com/webhook).

- Checkout: ``POST /v1/checkout/sessions`` with ``Authorization: Bearer WAVE_API_KEY`` and a
  JSON body: ``amount`` as a decimal string in the currency's main unit ("15000" XOF: no
  decimals; "12.50" for a currency with cents), ``currency``, ``client_reference`` = our order,
  ``success_url``, ``error_url``. The session's ``id`` (``cos-…``), ``wave_launch_url`` and
  ``when_expires`` (ISO 8601) make the Checkout. An ``idempotency-key`` header goes with it, the
  same on every retry: Wave documents it for its Payout API; the Checkout docs say nothing, and
  a server that ignores it loses nothing (both sessions carry the same ``client_reference``).
- Webhooks, either of Wave's two security strategies, with ``WAVE_WEBHOOK_SECRET``:
  - signing secret: ``Wave-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t><raw
    body>">`` (no separator, unlike Stripe), several ``v1`` while a secret is rolled;
  - shared secret: ``Authorization: Bearer <secret>`` (no timestamp: replays are the IPN's
    dedupe's to stop).
  The body is an event ``{"id", "type", "data": <checkout session>}``: ``checkout.session.
  completed`` (``payment_status`` ``succeeded``) → paid, ``checkout.session.payment_failed`` →
  failed; the others (``merchant.payment_received``, ``b2b.…``) are acknowledged and ignored.
  Wave sends no expiry or refund events.
- Errors: ``{"code", "message"}``; 429 and 5xx are retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from shared.payments.base import (
    Checkout,
    CheckoutOrder,
    HTTPProvider,
    PaymentEvent,
    PaymentStatus,
    any_matches,
    bearer,
    currency_field,
    decimal_field,
    exact_amount,
    field,
    secret_value,
    text_field,
    time_field,
    verify_timestamped,
)
from shared.payments.exceptions import (
    InvalidPaymentSignatureError,
    MalformedPaymentEventError,
    MissingPaymentSignatureError,
    PaymentUnavailableError,
)

SIGNATURE_HEADER = "Wave-Signature"


class WaveProvider(HTTPProvider):
    name = "wave"

    def create_checkout(self, order: CheckoutOrder) -> Checkout:
        body = {
            "amount": str(exact_amount(order.amount, order.currency)),
            "currency": order.currency.upper(),
            "client_reference": order.reference,
            "success_url": self.return_url(order.success_url),
            "error_url": self.return_url(order.cancel_url),
        }
        headers = {
            "Authorization": f"Bearer {secret_value(self._api_key, 'WAVE_API_KEY')}",
            "idempotency-key": order.idempotency_key or str(uuid.uuid4()),
        }
        session = self.send("POST", "/v1/checkout/sessions", headers=headers, json=body)
        session_id, url = session.get("id"), session.get("wave_launch_url")
        if not isinstance(session_id, str) or not isinstance(url, str):
            raise PaymentUnavailableError("wave: the session has no id or wave_launch_url")
        try:
            expires_at: float | None = time_field(session, "when_expires")
        except MalformedPaymentEventError:
            expires_at = None
        return Checkout(id=session_id, url=url, expires_at=expires_at)

    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: float) -> None:
        secret = secret_value(self._webhook_secret, "WAVE_WEBHOOK_SECRET")
        if SIGNATURE_HEADER.lower() in headers:
            verify_timestamped(
                headers[SIGNATURE_HEADER.lower()],
                raw_body,
                secret,
                now,
                separator="",
                name=SIGNATURE_HEADER,
            )
            return
        token = bearer(headers)
        if token is None:
            raise MissingPaymentSignatureError(
                f"no {SIGNATURE_HEADER} header nor Authorization: Bearer secret"
            )
        if not any_matches(secret, [token]):
            raise InvalidPaymentSignatureError("Authorization: the shared secret does not match")

    def parse(self, event: dict[str, Any], now: float) -> PaymentEvent | None:
        kind = text_field(event, "type")
        if kind == "checkout.session.completed":
            if field(event, "data.payment_status") != "succeeded":
                return None
            occurred_at = time_field(event, "data.when_completed")
            status: PaymentStatus = "paid"
        elif kind == "checkout.session.payment_failed":
            occurred_at, status = now, "failed"  # a failure carries no time of its own
        else:
            return None
        return PaymentEvent(
            event_id=text_field(event, "id"),
            provider_reference=text_field(event, "data.id"),
            order_reference=text_field(event, "data.client_reference"),
            amount=decimal_field(event, "data.amount"),
            currency=currency_field(event, "data.currency"),
            status=status,
            occurred_at=occurred_at,
        )

    def message_of(self, error: dict[str, Any]) -> str | None:
        message = error.get("message")
        return message if isinstance(message, str) else None
