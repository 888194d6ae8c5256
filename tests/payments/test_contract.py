"""The payment-provider contract, run against every provider: the test provider as it is, Wave
and Stripe against loopback servers that speak their APIs and sign their webhooks as their docs
say (tests/fixtures/wave_server.py, stripe_server.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from shared.backoff import Backoff
from shared.exceptions import ConfigError
from shared.payments import (
    PROVIDERS,
    Checkout,
    CheckoutOrder,
    PaymentProvider,
    PaymentStatus,
    open_provider,
)
from shared.payments.base import from_minor_units, minor_units
from shared.payments.exceptions import (
    InvalidPaymentSignatureError,
    MalformedPaymentEventError,
    MissingPaymentSignatureError,
    PaymentNotConfiguredError,
    PaymentRequestError,
    PaymentUnavailableError,
    StalePaymentSignatureError,
)
from shared.payments.test import TestProvider
from shared.settings import Settings
from tests.fixtures import stripe_server as stripe_fixture
from tests.fixtures import wave_server as wave_fixture
from tests.fixtures.stripe_server import StripeServer
from tests.fixtures.wave_server import WaveServer

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_760_000_000  # signing and checking time of the events below
TEST_SECRET = "test-provider-secret-0123456789"
HTTP_PROVIDERS = ["wave", "stripe"]
EVENT_KINDS: dict[str, dict[PaymentStatus, str]] = {
    "wave": {
        "paid": "checkout.session.completed",
        "failed": "checkout.session.payment_failed",
    },
    "stripe": {
        "paid": "checkout.session.completed",
        "failed": "checkout.session.async_payment_failed",
        "expired": "checkout.session.expired",
        "refunded": "charge.refunded",
    },
}


@dataclass
class UnderTest:
    name: str
    provider: PaymentProvider
    server: WaveServer | StripeServer | None  # None: the test provider needs none
    sign: Callable[[bytes, int], dict[str, str]]  # headers as the provider signs a body
    forge: Callable[[bytes, int], dict[str, str]]  # the same, under a secret not ours
    sleeps: list[float]  # the backoff's waits

    def event(self, checkout: Checkout, order: CheckoutOrder, status: PaymentStatus) -> bytes:
        """The body the provider posts when ``checkout`` of ``order`` ends in ``status``."""
        if isinstance(self.provider, TestProvider):
            return self.provider.event_body(
                checkout.id, order.reference, order.amount, order.currency, status, NOW
            )
        assert self.server is not None
        return self.server.event(checkout.id, EVENT_KINDS[self.name][status], NOW)

    def sent_amount(self) -> str:
        """The amount the provider's server received with the last checkout."""
        assert self.server is not None
        body = self.server.seen[-1].body
        if self.name == "stripe":
            return parse_qs(body.decode())["line_items[0][price_data][unit_amount]"][0]
        return str(httpx.Response(200, content=body).json()["amount"])


def settings_for(**overrides: str) -> Settings:
    values = {
        "PAYMENT_TEST_SECRET": TEST_SECRET,
        "PUBLIC_BASE_URL": "https://shop.example",
        "WAVE_API_KEY": wave_fixture.API_KEY,
        "WAVE_WEBHOOK_SECRET": wave_fixture.WEBHOOK_SECRET,
        "STRIPE_API_KEY": stripe_fixture.API_KEY,
        "STRIPE_WEBHOOK_SECRET": stripe_fixture.WEBHOOK_SECRET,
    }
    return Settings.from_env({**values, **overrides}, env_file=None)


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=0.5) as client:
        yield client


def make(
    name: str,
    request: pytest.FixtureRequest,
    client: httpx.Client,
    **overrides: str,
) -> UnderTest:
    sleeps: list[float] = []
    backoff = Backoff(attempts=3, base_delay=0.01, max_delay=0.02, sleep=sleeps.append)
    if name == "test":
        provider = open_provider("test", settings_for(**overrides))
        assert isinstance(provider, TestProvider)
        other = TestProvider(secret="not-our-secret-0123456789", public_base_url="")
        return UnderTest(
            name, provider, None, lambda b, t: provider.sign(b, t), other.sign, sleeps
        )
    server: WaveServer | StripeServer = request.getfixturevalue(f"{name}_server")
    server.reset()
    variable = f"{name.upper()}_API_BASE"
    settings = settings_for(**{variable: server.base_url, **overrides})
    provider = open_provider(name, settings, client=client, backoff=backoff)
    return UnderTest(
        name,
        provider,
        server,
        server.sign,
        lambda body, t: server.sign(body, t, "some-other-secret"),
        sleeps,
    )


