"""Payment IPN acknowledgement: latency p50/p99 and store operations per IPN, on SQLite.

What a provider waits for: ``POST /webhooks/payments/test`` with a signed event (the test
provider's scheme, Stripe's ``t=…,v1=…``), verified on the raw body, claimed once (a
create-only write), the payment record created, the order moved to "paid" in a conditional
write and the customer's confirmation queued, then answered 200. In-process through the Lambda
adapter (``functions.payments.lambda_handler``) with API Gateway v2 events, one thread; the
queue only records (the tests' ``RecordingQueue``), so only the acknowledgement is timed. Each
paid event is followed by a redelivery of the same event (a dedupe hit) and a ``GET /healthz``
(the baseline), interleaved. Every order is a distinct confirmed order with its payment link,
made beforehand (not timed).

Store operations are counted by wrapping the SQLite store in the tests' ``FaultyStore`` with no
fault: every primitive call (a read of one or several documents, a write, a delete, a query).

    .venv/bin/python bench/payments.py [--events 500]

Prints Markdown tables for bench/README.md. Traffic stays in the process.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ms
from webhook import Row, access_log_discarded, table, timed

from functions import health
from functions import payments as ipn
from shared.app import App, use_app
from shared.checkout import reference
from shared.crm import save_lead
from shared.ids import new_sortable_id
from shared.models import Lead, StatusChange
from shared.payments.test import TestProvider
from shared.store import open_store
from tests.channels.conftest import Faults, FaultyStore, RecordingQueue
from tests.eventlib import load_event
from tests.fixtures.app import SHOP, make_settings, seed_small_shop

GOAL_P99 = 0.250  # seconds, locally
ROUTE = "/webhooks/payments/test"


def ipn_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway v2 event for the IPN: the recorded chat POST, re-aimed and re-signed."""
    event = load_event("apigw_v2_chat_post")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /webhooks/payments/{provider}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = ROUTE
    event["pathParameters"] = {"provider": "test"}
    lowered = {k.lower(): v for k, v in headers.items()}
    event["headers"] = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        **lowered,
    }
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    return event


def orders(app: App, count: int) -> list[Lead]:
    """Confirmed orders of the test shop's boubou, each with its payment link."""
    shop = app.shops.get(str(SHOP["id"]))
    catalog = app.chat.catalog.get(shop)
    made = []
    for _ in range(count):
        now = time.time()
        lead = save_lead(
            app.store,
            shop.id,
            Lead(
                id=new_sortable_id(),
                customer_id="bench",
                conversation_id=new_sortable_id(),
                channel="web",
                name="Awa",
                phone="+221771234567",
                address="Dakar",
                product_id="boubou-brode",
                product_title="Boubou brodé",
                quantity=1,
                unit_price=45000,
                currency="XOF",
                total=45000,
                status="confirmed",
                history=[StatusChange(status="confirmed", at=now, actor="customer")],
                created_at=now,
                updated_at=now,
            ),
        )
        app.payments.link(shop, lead.id, catalog, now)
        made.append(app.store.get(shop.id, "leads", lead.id))
    return [Lead.from_doc(doc) for doc in made if doc is not None]


def run(events: int) -> tuple[list[Row], Row, float, float, int]:
    """Rows (paid events, redeliveries), /healthz, store operations per paid event and per
    redelivery, and how many notices were queued."""
    with tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp:
        settings = make_settings(Path(tmp))
        faults = Faults()
        app = App(settings)
        app.store = FaultyStore(open_store(settings.store_url), faults)
        queue = RecordingQueue()
        app.queue = queue  # records what the IPN queues; no worker runs
        try:
            seed_small_shop(app)
            use_app(app)
            provider = app.payments.provider("test")
            assert isinstance(provider, TestProvider)
            warm, timed_orders = orders(app, 20), orders(app, events)

            def signed(order: Lead) -> dict[str, Any]:
                assert order.checkout is not None
                body = provider.event_body(
                    order.checkout.id,
                    reference(str(SHOP["id"]), order.id),
                    order.total,
                    order.currency,
                    "paid",
                    time.time(),
                )
                return ipn_event(body, provider.sign(body))

            healthz = load_event("apigw_v2_healthz_get")
            paid, again, base = (
                Row("POST IPN, paid event"),
                Row("POST IPN, redelivery (dedupe hit)"),
                Row("GET /healthz (baseline)"),
            )
            paid_ops = again_ops = 0
            with access_log_discarded():
                for order in warm:  # imports, pydantic models, the store's statements
                    event = signed(order)
                    ipn.lambda_handler(event, None)
                    ipn.lambda_handler(event, None)
                    health.lambda_handler(healthz, None)
                queued_before = len(queue.items)
                for order in timed_orders:
                    event = signed(order)
                    before = faults.calls
                    timed(lambda e=event: ipn.lambda_handler(e, None), paid)
                    paid_ops += faults.calls - before
                    before = faults.calls
                    timed(lambda e=event: ipn.lambda_handler(e, None), again)
                    again_ops += faults.calls - before
                    timed(lambda: health.lambda_handler(healthz, None), base)
            queued = len(queue.items) - queued_before
        finally:
            use_app(None)
            app.store.close()
    return [paid, again], base, paid_ops / events, again_ops / events, queued


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500, help="paid events timed")
    args = parser.parse_args()
    started = time.perf_counter()
    today, python = time.strftime("%Y-%m-%d"), sys.version.split()[0]
    rows, base, paid_ops, again_ops, queued = run(args.events)
    table(
        f"In-process, `functions.payments.lambda_handler` with API Gateway v2 events, one "
        f"thread, {args.events:,} paid events (test provider), each followed by a redelivery and "
        f"a /healthz; SQLite; a queue that only records, no worker ({today}, Python {python}):",
        [*rows, base],
        base,
    )
    print(
        f"Store operations per IPN (reads, writes, queries at the store port): paid event "
        f"{paid_ops:.1f}, redelivery {again_ops:.1f}. Queued: {queued:,} notices for "
        f"{args.events:,} paid events; the redeliveries queued nothing.\n"
    )
    worst = max(rows, key=lambda row: row.p(99))
    verdict = "met" if worst.p(99) <= GOAL_P99 else "MISSED"
    print(
        f"Goal: IPN p99 at most {ms(GOAL_P99)} ms locally: {verdict} "
        f"(worst: {ms(worst.p(99))} ms, {worst.name}). "
        f"({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
