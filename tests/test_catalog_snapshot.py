"""Catalogue snapshots: a cold instance builds its index from one object in the blob store,
not from a scan of the catalogue, and answers exactly as an index built from the store; a
snapshot that is missing, corrupt or from another store falls back to the scan."""

from __future__ import annotations

import gzip
import json
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.app import App
from shared.blob import open_blob
from shared.catalog import embeddings
from shared.catalog.importer import import_catalog, seed_demo
from shared.catalog.retrieval import CatalogCache, CatalogIndex, build_index
from shared.catalog.snapshot import POINTER, CatalogSnapshots
from shared.models import Shop
from shared.store import Store
from tests.memory_store import WatchedStore

SHOP_ID = "demo"
PRODUCT_QUERIES = ["boubou brodé", "robe wax", "sac en cuir", "sandales", "bijoux dorés"]
FAQ_QUERIES = ["livraison Dakar", "retour échange", "paiement Wave", "horaires"]
DIMENSIONS = 16
SCANNED = {"query products", "query faq", f"query {embeddings.COLLECTION}"}


def _vector(seed: str) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIMENSIONS)]


def _store_vectors(store: Store) -> None:
    """A vector for every product and FAQ entry, as embed_catalog stores them."""
    index = build_index(store, SHOP_ID)
    items: list[tuple[embeddings.Kind, str, str]] = [
        ("product", p.id, embeddings.product_text(p)) for p in index.products.values()
    ] + [("faq", f.id, embeddings.faq_text(f)) for f in index.faq.values()]
    for kind, item_id, text in items:
        data = embeddings.vector_doc(
            kind, item_id, embeddings.content_hash(text), "embed-test", _vector(item_id)
        )
        store.put(SHOP_ID, embeddings.COLLECTION, embeddings.doc_id(kind, item_id), data)


@pytest.fixture
def store(tmp_path: Path) -> WatchedStore:
    watched = WatchedStore(str(tmp_path / "store.db"))
    seed_demo(watched, SHOP_ID)
    _store_vectors(watched)
    return watched


@pytest.fixture
def snapshots(store: WatchedStore, tmp_path: Path) -> CatalogSnapshots:
    return CatalogSnapshots(store, str(tmp_path / "catalog"))


def _shop(store: Store) -> Shop:
    doc = store.get(SHOP_ID, "shops", SHOP_ID)
    assert doc is not None
    return Shop.from_doc(doc)


def _cold_build(store: WatchedStore, snapshots: CatalogSnapshots) -> tuple[CatalogIndex, set[str]]:
    """A new instance's first index, and the catalogue collections it scanned to build it."""
    store.ops.clear()
    index = CatalogCache(store, snapshots).get(_shop(store))
    return index, SCANNED & set(store.ops)


def _answers(index: CatalogIndex) -> list[object]:
    found: list[object] = []
    for query in PRODUCT_QUERIES:
        found.append([(p.id, s) for p, s in index.search_products(query, limit=5)])
        vector = _vector(query)
        found.append([(p.id, s) for p, s in index.search_products(query, query_vector=vector)])
    for query in FAQ_QUERIES:
        found.append([(f.id, s) for f, s in index.search_faq(query, lang="fr")])
    return found


def _pointed_key(store: Store) -> str:
    pointer = store.get(SHOP_ID, POINTER, POINTER)
    assert pointer is not None
    return str(pointer.data["key"])


def test_the_index_built_from_a_snapshot_answers_as_the_one_built_from_the_store(
    store: WatchedStore, snapshots: CatalogSnapshots
) -> None:
    snapshots.refresh(SHOP_ID)
    from_snapshot, scanned = _cold_build(store, snapshots)
    assert scanned == set()
    from_store = build_index(store, SHOP_ID)
    assert from_snapshot.products == from_store.products
    assert from_snapshot.faq == from_store.faq
    assert from_snapshot.embed_model == "embed-test"
    assert any(_answers(from_store))  # the queries find something: the comparison means something
    assert _answers(from_snapshot) == _answers(from_store)