@pytest.fixture(params=list(PROVIDERS))
def payments(request: pytest.FixtureRequest, http_client: httpx.Client) -> UnderTest:
    return make(request.param, request, http_client)


@pytest.fixture(params=HTTP_PROVIDERS)
def http_payments(request: pytest.FixtureRequest, http_client: httpx.Client) -> UnderTest:
    return make(request.param, request, http_client)


def order(amount: str = "15000", currency: str = "XOF", **extra: str) -> CheckoutOrder:
    return CheckoutOrder(
        reference="ord_42",
        amount=Decimal(amount),
        currency=currency,
        description="2 x Wax",
        **extra,
    )


# --- checkout ------------------------------------------------------------------------------


def test_a_checkout_has_an_id_a_url_and_an_expiry(payments: UnderTest) -> None:
    checkout = payments.provider.create_checkout(order())
    assert checkout.id
    assert checkout.url.startswith("https://")
    assert checkout.expires_at is not None
    assert checkout.expires_at > time.time()
    if payments.name == "test":
        assert checkout.url == f"https://shop.example/pay/{checkout.id}"


def test_two_checkouts_have_two_ids(payments: UnderTest) -> None:
    first = payments.provider.create_checkout(order())
    second = payments.provider.create_checkout(order())
    assert first.id != second.id


@pytest.mark.parametrize(
    ("amount", "currency", "wave", "stripe"),
    [
        ("15000", "XOF", "15000", "15000"),
        ("15000.00", "XOF", "15000", "15000"),
        ("12.50", "EUR", "12.50", "1250"),
        ("12.5", "EUR", "12.50", "1250"),
        ("7", "usd", "7.00", "700"),
        ("3500", "XAF", "3500", "3500"),
    ],
)
def test_the_amount_reaches_the_provider_in_its_units(
    http_payments: UnderTest, amount: str, currency: str, wave: str, stripe: str
) -> None:
    http_payments.provider.create_checkout(order(amount, currency))
    assert http_payments.sent_amount() == {"wave": wave, "stripe": stripe}[http_payments.name]


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("12.5", "XOF"), ("0.001", "EUR"), ("0", "EUR"), ("-5", "XOF"), ("NaN", "EUR")],
)
def test_an_amount_the_currency_cannot_hold_is_refused_before_sending(
    payments: UnderTest, amount: str, currency: str
) -> None:
    with pytest.raises(PaymentRequestError):
        payments.provider.create_checkout(order(amount, currency))
    assert payments.server is None or payments.server.seen == []


def test_the_order_reference_and_return_urls_reach_the_provider(http_payments: UnderTest) -> None:
    http_payments.provider.create_checkout(
        order(success_url="https://shop.example/ok", cancel_url="https://shop.example/ko")
    )
    assert http_payments.server is not None
    body = http_payments.server.seen[-1].body.decode()
    if http_payments.name == "stripe":
        form = {k: v[0] for k, v in parse_qs(body).items()}
        assert form["client_reference_id"] == "ord_42"
        assert form["metadata[order]"] == "ord_42"
        assert (form["success_url"], form["cancel_url"]) == (
            "https://shop.example/ok",
            "https://shop.example/ko",
        )
        assert form["mode"] == "payment"
        assert form["line_items[0][price_data][currency]"] == "xof"
    else:
        sent = httpx.Response(200, content=body).json()
        assert sent["client_reference"] == "ord_42"
        assert (sent["success_url"], sent["error_url"]) == (
            "https://shop.example/ok",
            "https://shop.example/ko",
        )
        assert sent["currency"] == "XOF"


def test_without_return_urls_the_customer_comes_back_to_our_root(
    http_payments: UnderTest,
) -> None:
    http_payments.provider.create_checkout(order())
    assert http_payments.server is not None
    body = http_payments.server.seen[-1].body
    if http_payments.name == "stripe":
        sent = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        urls = (sent["success_url"], sent["cancel_url"])
    else:
        sent = httpx.Response(200, content=body).json()
        urls = (sent["success_url"], sent["error_url"])
    assert urls == ("https://shop.example/", "https://shop.example/")


