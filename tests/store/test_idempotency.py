"""``once`` and ``claim`` on every store backend, concurrent duplicates included."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.store import Store
from shared.store.idempotency import COLLECTION, Idempotency, record_id

SHOP = "shop-a"


def test_claim_is_true_once(store: Store) -> None:
    idem = Idempotency(store)
    assert idem.claim(SHOP, "whatsapp:wamid.HBgL/+=") is True
    assert idem.claim(SHOP, "whatsapp:wamid.HBgL/+=") is False
    assert idem.claim("shop-b", "whatsapp:wamid.HBgL/+=") is True  # scoped by shop


def test_once_runs_the_work_once_and_marks_it_done(store: Store) -> None:
    idem = Idempotency(store)
    runs = []
    for _ in range(3):
        with idem.once(SHOP, "task-1") as first:
            if first:
                runs.append(1)
    assert runs == [1]
    record = store.get(SHOP, COLLECTION, record_id("task-1"))
    assert record is not None and record.data["status"] == "done"
    assert record.expires_at is not None and record.expires_at > time.time() + 6 * 24 * 3600


def test_failed_work_releases_the_key_for_a_retry(store: Store) -> None:
    idem = Idempotency(store)
    with pytest.raises(RuntimeError), idem.once(SHOP, "task-2") as first:
        assert first
        raise RuntimeError("provider down")
    with idem.once(SHOP, "task-2") as first:
        assert first  # the retry runs


def test_an_abandoned_claim_expires(store: Store) -> None:
    idem = Idempotency(store, in_progress_ttl=-1)  # claims that are already stale
    with idem.once(SHOP, "task-3") as first:
        assert first
        with Idempotency(store).once(SHOP, "task-3") as again:
            assert again  # the first worker's claim had expired


def test_concurrent_duplicates_run_once(store: Store) -> None:
    idem = Idempotency(store)
    barrier = threading.Barrier(10)
    runs: list[int] = []

    def deliver(i: int) -> None:
        barrier.wait()
        with idem.once(SHOP, "wamid.same") as first:
            if first:
                runs.append(i)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(deliver, range(10)))
    assert len(runs) == 1


def test_begin_records_data_and_only_done_stops_a_later_caller(store: Store) -> None:
    idem = Idempotency(store)
    claim = idem.begin(SHOP, "whatsapp:wamid.R", {"message": "m-1"})
    assert (claim.done, claim.data) == (False, {"message": "m-1"})
    record = store.get(SHOP, COLLECTION, record_id("whatsapp:wamid.R"))
    assert record is not None and record.expires_at is not None
    assert record.expires_at > time.time() + 6 * 24 * 3600  # unfinished, it stays to be resumed
    # A later caller finds it unfinished, with the first caller's data, whatever its age.
    again = idem.begin(SHOP, "whatsapp:wamid.R", {"message": "m-2"})
    assert (again.done, again.data) == (False, {"message": "m-1"})
    idem.complete(again)
    idem.complete(claim)  # the other caller finishing too changes nothing
    done = idem.begin(SHOP, "whatsapp:wamid.R", {"message": "m-3"})
    assert (done.done, done.data) == (True, {"message": "m-1"})


def test_concurrent_begins_share_one_claim(store: Store) -> None:
    idem = Idempotency(store)
    barrier = threading.Barrier(8)

    def begin(i: int) -> str:
        barrier.wait()
        return str(idem.begin(SHOP, "wamid.burst", {"message": f"m-{i}"}).data["message"])

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(begin, range(8)))
    assert len(ids) == 1
