"""Catalogue import throughput: products written per second, one ``put`` at a time (how the
importer wrote before) against ``put_many`` in the importer's chunks of 250, on each store.

SQLite on a temporary file; DynamoDB on a moto server started here (without its per-item
table backups, see ``_common.moto_server``); Google's Firestore emulator
when it is installed (as the tests find it, ``tests/fixtures/firestore.py``). The same synthetic
catalogue (``_common.synthetic_products``) goes to a fresh store each way, one way after the
other; every product is read back and compared afterwards (exit status 1 if one differs).

    .venv/bin/python bench/import_throughput.py [--products 10000] [--no-dynamodb]
        [--no-firestore]

Prints a Markdown table for bench/README.md: read the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from _common import moto_server, synthetic_products

from shared.store import Store, open_store
from shared.store.dynamodb import DynamoDBStore
from tests.fixtures.firestore import EmulatorError, running_emulator

CHUNK = 250  # the importer's put_many chunk (shared/catalog/importer.py _WRITE_CHUNK)
SHOP = "bench"


def one_by_one(store: Store, shop: str, docs: dict[str, dict[str, Any]]) -> None:
    for doc_id, data in docs.items():
        store.put(shop, "products", doc_id, data)


def in_chunks(store: Store, shop: str, docs: dict[str, dict[str, Any]]) -> None:
    items = list(docs.items())
    for start in range(0, len(items), CHUNK):
        store.put_many(shop, "products", dict(items[start : start + CHUNK]))


def measure(label: str, fresh: Callable[[], Store], docs: dict[str, dict[str, Any]]) -> bool:
    """Print the row of one store, each way on a store of its own (neither pays for what the
    other left); False if a product read back differs from the one written."""
    seconds = {}
    for way, write in (("one", one_by_one), ("many", in_chunks)):
        store = fresh()
        start = time.perf_counter()
        write(store, SHOP, docs)
        seconds[way] = time.perf_counter() - start
        stored = {doc.id: doc.data for doc in store.scan(SHOP, "products")}
        store.close()
        if stored != docs:
            print(f"{label}: {way}: {len(stored)} products read back differ from those written")
            return False
    rate = {way: len(docs) / spent for way, spent in seconds.items()}
    print(
        f"| {label} | {rate['one']:,.0f} ({seconds['one']:.1f} s) "
        f"| {rate['many']:,.0f} ({seconds['many']:.1f} s) | {rate['many'] / rate['one']:.1f}x |",
        flush=True,
    )
    return True


@contextmanager
def stores(
    dynamodb: bool, firestore: bool, tmp: Path
) -> Iterator[Iterator[tuple[str, Callable[[], Store]]]]:
    """Each store to measure and how to open a fresh, empty one (a new file, table or
    project); its server started when its turn comes, everything stopped on exit."""

    def new_name() -> str:
        return f"bench-{uuid.uuid4().hex[:8]}"

    def dynamodb_table(endpoint: str) -> Store:
        table = new_name()
        store = open_store(f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}")
        assert isinstance(store, DynamoDBStore)
        DynamoDBStore.ensure_table(store.client, table)
        return store

    def each() -> Iterator[tuple[str, Callable[[], Store]]]:
        yield "SQLite (file, WAL)", lambda: open_store(f"sqlite:///{tmp}/{new_name()}.db")
        if dynamodb:
            endpoint = exits.enter_context(moto_server(table_backups=False))
            yield "DynamoDB (moto server, loopback)", partial(dynamodb_table, endpoint)
        if firestore:
            try:
                host = exits.enter_context(running_emulator(tmp / "firestore.log"))
            except EmulatorError as exc:
                print(f"(no Firestore row: {exc})")
                return
            os.environ["FIRESTORE_EMULATOR_HOST"] = host
            yield (
                "Firestore (Google's emulator, loopback)",
                lambda: open_store(f"firestore://{new_name()}"),
            )

    with ExitStack() as exits:
        yield each()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--no-dynamodb", action="store_true")
    parser.add_argument("--no-firestore", action="store_true")
    args = parser.parse_args()
    docs = {p.id: p.to_doc() for p in synthetic_products(args.products)}
    print(f"{args.products:,} products; put_many in chunks of {CHUNK}\n")
    print("| store | one by one: products/s | put_many: products/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    same = True
    with (
        tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp,
        stores(not args.no_dynamodb, not args.no_firestore, Path(tmp)) as each,
    ):
        for label, fresh in each:
            same = measure(label, fresh, docs) and same
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
