"""Stripe: Checkout Sessions over its REST API with httpx (no SDK).

- Checkout: ``POST /v1/checkout/sessions``, form-encoded, ``Authorization: Bearer
  STRIPE_API_KEY``, an ``Idempotency-Key`` header (the same on every retry): ``mode=payment``,
  one line item with ``price_data`` (lower-case ``currency``, ``unit_amount`` in the currency's
  smallest unit: cents for EUR/USD, the amount itself for XOF/XAF/JPY, Stripe's zero-decimal
  currencies), ``client_reference_id`` and ``metadata[order]`` = our order, and the order also in
  ``payment_intent_data[metadata][order]`` (Stripe copies it onto the charge, which is what a
  refund event carries). The answer's ``id``, ``url`` and ``expires_at`` (unix seconds) make
  the Checkout.
- Webhooks: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``
  under ``STRIPE_WEBHOOK_SECRET`` (the endpoint's ``whsec_…``, used as it is), several ``v1``
  while a secret is rolled. Events read: ``checkout.session.completed`` (paid once
  ``payment_status`` is ``paid``; a delayed method pays later) and
  ``checkout.session.async_payment_succeeded`` → paid, ``checkout.session.async_payment_failed``
  → failed, ``checkout.session.expired`` → expired, ``charge.refunded`` → refunded (the amount
  refunded so far). Others are acknowledged and ignored.
- Errors: ``{"error": {"type", "message"}}``; 409 (a concurrent request with the same
  idempotency key), 429 and 5xx are retried.
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
    currency_field,
    field,
    from_minor_units,
    int_field,
    minor_units,
    secret_value,
    text_field,
    verify_timestamped,
)
from shared.payments.exceptions import PaymentUnavailableError

SIGNATURE_HEADER = "Stripe-Signature"
_SESSION_STATUSES: dict[str, PaymentStatus] = {
    "checkout.session.completed": "paid",
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
}


class StripeProvider(HTTPProvider):
    name = "stripe"

    def create_checkout(self, order: CheckoutOrder) -> Checkout:
        form = {
            "mode": "payment",
            "client_reference_id": order.reference,
            "metadata[order]": order.reference,
            "payment_intent_data[metadata][order]": order.reference,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": order.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(
                minor_units(order.amount, order.currency)
            ),
            "line_items[0][price_data][product_data][name]": order.description,
            "success_url": self.return_url(order.success_url),
            "cancel_url": self.return_url(order.cancel_url),
        }
        headers = {
            "Authorization": f"Bearer {secret_value(self._api_key, 'STRIPE_API_KEY')}",
            "Idempotency-Key": order.idempotency_key or str(uuid.uuid4()),
        }
        session = self.send("POST", "/v1/checkout/sessions", headers=headers, data=form)
        session_id, url = session.get("id"), session.get("url")
        expires_at = session.get("expires_at")
        if not isinstance(session_id, str) or not isinstance(url, str):
            raise PaymentUnavailableError("stripe: the session has no id or url")
        return Checkout(
            id=session_id,
            url=url,
            expires_at=float(expires_at) if isinstance(expires_at, int) else None,
        )

    def verify(self, raw_body: bytes, headers: Mapping[str, str], now: float) -> None:
        verify_timestamped(
            headers.get(SIGNATURE_HEADER.lower(), ""),
            raw_body,
            secret_value(self._webhook_secret, "STRIPE_WEBHOOK_SECRET"),
            now,
            separator=".",
            name=SIGNATURE_HEADER,
        )

    def parse(self, event: dict[str, Any], now: float) -> PaymentEvent | None:
        kind = text_field(event, "type")
        if kind == "charge.refunded":
            return self._refund(event)
        status = _SESSION_STATUSES.get(kind)
        if status is None:
            return None
        completed = kind == "checkout.session.completed"
        if completed and field(event, "data.object.payment_status") != "paid":
            return None  # a delayed method (bank debit): async_payment_succeeded/failed follows
        currency = currency_field(event, "data.object.currency")
        return PaymentEvent(
            event_id=text_field(event, "id"),
            provider_reference=text_field(event, "data.object.id"),
            order_reference=text_field(event, "data.object.client_reference_id"),
            amount=from_minor_units(int_field(event, "data.object.amount_total"), currency),
            currency=currency,
            status=status,
            occurred_at=float(int_field(event, "created")),
        )

    def _refund(self, event: dict[str, Any]) -> PaymentEvent:
        currency = currency_field(event, "data.object.currency")
        paid_by = "payment_intent" if field(event, "data.object").get("payment_intent") else "id"
        return PaymentEvent(
            event_id=text_field(event, "id"),
            provider_reference=text_field(event, f"data.object.{paid_by}"),
            order_reference=text_field(event, "data.object.metadata.order"),
            amount=from_minor_units(int_field(event, "data.object.amount_refunded"), currency),
            currency=currency,
            status="refunded",
            occurred_at=float(int_field(event, "created")),
        )

    def message_of(self, error: dict[str, Any]) -> str | None:
        detail = error.get("error")
        message = detail.get("message") if isinstance(detail, dict) else None
        return message if isinstance(message, str) else None
