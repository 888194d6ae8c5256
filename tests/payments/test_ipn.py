"""The IPN function ``POST /webhooks/payments/{provider}``: the signature checked on the raw
body (401/403/400/404), the payment recorded and the order moved once (five concurrent
deliveries, a replay signed again a day later, a retry after a failure at any store call), a
mismatch flagged and never paid, and the
customer's confirmation written once through the queue. Events are signed with the test
provider's helper, and once each with Stripe's and Wave's documented schemes."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from shared import events
from shared.app import App
from shared.checkout import PaymentLink, reference
from shared.ipn import ON_PAID, PAYMENTS
from shared.models import Lead
from shared.orders import get_order
from shared.payments.base import timestamped_signature
from shared.payments.test import TestProvider
from shared.queue.inprocess import InProcessQueue
from shared.settings import CLOUD_VARIABLES
from tests.channels.conftest import Faults, FaultyStore, RecordingQueue
from tests.fixtures.app import Client, Result
from tests.test_tools import ORDER, MakeCtx, call

SHOP_ID = "teranga"
STRIPE_SECRET = "whsec_test_secret_for_the_ipn"
WAVE_SECRET = "wave_sn_WHS_test_secret_for_the_ipn"


@pytest.fixture
def app(make_app: Any) -> App:
    """The test app, with Stripe's and Wave's webhook secrets."""
    return make_app(STRIPE_WEBHOOK_SECRET=STRIPE_SECRET, WAVE_WEBHOOK_SECRET=WAVE_SECRET)


def awaiting(app: App, make_ctx: MakeCtx, quantity: int = 1) -> tuple[Lead, PaymentLink]:
    """A confirmed order of the test shop's boubou (45 000 XOF each), with its payment link."""
    ctx = make_ctx()
    order = call(ctx, "capture_lead", **ORDER, product_id="boubou-brode", quantity=quantity,
                 confirmed=True)  # fmt: skip
    shop = app.shops.get(SHOP_ID)
    link = app.payments.link(shop, order["id"], app.chat.catalog.get(shop), time.time())
    return get_order(app.store, SHOP_ID, order["id"]), link


def signed_event(
    app: App, order: Lead, status: str = "paid", amount: Decimal | None = None, **changes: Any
) -> tuple[bytes, dict[str, str]]:
    provider = app.payments.provider("test")
    assert isinstance(provider, TestProvider) and order.checkout is not None
    now = changes.pop("now", time.time())
    body = provider.event_body(
        order.checkout.id,
        reference(SHOP_ID, order.id),
        order.total if amount is None else amount,
        changes.pop("currency", order.currency),
        status,  # type: ignore[arg-type]
        now,
    )
    return body, provider.sign(body, now)


def post(client: Client, provider: str, body: bytes, headers: dict[str, str]) -> Result:
    return client.request(
        "POST",
        f"/webhooks/payments/{provider}",
        headers={"Content-Type": "application/json", **headers},
        body=body,
    )


def payments(app: App) -> list[dict[str, Any]]:
    return [doc.data for doc in app.store.scan(SHOP_ID, PAYMENTS)]


def drained(app: App) -> None:
    queue = app.queue
    assert isinstance(queue, InProcessQueue)
    assert queue.drain(10)


def confirmations(app: App, order: Lead) -> list[str]:
    doc = app.store.get(SHOP_ID, "conversations", order.conversation_id)
    assert doc is not None
    return [m["text"] for m in doc.data["recent"] if m["text"].startswith("Paiement reçu")]


def test_a_paid_event_pays_the_order_records_the_payment_and_tells_the_customer(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order)
    result = post(client, "test", body, headers)
    assert (result.status, result.json()) == (200, {"ok": True, "outcome": "paid"})
    paid = get_order(app.store, SHOP_ID, order.id)
    assert paid.status == "paid"
    assert [(h.status, h.actor) for h in paid.history][-2:] == [
        ("awaiting_payment", "assistant"),
        ("paid", "payment:test"),
    ]
    [record] = payments(app)
    event = json.loads(body)
    assert record | {"at": 0, "occurred_at": 0} == {
        "provider": "test",
        "event_id": event["id"],
        "reference": order.checkout.id if order.checkout else None,
        "order": order.id,
        "amount": "45000",
        "currency": "XOF",
        "status": "paid",
        "occurred_at": 0,
        "at": 0,
    }
    later = time.time() + 60  # once every event has settled
    [settled] = [e for e in events.read(app.store, SHOP_ID, None, later) if e.kind == "payment"]
    assert (settled.conversation_id, settled.data) == (
        order.conversation_id,
        {"order": order.id, "status": "paid", "provider": "test"},
    )
    drained(app)
    assert confirmations(app, order) == [
        "Paiement reçu, merci ! Commande : 1 × Boubou brodé, 45\u202f000 FCFA."
    ]


