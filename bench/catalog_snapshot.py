"""Catalogue snapshots at 10,000 products: what a cold instance pays for its first index, from a
scan of the store (before) and from the catalogue version's snapshot (after).

For each store (SQLite with a local folder; DynamoDB with S3, both on a moto server started
here): the snapshot's size and write time, the catalogue read alone (the store scan against the
snapshot's get, gunzip, checks and validation), the whole cold index build (``CatalogCache.get``
on a new cache), and a cold instance's first turn (a new ``ChatService``, an instant fake model).
The catalogue carries a vector per product and FAQ entry (``--dimensions``; 0 for none), as a
shop with embeddings stores them. Medians of ``--builds`` runs.

    .venv/bin/python bench/catalog_snapshot.py [--products 10000] [--builds 3] [--dimensions 256]
        [--no-dynamodb]

Prints Markdown tables for bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import InstantLLM, demo_faq, first_turn, moto_server, ms, synthetic_products

from shared.catalog import embeddings
from shared.catalog.retrieval import CatalogCache, read_catalog
from shared.catalog.snapshot import POINTER, CatalogSnapshots
from shared.chat import ChatService
from shared.models import FaqEntry, Product, Shop
from shared.settings import Settings
from shared.store import Store, open_store
from shared.store.base import encoded_size
from shared.store.dynamodb import DynamoDBStore
from tests.fixtures.app import SHOP, make_settings

SHOP_ID = str(SHOP["id"])
MESSAGE = "Bonjour, avez-vous des sandales en cuir ?"


def median_time(run: Callable[[], object], times: int) -> float:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent)


def seed(store: Store, products: list[Product], faq: list[FaqEntry], dimensions: int) -> None:
    store.put(SHOP_ID, "shops", SHOP_ID, {**SHOP, "catalog_version": 1})
    for product in products:
        store.put(SHOP_ID, "products", product.id, product.to_doc())
    for entry in faq:
        store.put(SHOP_ID, "faq", entry.id, entry.to_doc())
    if not dimensions:
        return
    rng = random.Random(2024)
    items: list[tuple[embeddings.Kind, str, str]] = [
        ("product", p.id, embeddings.product_text(p)) for p in products
    ] + [("faq", f.id, embeddings.faq_text(f)) for f in faq]
    for kind, item_id, text in items:
        vector = [rng.gauss(0, 1) for _ in range(dimensions)]
        data = embeddings.vector_doc(
            kind, item_id, embeddings.content_hash(text), "bench", vector, dimensions
        )
        store.put(SHOP_ID, embeddings.COLLECTION, embeddings.doc_id(kind, item_id), data)


def measure(name: str, store: Store, blob_url: str, settings: Settings, builds: int) -> None:
    doc = store.get(SHOP_ID, "shops", SHOP_ID)
    assert doc is not None
    shop = Shop.from_doc(doc)
    catalogue_bytes = sum(
        encoded_size(d.data)
        for collection in ("products", "faq", embeddings.COLLECTION)
        for d in store.scan(SHOP_ID, collection)
    )
    snapshots = CatalogSnapshots(store, blob_url)
    start = time.perf_counter()
    snapshots.refresh(SHOP_ID)
    written = time.perf_counter() - start
    pointer = store.get(SHOP_ID, POINTER, POINTER)
    assert pointer is not None, "the snapshot was not written"
    size = len(snapshots.blob.get(str(pointer.data["key"])).data)

    def from_snapshot() -> CatalogSnapshots:  # a new instance opens its blob store too
        return CatalogSnapshots(store, blob_url)

    def load() -> None:
        assert from_snapshot().load(SHOP_ID, shop.catalog_version) is not None

    def turn(snapshots: CatalogSnapshots | None) -> None:
        llm = InstantLLM()
        chat = ChatService(
            settings, store, lambda _: llm, enqueue=lambda _: None, catalog_snapshots=snapshots
        )
        first_turn(chat, shop, MESSAGE)

    read_scan = median_time(lambda: read_catalog(store, SHOP_ID), builds)
    read_snapshot = median_time(load, builds)
    build_scan = median_time(lambda: CatalogCache(store).get(shop), builds)
    build_snapshot = median_time(lambda: CatalogCache(store, from_snapshot()).get(shop), builds)
    turn_scan = median_time(lambda: turn(None), builds)
    turn_snapshot = median_time(lambda: turn(from_snapshot()), builds)
    rows = [
        ("catalogue read (scan vs snapshot get + checks + validation)", read_scan, read_snapshot),
        ("cold index build (`CatalogCache.get` on a new cache)", build_scan, build_snapshot),
        ("cold instance's first turn (new `ChatService`, instant model)", turn_scan, turn_snapshot),
    ]
    print(f"\n### {name}\n")
    print(
        f"Catalogue as stored: {catalogue_bytes / 1e6:.1f} MB of item data (about "
        f"{catalogue_bytes // 4096:,} strongly consistent read units on DynamoDB); snapshot: "
        f"{size / 1e6:.2f} MB gzip, written in {ms(written)} ms.\n"
    )
    print("| median of runs | store scan (ms) | snapshot (ms) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for label, scan, snap in rows:
        print(f"| {label} | {ms(scan)} | {ms(snap)} | {scan / snap:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--dimensions", type=int, default=256)
    parser.add_argument("--no-dynamodb", action="store_true")
    args = parser.parse_args()
    products, faq = synthetic_products(args.products), demo_faq()
    print(
        f"{args.products:,} products, {len(faq)} FAQ entries, vectors of {args.dimensions} "
        "dimensions"
    )
    with tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp:
        settings = make_settings(Path(tmp), LOG_LEVEL="WARNING")
        store = open_store(settings.store_url)
        seed(store, products, faq, args.dimensions)
        local = f"{tmp}/catalog"
        measure("SQLite, snapshot in a local folder", store, local, settings, args.builds)
        store.close()
        if args.no_dynamodb:
            return
        with moto_server() as endpoint:
            table, bucket = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
            options = f"region=us-east-1&endpoint_url={endpoint}"
            dynamodb = open_store(f"dynamodb://{table}?{options}")
            assert isinstance(dynamodb, DynamoDBStore)
            DynamoDBStore.ensure_table(dynamodb.client, table)
            blob_url = f"s3://{bucket}?{options}"
            snapshots = CatalogSnapshots(dynamodb, blob_url)
            snapshots.blob.client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
            start = time.perf_counter()
            seed(dynamodb, products, faq, args.dimensions)
            print(f"\n(seeding moto's DynamoDB took {time.perf_counter() - start:.0f} s)")
            measure("DynamoDB and S3 (moto, loopback)", dynamodb, blob_url, settings, args.builds)


if __name__ == "__main__":
    main()
