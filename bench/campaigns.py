"""Campaigns at scale on SQLite: a dry run, a real run paced at the configured rate (achieved
rate and store operations per send), and a run killed half-way then resumed (every message
once, none to the opted-out).

    .venv/bin/python bench/campaigns.py [--customers 10000] [--rate 200]

Setup (timed on its own): ``--customers`` customers, each with a WhatsApp conversation they
wrote in an hour ago (free text may go) and an order "awaiting_payment" made 3 hours ago; 1 % of
them said STOP (``marketing.set_marketing``). Written straight to the store, in the shapes the
channels and the tools write them. The offline provider writes no prose: each message is the
abandoned-order brief rendered as is. WhatsApp is the tests' loopback Graph API server
(``tests/fixtures/graph_server.py``), which records each message and when it came.

1. Dry run: ``runner.preview`` of an abandoned-order campaign renders every message, sends none
   (goal: at most 60 s for 10,000 customers).
2. Real run: ``runner.run_by_hand`` of another abandoned-order campaign with the shop's
   ``whatsapp_messages_per_second`` at ``--rate``; the achieved rate is the messages the server
   took over the time from its first to its last, against the configured rate (goal: close to
   1.0, never above). Store operations are every primitive call (a read of one or several
   documents, a write, a delete, a query, an increment) during the run, per message sent
   (goal: at most 4).
3. Kill and resume: ``python -m shared campaign run relance`` in a subprocess on the same
   SQLite file, SIGKILLed once the server has taken half the audience, then the same command
   again. Every message the server took, none twice, none to an opted-out number; send records
   sent + in doubt (the kill caught them between the record and the provider's answer: never
   sent again) = the audience.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import ROOT, BenchApp

from shared import crm, marketing
from shared.app import use_app
from shared.campaigns import definitions, runner
from shared.campaigns.models import Campaign
from shared.campaigns.report import report
from shared.channels.receive import conversation_id
from shared.conversations import CONVERSATIONS
from shared.exceptions import InvalidKeyError
from shared.ids import new_sortable_id
from shared.models import Conversation, Customer, Lead, StatusChange
from shared.settings import Settings
from shared.store import Store
from shared.store.base import Doc, Key, QuerySpec, Write, check_id
from shared.store.sqlite import SQLiteStore
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.fixtures.app import SHOP, make_settings, seed_small_shop
from tests.fixtures.graph_server import TOKEN, VERSION, GraphServer, _graph_handler
from tests.loopback import serving

GOAL_DRY_RUN = 60.0  # seconds for 10,000 customers
GOAL_OPS = 4.0
HOURS = 3600.0
OPTED_OUT_EVERY = 100  # 1 %
SHOP_ID = str(SHOP["id"])
ABANDONED = {"recipe": "abandoned_order", "options": {"hours": 2}}


class TimedGraphServer(GraphServer):
    """The loopback Graph API's record, with when each message was taken."""

    def __init__(self) -> None:
        super().__init__()
        self.taken_at: list[float] = []

    def record(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().record(method, path, body, headers)
        if body.get("_accepted"):
            with self.lock:
                self.taken_at.append(time.perf_counter())

    def taken(self) -> int:
        with self.lock:
            return len(self.taken_at)

    def recipients(self) -> list[str]:
        return [message["to"] for message in self.sent]

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.taken_at.clear()


class CountingStore(Store):
    """The SQLite store, counting each primitive call by kind and collection."""

    backend = "counting"
    max_document_bytes = SQLiteStore.max_document_bytes

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.ops: Counter[str] = Counter()
        self._lock = threading.Lock()  # a batch's sends run in threads

    def _count(self, op: str, collection: str) -> None:
        with self._lock:
            self.ops[f"{op} {collection}"] += 1

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        self._count("get", keys[0].collection if keys else "-")
        return self.inner._get_many(keys)

    def _write(self, write: Write) -> Doc:
        self._count("write", write.key.collection)
        return self.inner._write(write)

    def _delete(self, key: Key, if_version: int | None) -> bool:
        self._count("delete", key.collection)
        return self.inner._delete(key, if_version)

    def _query(self, spec: QuerySpec) -> list[Doc]:
        self._count("query", spec.collection)
        return self.inner._query(spec)

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        self._count("increment", key.collection)
        return self.inner._increment(key, field, amount, expires_at, now)


def wa_id(number: int) -> str:
    return f"22176{number:07d}"


def refused_conversation_id(user: str) -> bool:
    """Whether the store refuses the conversation id of WhatsApp user ``user``: one in 4,096
    HMAC ids starts with "__", which the store reserves (a bug of the channels, left to them:
    such a customer cannot write at all, so the bench leaves their number out)."""
    try:
        check_id(conversation_id(APP_SECRET, SHOP_ID, "whatsapp", user))
    except InvalidKeyError:
        return True
    return False


def write_customers(store: Store, count: int, now: float) -> set[str]:
    """``count`` WhatsApp customers with an abandoned order (see the module docstring); the
    numbers of those who opted out."""
    opted_out: set[str] = set()
    numbers = (n for n in itertools.count() if not refused_conversation_id(wa_id(n)))
    for number in itertools.islice(numbers, count):
        user = wa_id(number)
        cid = conversation_id(APP_SECRET, SHOP_ID, "whatsapp", user)
        customer = Customer(
            id=new_sortable_id(),
            name=f"Client {number}",
            phone=f"+{user}",
            phone_verified=True,
            identities=[f"whatsapp:{cid}"],
            created_at=now,
            updated_at=now,
        )
        store.create(SHOP_ID, crm.CUSTOMERS, customer.id, customer.to_doc())
        conversation = Conversation(
            id=cid,
            channel="whatsapp",
            customer_id=customer.id,
            channel_user=user,
            last_inbound_at=now - HOURS,
            created_at=now - HOURS,
            updated_at=now - HOURS,
        )
        store.create(SHOP_ID, CONVERSATIONS, cid, conversation.to_doc())
        ordered_at = now - 3 * HOURS
        lead = Lead(
            id=new_sortable_id(),
            customer_id=customer.id,
            conversation_id=cid,
            channel="whatsapp",
            name=customer.name,
            phone=f"+{user}",
            address="Mermoz, Dakar",
            product_id="boubou-brode",
            product_title="Boubou brodé",
            quantity=1,
            unit_price=Decimal(45000),
            currency="XOF",
            total=Decimal(45000),
            status="awaiting_payment",
            history=[StatusChange(status="awaiting_payment", at=ordered_at, actor="customer")],
            created_at=ordered_at,
            updated_at=ordered_at,
        )
        store.create(SHOP_ID, crm.LEADS, lead.id, lead.to_doc())
        if number % OPTED_OUT_EVERY == OPTED_OUT_EVERY - 1:
            marketing.set_marketing(store, SHOP_ID, customer.id, True, now)
            opted_out.add(user)
    return opted_out


def channel_env(graph: GraphServer) -> dict[str, str]:
    return {
        "WHATSAPP_API_BASE": graph.base_url,
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "LLM_PROVIDER": "offline",
        "LOG_LEVEL": "WARNING",
    }


def campaign(app: BenchApp, campaign_id: str) -> Campaign:
    shop = app.shops.get(SHOP_ID)
    now = time.time()
    built = definitions.build(shop, {**ABANDONED, "id": campaign_id}, now)
    return definitions.save(app.store, shop, built, now, replace=False)


def dry_run(app: BenchApp, count: int) -> None:
    shop = app.shops.get(SHOP_ID)
    found = definitions.load_campaign(app.store, SHOP_ID, "relance")
    started = time.perf_counter()
    shown = runner.preview(app, shop, found, time.time(), None)
    elapsed = time.perf_counter() - started
    goal = GOAL_DRY_RUN * count / 10_000
    print(f"\n## Dry run ({shown.audience} messages rendered, left out {shown.left_out})")
    print(f"time: {elapsed:.1f} s (goal <= {goal:.0f} s for {count} customers)")
    print(f"per customer: {elapsed / count * 1000:.2f} ms")


def paced_run(app: BenchApp, store: CountingStore, graph: TimedGraphServer, rate: int) -> None:
    shop = app.shops.get(SHOP_ID)
    found = campaign(app, "rythme")
    graph.reset()
    store.ops.clear()
    started = time.perf_counter()
    run, statuses = runner.run_by_hand(app, shop, found, time.time(), ignore_quiet_hours=True)
    elapsed = time.perf_counter() - started
    taken = graph.taken()
    sending = graph.taken_at[-1] - graph.taken_at[0] if taken > 1 else 0.0
    achieved = (taken - 1) / sending if sending else 0.0
    ops = sum(store.ops.values())
    sent = statuses["sent"]
    print(f"\n## Paced run ({run.status}, audience {run.audience}, {dict(statuses)})")
    print(f"whole run (planning included): {elapsed:.1f} s")
    print(f"messages at the server: {taken} in {sending:.1f} s (first to last)")
    print(f"achieved rate: {achieved:.1f}/s; configured {rate}/s; ratio {achieved / rate:.3f}")
    print(f"store operations per send: {ops / max(sent, 1):.2f} (goal <= {GOAL_OPS:.0f})")
    for op, n in sorted(store.ops.items()):
        print(f"  {op}: {n / max(sent, 1):.3f}")


def cli_run(data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared", "campaign", "run", "relance", "--shop", SHOP_ID,
         "--ignore-quiet-hours"],
        cwd=data,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # the progress line, a traceback if it crashed
    )  # fmt: skip