def test_server_errors_are_retried_with_the_same_idempotency_key(
    http_payments: UnderTest,
) -> None:
    assert http_payments.server is not None
    http_payments.server.fail[:] = [503, 500]
    checkout = http_payments.provider.create_checkout(order())
    assert checkout.id
    seen = http_payments.server.seen
    assert len(seen) == 3
    assert len({request.headers["idempotency-key"] for request in seen}) == 1
    assert len(http_payments.sleeps) == 2


def test_a_given_idempotency_key_is_sent(http_payments: UnderTest) -> None:
    http_payments.provider.create_checkout(order(idempotency_key="ord_42-1"))
    assert http_payments.server is not None
    assert http_payments.server.seen[-1].headers["idempotency-key"] == "ord_42-1"


def test_a_timeout_is_retried(http_payments: UnderTest) -> None:
    assert http_payments.server is not None
    http_payments.server.stall = 1
    assert http_payments.provider.create_checkout(order()).id
    assert len(http_payments.server.seen) == 2


def test_persistent_server_errors_become_unavailable(http_payments: UnderTest) -> None:
    assert http_payments.server is not None
    http_payments.server.fail[:] = [502, 503, 500, 500]
    with pytest.raises(PaymentUnavailableError, match="500 scripted failure"):
        http_payments.provider.create_checkout(order())
    assert len(http_payments.server.seen) == 3  # the backoff's attempts, no more


def test_rate_limiting_is_retried_then_unavailable(http_payments: UnderTest) -> None:
    assert http_payments.server is not None
    http_payments.server.fail[:] = [429, 429, 429]
    with pytest.raises(PaymentUnavailableError):
        http_payments.provider.create_checkout(order())


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refusal_is_a_request_error_and_not_retried(
    http_payments: UnderTest, status: int
) -> None:
    assert http_payments.server is not None
    http_payments.server.fail[:] = [status]
    with pytest.raises(PaymentRequestError, match=f"{status} scripted failure"):
        http_payments.provider.create_checkout(order())
    assert len(http_payments.server.seen) == 1


