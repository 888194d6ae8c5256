"""The payment-provider port and the factory that opens a provider by name.

A provider creates a hosted checkout for an order and reads the events it posts back:
``create_checkout(CheckoutOrder) -> Checkout`` and ``verify_and_parse(raw_body, headers, now)
-> PaymentEvent | None`` (the signature checked on the raw body first; None for an authentic
event the port does not act on). Amounts are ``Decimal`` in the currency's main unit on this
side; errors are ``shared.payments.exceptions``. The port knows no order, shop or customer.

Providers: ``test`` (the embedded default: a checkout page on our own dev server, events signed
with ``PAYMENT_TEST_SECRET``), ``wave`` (Wave Checkout API and webhooks), ``stripe`` (Checkout
Sessions over the REST API).

Adding a provider (CinetPay, PayDunya, Orange Money…):

1. ``shared/payments/<name>.py``: a ``PaymentProvider`` subclass (``HTTPProvider`` for a REST
   API: it brings the httpx client, the retries and the error translation) with
   ``from_settings``, ``create_checkout`` (amounts through ``exact_amount`` or
   ``minor_units``, our order reference in the provider's own reference field, an idempotency
   key if the API takes one), ``verify`` (the provider's signature or secret on the raw body,
   constant-time, ``verify_timestamped`` if it signs ``t=…,v1=…``), ``parse`` (its event to a
   ``PaymentEvent`` through the ``*_field`` helpers, None for what does not concern a payment)
   and ``message_of`` (its error body's message). It imports only this package and the base
   modules (``tests/test_layering.py``).
2. Its keys in ``shared/settings.py`` (``SecretStr``), ``.env.example`` and ``PaymentSettings``.
3. One line in ``PROVIDERS`` below.
4. A loopback server speaking its API and signing its webhooks as its docs say
   (``tests/fixtures/<name>_server.py``) and its name in the contract suite's parameters
   (``tests/payments/test_contract.py``).
"""

from __future__ import annotations

from typing import Any

from shared.backends import choose, load_target
from shared.payments.base import (
    Checkout,
    CheckoutOrder,
    PaymentEvent,
    PaymentProvider,
    PaymentSettings,
    PaymentStatus,
)

PROVIDERS = {
    "test": "shared.payments.test:TestProvider",
    "wave": "shared.payments.wave:WaveProvider",
    "stripe": "shared.payments.stripe:StripeProvider",
}


def open_provider(name: str, settings: PaymentSettings, **clients: Any) -> PaymentProvider:
    """Provider ``name`` with its keys from ``settings``; an ``httpx.Client`` may be injected
    as ``client`` (tests), and a ``backoff``."""
    unknown = f"unknown payment provider {name!r} (have: {', '.join(PROVIDERS)})"
    provider: PaymentProvider = load_target(choose(PROVIDERS, name, unknown)).from_settings(
        settings, **clients
    )
    return provider


__all__ = [
    "PROVIDERS",
    "Checkout",
    "CheckoutOrder",
    "PaymentEvent",
    "PaymentProvider",
    "PaymentSettings",
    "PaymentStatus",
    "open_provider",
]