def killed_and_resumed(
    app: BenchApp, graph: TimedGraphServer, data: Path, settings: Settings, opted_out: set[str]
) -> list[str]:
    """The figures of a run killed half-way then resumed; what went wrong (nothing, rightly)."""
    aliases = {field.alias for field in Settings.model_fields.values()}
    env = {k: v for k, v in os.environ.items() if k not in aliases}
    env.update(
        PYTHONPATH=str(ROOT),
        STORE_URL=settings.store_url,
        DEFAULT_SHOP=SHOP_ID,
        **channel_env(graph),
    )
    shop = app.shops.get(SHOP_ID)
    found = definitions.load_campaign(app.store, SHOP_ID, "relance")
    audience = runner.preview(app, shop, found, time.time(), 0).audience
    graph.reset()
    process = cli_run(data, env)
    while graph.taken() < audience // 2 and process.poll() is None:
        time.sleep(0.005)
    process.kill()  # SIGKILL: no cleanup of any kind
    process.wait()
    at_kill = graph.taken()
    time.sleep(0.2)  # requests already on the wire reach the server
    before_resume = graph.taken()
    resumed = cli_run(data, env)
    output, errors = resumed.communicate(timeout=3600)
    if resumed.returncode != 0:
        print(errors.decode()[-3000:], file=sys.stderr)
    received = graph.recipients()
    addresses = Counter(received)
    found_report = report(app.store, SHOP_ID, "relance", time.time())
    sent = found_report.statuses["sent"]
    in_doubt = found_report.statuses["sending"] + found_report.statuses["unknown"]
    print(f"\n## Killed at {at_kill} messages ({at_kill / audience:.0%}), resumed")
    print(f"resumed: {output.decode().strip()} (exit {resumed.returncode})")
    print(f"audience: {audience}")
    print(f"messages at the server: {len(received)} ({before_resume} before the resume)")
    print(f"distinct recipients: {len(addresses)}")
    print(f"duplicates: {len(received) - len(addresses)} (must be 0)")
    print(f"to opted-out numbers: {len(opted_out & set(addresses))} (must be 0)")
    print(f"send records: sent {sent} + in doubt {in_doubt} = {sent + in_doubt} "
          f"(must be {audience}); all {dict(found_report.statuses)}")  # fmt: skip
    broken = {
        "the resumed run failed": resumed.returncode != 0,
        "a number got two messages": len(received) != len(addresses),
        "an opted-out number got a message": bool(opted_out & set(addresses)),
        "sent + in doubt is not the audience": sent + in_doubt != audience,
    }
    return [what for what, happened in broken.items() if happened]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200, help="WhatsApp messages per second")
    args = parser.parse_args()
    graph = TimedGraphServer()
    with (
        tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp,
        serving(_graph_handler(graph), "graph-server") as server,
    ):
        graph.base_url = f"{server.root}/{VERSION}"
        settings = make_settings(Path(tmp), **channel_env(graph))
        store = CountingStore(SQLiteStore.from_url(settings.store_url))
        app = BenchApp(settings, bench_store=store)
        use_app(app)
        try:
            seed_small_shop(app)
            shop_doc = {**SHOP, "catalog_version": 1, "whatsapp_messages_per_second": args.rate}
            store.put(SHOP_ID, "shops", SHOP_ID, shop_doc)
            started = time.perf_counter()
            opted_out = write_customers(store, args.customers, time.time())
            setup = time.perf_counter() - started
            print(f"# Campaigns: {args.customers} customers, {len(opted_out)} opted out")
            print(f"setup: {setup:.1f} s ({setup / args.customers * 1000:.2f} ms per customer)")
            campaign(app, "relance")
            dry_run(app, args.customers)
            paced_run(app, store, graph, args.rate)
            broken = killed_and_resumed(app, graph, Path(tmp), settings, opted_out)
        finally:
            use_app(None)
            store.close()
    if broken:
        sys.exit("WRONG: " + "; ".join(broken))


if __name__ == "__main__":
    main()
