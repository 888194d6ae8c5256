"""Consolidation of many small conversations with the offline provider: time and store
operations per conversation (goal: at most 5).

    .venv/bin/python bench/consolidate.py [--conversations 10000]

Each conversation is a web chat of three customer messages (a name, a product and a size, a
colour) answered by the offline responder, its customer linked (as ``remember`` or an order
does); then the ``consolidate`` task runs as deployed, through a queue: one item for the shop,
delivered to the worker, each delivery within its budget queuing its continuation, on a
counting SQLite store.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - puts the checkout on sys.path

from shared import crm
from shared.app import use_app
from shared.consolidator import consolidate_task
from shared.models import Conversation
from tests.channels.conftest import RecordingQueue
from tests.fixtures.app import SHOP
from tests.memory_store import watched_app

GOAL_OPS = 5
LINES = ["Je m'appelle Awa Diop", "Des Sandales en cuir en taille 40 ?", "Je préfère en noir"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    count = parser.parse_args().conversations
    shop_id = str(SHOP["id"])
    with tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp:
        app, store = watched_app(Path(tmp), LOG_LEVEL="WARNING")
        try:
            shop = app.shops.get(shop_id)
            for _ in range(count):
                session = None
                for line in LINES:
                    session = app.chat.turn(shop, session, line).conversation.id
                assert session is not None
                conversation = app.store.get(shop_id, "conversations", session)
                assert conversation is not None
                crm.own_contact(app.store, shop_id, Conversation.from_doc(conversation))
            queue = RecordingQueue()
            app.queue = queue  # type: ignore[misc]  # the cached property, filled before use
            store.ops.clear()
            started = time.perf_counter()
            consolidate_task(app, time.time())
            queue.run(app)
            elapsed = time.perf_counter() - started
            assert queue.failures == [], queue.failures
            waiting = store.query(shop_id, "conversations", order_by="memory_pending_at")
            assert waiting.items == [], "conversations left waiting"
        finally:
            use_app(None)
            store.close()
    ops = len(store.ops) / count
    print(f"{count} conversations consolidated in {elapsed:.2f} s, {queue.sends} deliveries")
    print(f"time per conversation: {elapsed / count * 1000:.2f} ms")
    print(f"store operations per conversation: {ops:.2f} (goal <= {GOAL_OPS})")
    kinds: dict[str, int] = {}
    for op in store.ops:
        name, collection = op.split(" ", 1)
        parts = collection.split("/")  # one conversation's messages count as one collection
        shape = "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(parts))
        kinds[f"{name} {shape}"] = kinds.get(f"{name} {shape}", 0) + 1
    for op, n in sorted(kinds.items()):
        print(f"  {op}: {n / count:.2f}")


if __name__ == "__main__":
    main()