@pytest.mark.parametrize(
    ("tamper", "status", "code"),
    [
        (lambda body, headers: (body, {}), 401, "missing_signature"),
        (lambda body, headers: (body + b" ", headers), 403, "invalid_signature"),
        (
            lambda body, headers: (
                body,
                {"Comptoir-Signature": headers["Comptoir-Signature"].replace("v1=", "v1=0")},
            ),
            403,
            "invalid_signature",
        ),
    ],
)
def test_a_forged_or_unsigned_event_changes_nothing(
    client: Client, app: App, make_ctx: MakeCtx, tamper: Any, status: int, code: str
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = tamper(*signed_event(app, order))
    result = post(client, "test", body, headers)
    assert (result.status, result.json()["error"]["code"]) == (status, code)
    assert get_order(app.store, SHOP_ID, order.id).status == "awaiting_payment"
    assert payments(app) == []


def test_a_stale_signature_is_403_and_a_signed_non_event_400(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order, now=time.time() - 301)
    result = post(client, "test", body, headers)
    assert (result.status, result.json()["error"]["code"]) == (403, "stale_signature")
    provider = app.payments.provider("test")
    assert isinstance(provider, TestProvider)
    for garbage in (b"not json", b"[1]", b'{"type": "checkout.paid"}'):
        result = post(client, "test", garbage, provider.sign(garbage))
        assert (result.status, result.json()["error"]["code"]) == (400, "malformed_event")
    assert payments(app) == []


def test_an_unknown_provider_is_404(client: Client, app: App) -> None:
    result = post(client, "paypal", b"{}", {})
    assert (result.status, result.json()["error"]["code"]) == (404, "unknown_provider")


def test_another_amount_or_currency_is_flagged_never_paid(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order, amount=Decimal("4500"))
    result = post(client, "test", body, headers)
    assert (result.status, result.json()["outcome"]) == (200, "mismatch")
    flagged = get_order(app.store, SHOP_ID, order.id)
    assert (flagged.status, flagged.history[-1].actor) == ("payment_mismatch", "payment:test")
    other, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, other, currency="EUR", amount=Decimal("45000"))
    assert post(client, "test", body, headers).json()["outcome"] == "mismatch"
    assert get_order(app.store, SHOP_ID, other.id).status == "payment_mismatch"
    drained(app)
    assert confirmations(app, order) == [] and confirmations(app, other) == []