def test_a_wrong_api_key_is_a_request_error(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    for name in HTTP_PROVIDERS:
        under_test = make(name, request, http_client, **{f"{name.upper()}_API_KEY": "nope"})
        with pytest.raises(PaymentRequestError, match="401"):
            under_test.provider.create_checkout(order())


def test_an_unreachable_provider_is_unavailable(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    for name in HTTP_PROVIDERS:
        under_test = make(name, request, http_client, **{f"{name.upper()}_API_BASE": "http://127.0.0.1:9"})
        with pytest.raises(PaymentUnavailableError):
            under_test.provider.create_checkout(order())


def test_a_missing_api_key_names_its_variable(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    for name in HTTP_PROVIDERS:
        variable = f"{name.upper()}_API_KEY"
        under_test = make(name, request, http_client, **{variable: ""})
        with pytest.raises(PaymentNotConfiguredError, match=variable):
            under_test.provider.create_checkout(order())
        assert under_test.server is not None
        assert under_test.server.seen == []


# --- events --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"), [("15000", "XOF"), ("12.50", "EUR")]
)
def test_a_signed_paid_event_is_a_payment_event(
    payments: UnderTest, amount: str, currency: str
) -> None:
    sent = order(amount, currency)
    checkout = payments.provider.create_checkout(sent)
    body = payments.event(checkout, sent, "paid")
    event = payments.provider.verify_and_parse(body, payments.sign(body, NOW), NOW)
    assert event is not None
    assert event.status == "paid"
    assert event.order_reference == "ord_42"
    assert event.provider_reference == checkout.id
    assert event.amount == Decimal(amount)
    assert str(event.amount) == amount  # the currency's own digits: 12.50, not 12.5 or 1250
    assert event.currency == currency
    assert event.event_id
    assert event.occurred_at == NOW


def test_a_failed_payment_is_a_failed_event(payments: UnderTest) -> None:
    sent = order()
    checkout = payments.provider.create_checkout(sent)
    body = payments.event(checkout, sent, "failed")
    event = payments.provider.verify_and_parse(body, payments.sign(body, NOW), NOW)
    assert event is not None
    assert (event.status, event.order_reference, event.amount) == ("failed", "ord_42", 15000)


def test_header_names_are_read_in_any_case(payments: UnderTest) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    headers = {name.lower(): value for name, value in payments.sign(body, NOW).items()}
    assert payments.provider.verify_and_parse(body, headers, NOW) is not None


def test_a_missing_signature_is_refused(payments: UnderTest) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    with pytest.raises(MissingPaymentSignatureError):
        payments.provider.verify_and_parse(body, {"Content-Type": "application/json"}, NOW)


def test_a_signature_under_another_secret_is_refused(payments: UnderTest) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    with pytest.raises(InvalidPaymentSignatureError):
        payments.provider.verify_and_parse(body, payments.forge(body, NOW), NOW)


def test_a_body_changed_after_signing_is_refused(payments: UnderTest) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    headers = payments.sign(body, NOW)
    tampered = body.replace(b"15000", b"15")
    assert tampered != body
    with pytest.raises(InvalidPaymentSignatureError):
        payments.provider.verify_and_parse(tampered, headers, NOW)


@pytest.mark.parametrize("header", ["t=abc,v1=00", "v1=00", "t=1760000000", "garbage"])
def test_a_garbled_signature_header_is_refused(payments: UnderTest, header: str) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    (name,) = payments.sign(body, NOW)
    with pytest.raises(InvalidPaymentSignatureError):
        payments.provider.verify_and_parse(body, {name: header}, NOW)


@pytest.mark.parametrize(("age", "stale"), [(299, False), (301, True), (-301, True), (3600, True)])
def test_a_signature_older_than_five_minutes_is_stale(
    payments: UnderTest, age: int, stale: bool
) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    headers = payments.sign(body, NOW - age)
    if stale:
        with pytest.raises(StalePaymentSignatureError):
            payments.provider.verify_and_parse(body, headers, NOW)
    else:
        assert payments.provider.verify_and_parse(body, headers, NOW) is not None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"id": "evt_1", "type": "PAID"}',  # the provider's paid event, with no data
        b"\xff\xfe",
        b"[" * 100 + b"]" * 100,
    ],
)
def test_a_signed_body_that_is_not_an_event_is_malformed(payments: UnderTest, body: bytes) -> None:
    paid = "checkout.paid" if payments.name == "test" else EVENT_KINDS[payments.name]["paid"]
    body = body.replace(b"PAID", paid.encode())
    with pytest.raises(MalformedPaymentEventError):
        payments.provider.verify_and_parse(body, payments.sign(body, NOW), NOW)


def test_an_event_with_a_garbled_amount_is_malformed(payments: UnderTest) -> None:
    sent = order()
    body = payments.event(payments.provider.create_checkout(sent), sent, "paid")
    garbled = body.replace(b"15000", b'"lots"' if payments.name == "stripe" else b"lots")
    with pytest.raises(MalformedPaymentEventError, match="amount"):
        payments.provider.verify_and_parse(garbled, payments.sign(garbled, NOW), NOW)


def test_an_event_type_the_port_ignores_is_none(payments: UnderTest) -> None:
    body = b'{"id": "evt_9", "type": "customer.created", "created": 1760000000, "data": {}}'
    assert payments.provider.verify_and_parse(body, payments.sign(body, NOW), NOW) is None


