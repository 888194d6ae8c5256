"""Errors of the payment-provider port, translated from each provider's own answers. The IPN
function maps the signature errors to responses (missing: 401; invalid or stale: 403; malformed
body: 400); the others reach whoever asked for a checkout."""

from __future__ import annotations

from shared.exceptions import ComptoirError, ConfigError, InvalidInputError


class PaymentError(ComptoirError):
    """Base of the payment port's errors."""


class PaymentNotConfiguredError(PaymentError, ConfigError):
    """The key or secret an operation needs is not set; the message names the variable."""


class PaymentSignatureError(PaymentError):
    """The provider did not send this body: nothing past the check was read."""


class MissingPaymentSignatureError(PaymentSignatureError):
    """The post carries no signature (nor shared secret) at all."""


class InvalidPaymentSignatureError(PaymentSignatureError):
    """A signature (or shared secret) is there but does not match the body and our secret."""


class StalePaymentSignatureError(PaymentSignatureError):
    """The signature matches but its timestamp is outside the tolerance: a replay, or a clock
    far off."""


class MalformedPaymentEventError(PaymentError, InvalidInputError):
    """An authentic body that is not an event this port can read; the message says why."""


class PaymentRequestError(PaymentError):
    """The provider refused the request itself (4xx: bad parameters, key refused), or the amount
    cannot be expressed in the currency: sending it again will not help."""


class PaymentUnavailableError(PaymentError):
    """The provider failed on its side (5xx, 429), timed out or could not be reached, after the
    retries; trying again later may help."""
