"""The Store contract: one suite, run against every backend (see ``tests/store/conftest.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.exceptions import (
    AlreadyExistsError,
    DocumentTooLargeError,
    InvalidKeyError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
)
from shared.store import Store

SHOP = "shop-a"


def test_get_missing_returns_none(store: Store) -> None:
    assert store.get(SHOP, "products", "nope") is None


def test_put_then_get_round_trips_json(store: Store) -> None:
    data = {
        "title": "Boubou brodé « été »",
        "price": 12500,
        "ratio": 0.25,
        "tags": ["wax", "coton"],
        "nested": {"a": [1, {"b": None}], "ok": True},
    }
    written = store.put(SHOP, "products", "boubou", data)
    assert written.version == 1
    got = store.get(SHOP, "products", "boubou")
    assert got is not None
    assert got.data == data
    assert got.version == 1
    assert store.put(SHOP, "products", "boubou", {"title": "x"}).version == 2
    assert store.get(SHOP, "products", "boubou").data == {"title": "x"}  # type: ignore[union-attr]


def test_keys_are_scoped_by_shop_and_collection(store: Store) -> None:
    store.put(SHOP, "products", "p1", {"v": 1})
    assert store.get("shop-b", "products", "p1") is None
    assert store.get(SHOP, "faq", "p1") is None
    assert store.query("shop-b", "products").items == []


def test_nested_collection_paths(store: Store) -> None:
    store.put(SHOP, "conversations/c1/messages", "m1", {"text": "a"})
    store.put(SHOP, "conversations/c2/messages", "m1", {"text": "b"})
    page = store.query(SHOP, "conversations/c1/messages")
    assert [d.data["text"] for d in page.items] == ["a"]


def test_get_many_returns_only_existing(store: Store) -> None:
    for i in range(5):
        store.put(SHOP, "products", f"p{i}", {"i": i})
    got = store.get_many(SHOP, "products", ["p0", "p3", "missing", "p3"])
    assert sorted(got) == ["p0", "p3"]
    assert got["p3"].data == {"i": 3}
    assert store.get_many(SHOP, "products", []) == {}


def test_create_only_refuses_existing_key(store: Store) -> None:
    store.create(SHOP, "leads", "l1", {"n": 1})
    with pytest.raises(AlreadyExistsError):
        store.create(SHOP, "leads", "l1", {"n": 2})
    assert store.get(SHOP, "leads", "l1").data == {"n": 1}  # type: ignore[union-attr]


def test_update_with_precondition(store: Store) -> None:
    v1 = store.create(SHOP, "orders", "o1", {"status": "new"})
    v2 = store.update(SHOP, "orders", "o1", {"status": "paid"}, if_version=v1.version)
    assert v2.version == v1.version + 1
    with pytest.raises(PreconditionFailedError):
        store.update(SHOP, "orders", "o1", {"status": "cancelled"}, if_version=v1.version)
    assert store.get(SHOP, "orders", "o1").data == {"status": "paid"}  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        store.update(SHOP, "orders", "missing", {"status": "x"}, if_version=1)
    assert store.get(SHOP, "orders", "missing") is None


def test_delete(store: Store) -> None:
    doc = store.put(SHOP, "faq", "f1", {"q": "?"})
    store.put(SHOP, "faq", "f1", {"q": "??"})
    with pytest.raises(PreconditionFailedError):
        store.delete(SHOP, "faq", "f1", if_version=doc.version)
    assert store.get(SHOP, "faq", "f1") is not None
    assert store.delete(SHOP, "faq", "f1") is True
    assert store.get(SHOP, "faq", "f1") is None
    assert store.delete(SHOP, "faq", "f1") is False


def test_delete_treats_an_expired_document_as_absent(store: Store) -> None:
    old = store.put(SHOP, "faq", "gone", {"q": 1}, expires_at=time.time() - 1)
    assert store.delete(SHOP, "faq", "gone", if_version=old.version + 5) is False
    assert store.delete(SHOP, "faq", "gone") is False


def test_expired_documents_are_invisible_and_replaceable(store: Store) -> None:
    past = time.time() - 1
    store.put(SHOP, "idempotency", "k-old", {"v": 1}, expires_at=past)
    store.put(SHOP, "idempotency", "k-new", {"v": 2}, expires_at=time.time() + 3600)
    assert store.get(SHOP, "idempotency", "k-old") is None
    assert [d.id for d in store.query(SHOP, "idempotency").items] == ["k-new"]
    store.create(SHOP, "idempotency", "k-old", {"v": 3})  # an expired key counts as absent
    assert store.get(SHOP, "idempotency", "k-old").data == {"v": 3}  # type: ignore[union-attr]
    with pytest.raises(AlreadyExistsError):
        store.create(SHOP, "idempotency", "k-new", {"v": 4})


def _seed_people(store: Store) -> None:
    people = [
        ("u01", "Awa", "new", 30, True),
        ("u02", "Bintou", "won", 25, False),
        ("u03", "Chloé", "new", 41, True),
        ("u04", "Daouda", "new", 19, False),
        ("u05", "Eve", "lost", 33, True),
        ("u06", "Fatou", "new", 52, True),
        ("u07", "Gora", "new", 27, True),
    ]
    for doc_id, name, status, age, vip in people:
        store.put(SHOP, "leads", doc_id, {"name": name, "status": status, "age": age, "vip": vip})
    store.put(SHOP, "leads", "u08", {"name": "Hawa", "status": "new"})  # no age, no vip


def test_query_equality_and_order(store: Store) -> None:
    _seed_people(store)
    page = store.query(SHOP, "leads", where={"status": "new"}, order_by="age")
    assert [d.data["name"] for d in page.items] == ["Daouda", "Gora", "Awa", "Chloé", "Fatou"]
    assert page.cursor is None
    page = store.query(
        SHOP, "leads", where={"status": "new", "vip": True}, order_by="age", descending=True
    )
    assert [d.data["name"] for d in page.items] == ["Fatou", "Chloé", "Awa", "Gora"]
    assert [d.id for d in store.query(SHOP, "leads", where={"age": 25}).items] == ["u02"]
    assert [d.id for d in store.query(SHOP, "leads", where={"vip": False}).items] == ["u02", "u04"]
    everyone = store.query(SHOP, "leads")  # by id
    assert [d.id for d in everyone.items] == [f"u0{i}" for i in range(1, 9)]
    newest = store.query(SHOP, "leads", descending=True, limit=3)  # the last three ids
    assert [d.id for d in newest.items] == ["u08", "u07", "u06"]


def test_query_pages_with_a_cursor(store: Store) -> None:
    _seed_people(store)
    for order_by, descending in [
        (None, False),
        (None, True),
        ("age", False),
        ("age", True),
        ("name", True),
    ]:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = store.query(
                SHOP, "leads", order_by=order_by, descending=descending, limit=3, cursor=cursor
            )
            seen += [d.id for d in page.items]
            pages += 1
            cursor = page.cursor
            if cursor is None:
                break
        whole = store.query(SHOP, "leads", order_by=order_by, descending=descending, limit=100)
        assert seen == [d.id for d in whole.items], (order_by, descending)
        assert len(seen) == len(set(seen))
        assert pages == -(-len(seen) // 3)  # no empty trailing page


def test_query_cursor_with_equal_order_values(store: Store) -> None:
    for i in range(7):
        store.put(SHOP, "messages", f"m{i}", {"at": 100 if i < 5 else 200})
    ids: list[str] = []
    cursor = None
    while True:
        page = store.query(SHOP, "messages", order_by="at", limit=2, cursor=cursor)
        ids += [d.id for d in page.items]
        if (cursor := page.cursor) is None:
            break
    assert ids == [f"m{i}" for i in range(7)]


def test_query_rejects_bad_arguments(store: Store) -> None:
    with pytest.raises(InvalidKeyError):
        store.query(SHOP, "leads", limit=0)
    with pytest.raises(InvalidKeyError):
        store.query(SHOP, "leads", where={"a.b": 1})
    with pytest.raises(InvalidKeyError):
        store.query(SHOP, "leads", cursor="not a cursor!")


def test_increment_is_a_counter(store: Store) -> None:
    assert store.increment(SHOP, "usage", "day-1", "turns") == 1
    assert store.increment(SHOP, "usage", "day-1", "turns", 4) == 5
    assert store.increment(SHOP, "usage", "day-1", "tokens", 100) == 100
    assert store.get(SHOP, "usage", "day-1").data == {"turns": 5, "tokens": 100}  # type: ignore[union-attr]


def test_expired_counter_restarts(store: Store) -> None:
    store.increment(SHOP, "rate", "w1", "n", 7, expires_at=time.time() - 1)
    assert store.increment(SHOP, "rate", "w1", "n", expires_at=time.time() + 60) == 1


def test_too_large_document_is_refused_and_not_written(store: Store) -> None:
    big = {"blob": "x" * (store.max_document_bytes + 1)}
    with pytest.raises(DocumentTooLargeError):
        store.put(SHOP, "products", "big", big)
    assert store.get(SHOP, "products", "big") is None


@pytest.mark.parametrize(
    ("shop", "collection", "doc_id"),
    [
        ("", "products", "a"),
        ("Shop A", "products", "a"),
        (SHOP, "Products", "a"),
        (SHOP, "products/x", "a"),
        (SHOP, "products", "a/b"),
        (SHOP, "products", ""),
        (SHOP, "products", "a\n"),  # "$" alone would let a trailing newline through
        ("shop-a\n", "products", "a"),
    ],
)
def test_invalid_keys_are_refused(store: Store, shop: str, collection: str, doc_id: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.put(shop, collection, doc_id, {"v": 1})


def test_ping(store: Store) -> None:
    store.ping()


# --- concurrency -----------------------------------------------------------------------------


def _race(n: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what is asserted
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_twenty_concurrent_creates_one_wins(store: Store) -> None:
    outcomes = _race(20, lambda i: store.create(SHOP, "idempotency", "wamid.X", {"by": i}))
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, AlreadyExistsError)]
    assert len(winners) == 1
    assert len(losers) == 19
    assert store.get(SHOP, "idempotency", "wamid.X").data["by"] == winners[0].data["by"]  # type: ignore[union-attr,attr-defined]


def test_fifty_concurrent_increments_are_exact(store: Store) -> None:
    outcomes = _race(50, lambda i: store.increment(SHOP, "usage", "c", "n"))
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sorted(outcomes) == list(range(1, 51))  # type: ignore[type-var]
    assert store.get(SHOP, "usage", "c").data == {"n": 50}  # type: ignore[union-attr]


def test_stale_precondition_loses_and_nothing_is_half_written(store: Store) -> None:
    base = store.put(SHOP, "orders", "o", {"status": "new", "by": None, "items": [1, 2]})
    outcomes = _race(
        10,
        lambda i: store.update(
            SHOP,
            "orders",
            "o",
            {"status": "paid", "by": i, "items": [i] * 3},
            if_version=base.version,
        ),
    )
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1
    assert all(isinstance(o, PreconditionFailedError) for o in outcomes if o not in winners)
    final = store.get(SHOP, "orders", "o")
    assert final is not None
    by = final.data["by"]
    assert final.data == {"status": "paid", "by": by, "items": [by] * 3}
    assert final.version == base.version + 1


def test_query_orders_mixed_types_without_failing(store: Store) -> None:
    store.put(SHOP, "things", "a", {"x": "1"})
    store.put(SHOP, "things", "b", {"x": 1})
    store.put(SHOP, "things", "c", {"x": 2})
    ids = [d.id for d in store.query(SHOP, "things", order_by="x").items]
    assert ids[:2] == ["b", "c"]  # numbers before strings, as Firestore orders them
    assert sorted(ids) == ["a", "b", "c"]


def test_values_json_cannot_hold_are_refused(store: Store) -> None:
    for value in (float("nan"), float("inf"), {1, 2}):
        with pytest.raises(StoreError):
            store.put(SHOP, "products", "odd", {"v": value})
    assert store.get(SHOP, "products", "odd") is None