def test_a_failed_payment_marks_the_order_and_a_new_link_can_follow(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, first = awaiting(app, make_ctx)
    body, headers = signed_event(app, order, status="failed")
    assert post(client, "test", body, headers).json()["outcome"] == "failed"
    assert get_order(app.store, SHOP_ID, order.id).status == "payment_failed"
    shop = app.shops.get(SHOP_ID)
    again = app.payments.link(shop, order.id, app.chat.catalog.get(shop), time.time())
    assert again.url != first.url
    assert get_order(app.store, SHOP_ID, order.id).status == "awaiting_payment"


def test_five_concurrent_deliveries_make_one_payment_one_move_one_message(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order)
    barrier = threading.Barrier(5)
    answers: list[int] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(post(client, "test", body, headers).status)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 5
    drained(app)
    assert len(payments(app)) == 1
    paid = get_order(app.store, SHOP_ID, order.id)
    assert [h.status for h in paid.history].count("paid") == 1
    assert len(confirmations(app, order)) == 1


def test_a_replay_signed_again_a_day_later_changes_nothing(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order)
    assert post(client, "test", body, headers).json()["outcome"] == "paid"
    drained(app)
    before = get_order(app.store, SHOP_ID, order.id)
    provider = app.payments.provider("test")
    assert isinstance(provider, TestProvider)
    replay = post(client, "test", body, provider.sign(body, time.time() + 86400 - 60))
    # The provider's clock a day on is ours too: sign now, as a replay reaching us now would be.
    assert replay.status == 403  # a day-old signature is stale...
    replay = post(client, "test", body, provider.sign(body))  # ...so a replay is re-signed now
    assert (replay.status, replay.json()["outcome"]) == (200, "duplicate")
    drained(app)
    assert get_order(app.store, SHOP_ID, order.id) == before
    assert len(payments(app)) == 1 and len(confirmations(app, order)) == 1


def test_the_paid_hooks_run_once_the_order_is_paid(
    client: Client, app: App, make_ctx: MakeCtx
) -> None:
    seen: list[tuple[str, str]] = []
    ON_PAID.append(lambda _app, shop, order, event, paid_id: seen.append((order.id, paid_id)))
    try:
        order, _ = awaiting(app, make_ctx)
        assert post(client, "test", *signed_event(app, order)).json()["outcome"] == "paid"
    finally:
        ON_PAID.pop()
    assert [order_id for order_id, _ in seen] == [order.id]


def test_a_stripe_event_signed_as_stripe_documents_pays_the_order(
    app: App, make_ctx: MakeCtx, client: Client
) -> None:
    order, _ = awaiting(app, make_ctx, quantity=2)
    assert order.checkout is not None
    now = int(time.time())
    event = {
        "id": "evt_1Stripe",
        "type": "checkout.session.completed",
        "created": now,
        "data": {
            "object": {
                "id": "cs_test_1",
                "client_reference_id": reference(SHOP_ID, order.id),
                "payment_status": "paid",
                "amount_total": 90000,  # XOF is zero-decimal: the amount itself
                "currency": "xof",
            }
        },
    }
    body = json.dumps(event).encode()
    signature = timestamped_signature(STRIPE_SECRET, body, now, ".")
    result = post(client, "stripe", body, {"Stripe-Signature": signature})
    assert (result.status, result.json().get("outcome")) == (200, "paid"), result.body
    assert get_order(app.store, SHOP_ID, order.id).status == "paid"
    assert payments(app)[0]["provider"] == "stripe"


def test_a_wave_event_signed_as_wave_documents_pays_the_order(
    app: App, make_ctx: MakeCtx, client: Client
) -> None:
    order, _ = awaiting(app, make_ctx)
    now = int(time.time())
    event = {
        "id": "EV_wave_1",
        "type": "checkout.session.completed",
        "data": {
            "id": "cos-1",
            "client_reference": reference(SHOP_ID, order.id),
            "payment_status": "succeeded",
            "amount": "45000",
            "currency": "XOF",
            "when_completed": "2024-01-01T17:45:00Z",
        },
    }
    body = json.dumps(event).encode()
    signature = timestamped_signature(WAVE_SECRET, body, now, "")  # "<t><body>": no separator
    result = post(client, "wave", body, {"Wave-Signature": signature})
    assert (result.status, result.json()["outcome"]) == (200, "paid")
    assert get_order(app.store, SHOP_ID, order.id).status == "paid"


@pytest.mark.parametrize("fail_at", range(6))
def test_a_delivery_failing_at_any_store_call_is_completed_by_the_retry(
    client: Client, app: App, make_ctx: MakeCtx, fail_at: int
) -> None:
    order, _ = awaiting(app, make_ctx)
    faults = Faults()
    app.store = FaultyStore(app.store, faults)
    queue = RecordingQueue()
    app.queue = queue
    body, headers = signed_event(app, order)
    faults.fail_at = fail_at  # the IPN's store calls: claim, order, record, order, move, done
    statuses = [post(client, "test", body, headers).status]
    faults.recover()
    while statuses[-1] != 200:  # the provider delivers again
        assert len(statuses) < 4, statuses
        statuses.append(post(client, "test", body, headers).status)
    assert statuses[0] in (200, 503)
    assert len(payments(app)) == 1
    paid = get_order(app.store, SHOP_ID, order.id)
    assert [h.status for h in paid.history].count("paid") == 1
    assert {item.dedup_id for item in queue.items} == {f"payment:{paid.payment_id}"}


@pytest.mark.parametrize("platform_variable", CLOUD_VARIABLES)
def test_a_deployed_function_refuses_the_test_provider_with_its_public_secret(
    client: Client,
    app: App,
    make_app: Any,
    make_ctx: MakeCtx,
    monkeypatch: pytest.MonkeyPatch,
    platform_variable: str,
) -> None:
    """Anyone can sign with the default PAYMENT_TEST_SECRET (it is in this repository): on
    Lambda or Cloud Functions the test provider then neither takes events nor makes links."""
    order, _ = awaiting(app, make_ctx)
    body, headers = signed_event(app, order)
    monkeypatch.setenv(platform_variable, "comptoir-prod-payments")
    deployed = make_app(STRIPE_WEBHOOK_SECRET=STRIPE_SECRET, WAVE_WEBHOOK_SECRET=WAVE_SECRET)
    result = post(client, "test", body, headers)
    assert (result.status, result.json()["error"]["code"]) == (503, "not_configured")
    assert "PAYMENT_TEST_SECRET" in result.json()["error"]["message"]
    assert payments(deployed) == []
    # With a secret of the shop's own, a deployed test provider works (a staging shop).
    own = make_app(PAYMENT_TEST_SECRET="a-staging-secret-of-our-own")
    assert isinstance(own.payments.provider("test"), TestProvider)