def test_a_cold_build_scans_once_and_writes_the_snapshot_the_next_one_reads(
    store: WatchedStore, snapshots: CatalogSnapshots
) -> None:
    # A catalogue imported before snapshots existed: the first cold build scans and writes one.
    _, first = _cold_build(store, snapshots)
    assert first == SCANNED
    assert snapshots.blob.list("catalog/") == [_pointed_key(store)]
    _, second = _cold_build(store, snapshots)
    assert second == set()


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # cut short
        lambda raw: b"not gzip at all",
        # Valid gzip whose body no longer matches its checksum.
        lambda raw: gzip.compress(gzip.decompress(raw).replace(b"Boubou", b"Bouboo")),
        # Another format of the future.
        lambda raw: gzip.compress(gzip.decompress(raw).replace(b'"format": 1', b'"format": 2')),
    ],
    ids=["truncated", "not-gzip", "checksum", "format"],
)
def test_a_corrupt_snapshot_falls_back_to_the_store_and_is_replaced(
    store: WatchedStore, snapshots: CatalogSnapshots, damage: object
) -> None:
    snapshots.refresh(SHOP_ID)
    key = _pointed_key(store)
    raw = snapshots.blob.get(key).data
    assert callable(damage)
    snapshots.blob.put(key, damage(raw), content_type="application/gzip")

    index, scanned = _cold_build(store, snapshots)
    assert scanned == SCANNED
    assert _answers(index) == _answers(build_index(store, SHOP_ID))
    _, next_cold = _cold_build(store, snapshots)  # the scan wrote a good one
    assert next_cold == set()


def test_a_snapshot_the_store_does_not_name_is_never_read(
    store: WatchedStore, snapshots: CatalogSnapshots, tmp_path: Path
) -> None:
    snapshots.refresh(SHOP_ID)
    # The pointed object gone (deleted by hand, a lifecycle rule): the scan answers.
    snapshots.blob.delete(_pointed_key(store))
    _, scanned = _cold_build(store, snapshots)
    assert scanned == SCANNED
    # A new store (a dev database recreated) at the same version beside the old objects: they
    # are not its catalogue.
    fresh = WatchedStore(str(tmp_path / "fresh.db"))
    seed_demo(fresh, SHOP_ID)
    assert _shop(fresh).catalog_version == _shop(store).catalog_version
    _, scanned = _cold_build(fresh, CatalogSnapshots(fresh, str(tmp_path / "catalog")))
    assert scanned == SCANNED


def test_an_import_writes_the_new_versions_snapshot(
    store: WatchedStore, snapshots: CatalogSnapshots, tmp_path: Path
) -> None:
    snapshots.refresh(SHOP_ID)
    before = _shop(store).catalog_version
    old_key = _pointed_key(store)
    csv = tmp_path / "more.csv"
    csv.write_text(
        "Handle,Title,Variant Price,Type\nparasol-raphia,Parasol en raphia,15000,Accessoires\n",
        encoding="utf-8",
    )
    report = import_catalog(store, SHOP_ID, csv, snapshots=snapshots)
    assert report.catalog_version == before + 1
    key = _pointed_key(store)
    assert key.startswith(f"catalog/{SHOP_ID}/{before + 1}-")
    assert snapshots.blob.list(f"catalog/{SHOP_ID}/") == [key]  # the old one is deleted
    assert old_key != key

    index, scanned = _cold_build(store, snapshots)
    assert scanned == set()
    assert [p.id for p, _ in index.search_products("parasol")] == ["parasol-raphia"]


def test_the_app_wires_snapshots_into_the_turns_index(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = make_app()
    shop = app.shops.get(app.settings.default_shop)
    assert app.catalog_snapshots.blob.list("catalog/") == []
    assert app.chat.catalog.get(shop).products == build_index(app.store, shop.id).products
    # The turn's cold build scanned and wrote the snapshot under CATALOG_BLOB_URL.
    [key] = app.catalog_snapshots.blob.list("catalog/")
    assert (tmp_path / "catalog" / key).is_file()


@pytest.fixture
def s3_url(moto_endpoint: str) -> Iterator[str]:
    bucket = f"comptoir-catalog-{uuid.uuid4().hex[:12]}"
    url = f"s3://{bucket}?region=us-east-1&endpoint_url={moto_endpoint}"
    with open_blob(url) as blob:
        client = blob.client  # type: ignore[attr-defined]
        client.create_bucket(Bucket=bucket)
        yield url
        for key in blob.list():
            blob.delete(key)
        client.delete_bucket(Bucket=bucket)


def test_snapshots_on_s3(store: WatchedStore, s3_url: str) -> None:
    snapshots = CatalogSnapshots(store, s3_url)
    snapshots.refresh(SHOP_ID)
    key = _pointed_key(store)
    header = gzip.decompress(snapshots.blob.get(key).data).split(b"\n", 1)[0]
    assert json.loads(header)["catalog_version"] == _shop(store).catalog_version
    index, scanned = _cold_build(store, snapshots)
    assert scanned == set()
    assert _answers(index) == _answers(build_index(store, SHOP_ID))
