"""``Store.put_many``: many puts in few requests, on every backend (``tests/store/conftest.py``)."""

from __future__ import annotations

import time

import pytest

from shared.exceptions import DocumentTooLargeError, InvalidKeyError, PreconditionFailedError
from shared.store import Store

SHOP = "shop-a"
# Past DynamoDB's 100 actions per transaction and Firestore's 500 writes per commit.
PAST_EVERY_BATCH = 501


def test_every_item_is_written_and_read_back(store: Store) -> None:
    items = {
        f"p{i:03}": {"title": f"Produit {i}", "price": i * 100, "tags": ["wax"]} for i in range(30)
    }
    store.put_many(SHOP, "products", items)
    got = store.get_many(SHOP, "products", list(items))
    assert {doc_id: doc.data for doc_id, doc in got.items()} == items
    assert {doc.version for doc in got.values()} == {1}


def test_more_items_than_one_batch_holds(store: Store) -> None:
    items = {f"p{i:04}": {"i": i} for i in range(PAST_EVERY_BATCH)}
    store.put_many(SHOP, "products", items)
    stored = list(store.scan(SHOP, "products"))
    assert [doc.id for doc in stored] == sorted(items)
    assert all(doc.data == items[doc.id] for doc in stored)


def test_an_empty_mapping_writes_nothing(store: Store) -> None:
    store.put_many(SHOP, "products", {})
    assert store.query(SHOP, "products").items == []


def test_it_replaces_like_put_raising_each_version_and_dropping_the_expiry(store: Store) -> None:
    store.put(SHOP, "products", "old", {"title": "ancien", "gone": True})
    store.put(SHOP, "products", "old", {"title": "ancien"})  # version 2
    store.put(SHOP, "products", "expiring", {"n": 1}, expires_at=time.time() + 3600)
    store.put_many(
        SHOP, "products", {"old": {"title": "nouveau"}, "expiring": {"n": 2}, "new": {"n": 3}}
    )
    got = store.get_many(SHOP, "products", ["old", "expiring", "new"])
    assert got["old"].data == {"title": "nouveau"}  # replaced whole, not merged
    assert [got[i].version for i in ("old", "expiring", "new")] == [3, 2, 1]
    assert got["expiring"].expires_at is None
    store.put_many(SHOP, "products", {"new": {"n": 4}})
    assert store.put(SHOP, "products", "new", {"n": 5}).version == 3


def test_a_reader_of_the_version_before_cannot_overwrite_it(store: Store) -> None:
    # Versions never repeat: a conditional update made from what was read before the batch
    # write is refused, so the imported data is not silently lost.
    before = store.put(SHOP, "products", "p1", {"price": 100})
    store.put_many(SHOP, "products", {"p1": {"price": 200}})
    with pytest.raises(PreconditionFailedError):
        store.update(SHOP, "products", "p1", {"price": 150}, if_version=before.version)
    assert store.get(SHOP, "products", "p1").data == {"price": 200}  # type: ignore[union-attr]


def test_it_touches_only_its_shop_and_collection(store: Store) -> None:
    store.put("shop-b", "products", "p1", {"owner": "b"})
    store.put(SHOP, "faq", "p1", {"owner": "faq"})
    store.put_many(SHOP, "products", {"p1": {"owner": "a"}})
    assert store.get("shop-b", "products", "p1").data == {"owner": "b"}  # type: ignore[union-attr]
    assert store.get(SHOP, "faq", "p1").data == {"owner": "faq"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("doc_id", "data", "error"),
    [
        ("bad/id", {"n": 1}, InvalidKeyError),
        ("huge", {"blob": "x" * 1_100_000}, DocumentTooLargeError),
    ],
)
def test_a_bad_item_is_refused_before_anything_is_written(
    store: Store, doc_id: str, data: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.put_many(SHOP, "products", {"fine": {"n": 0}, doc_id: data})
    assert store.get(SHOP, "products", "fine") is None