def test_a_missing_webhook_secret_names_its_variable(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    for name in HTTP_PROVIDERS:
        variable = f"{name.upper()}_WEBHOOK_SECRET"
        under_test = make(name, request, http_client, **{variable: ""})
        body = b'{"id": "evt_1"}'
        with pytest.raises(PaymentNotConfiguredError, match=variable):
            under_test.provider.verify_and_parse(body, under_test.sign(body, NOW), NOW)


# --- provider-specific events --------------------------------------------------------------


def test_stripe_expiry_and_refund_events(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    stripe = make("stripe", request, http_client)
    sent = order("12.50", "EUR")
    checkout = stripe.provider.create_checkout(sent)
    expired = stripe.event(checkout, sent, "expired")
    event = stripe.provider.verify_and_parse(expired, stripe.sign(expired, NOW), NOW)
    assert event is not None
    assert (event.status, event.provider_reference, event.amount) == (
        "expired",
        checkout.id,
        Decimal("12.50"),
    )
    refunded = stripe.event(checkout, sent, "refunded")
    event = stripe.provider.verify_and_parse(refunded, stripe.sign(refunded, NOW), NOW)
    assert event is not None
    assert (event.status, event.order_reference, event.amount, event.currency) == (
        "refunded",
        "ord_42",
        Decimal("12.50"),
        "EUR",
    )


def test_stripe_completed_but_unpaid_waits_for_the_async_result(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    stripe = make("stripe", request, http_client)
    assert isinstance(stripe.server, StripeServer)
    checkout = stripe.provider.create_checkout(order())
    stripe.server.sessions[checkout.id]["payment_status"] = "unpaid"
    body = stripe.server.event(checkout.id, "checkout.session.completed", NOW).replace(
        b'"payment_status": "paid"', b'"payment_status": "unpaid"'
    )
    assert stripe.provider.verify_and_parse(body, stripe.sign(body, NOW), NOW) is None
    later = stripe.server.event(checkout.id, "checkout.session.async_payment_succeeded", NOW)
    event = stripe.provider.verify_and_parse(later, stripe.sign(later, NOW), NOW)
    assert event is not None
    assert event.status == "paid"


def test_stripe_accepts_any_of_several_v1_signatures(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    stripe = make("stripe", request, http_client)
    sent = order()
    body = stripe.event(stripe.provider.create_checkout(sent), sent, "paid")
    good = stripe.sign(body, NOW)["Stripe-Signature"]
    old = stripe.forge(body, NOW)["Stripe-Signature"].split(",")[1]
    rolled = {"Stripe-Signature": good.replace(",v1=", f",{old},v1=")}
    assert stripe.provider.verify_and_parse(body, rolled, NOW) is not None


def test_wave_shared_secret_strategy(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    wave = make("wave", request, http_client)
    sent = order()
    body = wave.event(wave.provider.create_checkout(sent), sent, "paid")
    authorized = {"Authorization": f"Bearer {wave_fixture.WEBHOOK_SECRET}"}
    event = wave.provider.verify_and_parse(body, authorized, NOW)
    assert event is not None
    assert event.status == "paid"
    with pytest.raises(InvalidPaymentSignatureError):
        wave.provider.verify_and_parse(body, {"Authorization": "Bearer guessed"}, NOW)
    with pytest.raises(MissingPaymentSignatureError):
        wave.provider.verify_and_parse(body, {"Authorization": "Basic abc"}, NOW)


def test_wave_signs_timestamp_and_body_without_separator(
    request: pytest.FixtureRequest, http_client: httpx.Client
) -> None:
    """Stripe's "<t>.<body>" is not Wave's "<t><body>": a Stripe-style signature is refused."""
    wave = make("wave", request, http_client)
    sent = order()
    body = wave.event(wave.provider.create_checkout(sent), sent, "paid")
    stripe_style = stripe_fixture.StripeServer.sign(body, NOW, wave_fixture.WEBHOOK_SECRET)
    headers = {"Wave-Signature": stripe_style["Stripe-Signature"]}
    with pytest.raises(InvalidPaymentSignatureError):
        wave.provider.verify_and_parse(body, headers, NOW)


# --- the port ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("15000", "XOF", 15000), ("12.50", "EUR", 1250), ("0.01", "USD", 1), ("1.5", "KWD", 1500)],
)
def test_minor_units_both_ways(amount: str, currency: str, units: int) -> None:
    assert minor_units(Decimal(amount), currency) == units
    assert from_minor_units(units, currency) == Decimal(amount)


def test_an_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown payment provider 'paypal'"):
        open_provider("paypal", settings_for())


def test_the_test_provider_has_a_dev_secret_by_default() -> None:
    provider = open_provider("test", Settings.from_env({}, env_file=None))
    assert isinstance(provider, TestProvider)
    body = provider.event_body("chk_1", "ord_1", Decimal("15000"), "XOF", "paid", NOW)
    assert provider.verify_and_parse(body, provider.sign(body, NOW), NOW) is not None


def test_verifying_an_event_imports_no_http_client() -> None:
    """An IPN only verifies: the port and its providers load httpx when a checkout is made."""
    program = (
        "import sys\n"
        "from shared.payments import open_provider\n"
        "from shared.settings import Settings\n"
        "for name in ('test', 'wave', 'stripe'):\n"
        "    open_provider(name, Settings.from_env({}, env_file=None))\n"
        "print('httpx' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
