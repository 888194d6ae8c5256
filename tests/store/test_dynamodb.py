"""What the contract suite cannot express about the DynamoDB backend: its item layout, number
encoding, error translation and import cost."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared.exceptions import ConfigError, DocumentTooLargeError, StoreError, StoreUnavailableError
from shared.store import open_store
from shared.store.base import Expect, Key, Write
from shared.store.dynamodb import DynamoDBStore

SHOP = "shop-a"
ROOT = Path(__file__).resolve().parents[2]


def _raw_item(store: DynamoDBStore, collection: str, doc_id: str) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = store.client.get_item(
        TableName=store.table,
        Key={"pk": {"S": f"{SHOP}#{collection}"}, "sk": {"S": doc_id}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_ttl_is_an_integer_epoch_and_goes_with_the_expiry(dynamodb_store: DynamoDBStore) -> None:
    expires_at = time.time() + 3600.25
    dynamodb_store.put(SHOP, "idempotency", "k", {"v": 1}, expires_at=expires_at)
    item = _raw_item(dynamodb_store, "idempotency", "k")
    assert item["ttl"]["N"] == str(math.ceil(expires_at))
    assert float(item["exp"]["N"]) == expires_at
    assert dynamodb_store.get(SHOP, "idempotency", "k").expires_at == expires_at  # type: ignore[union-attr]

    dynamodb_store.put(SHOP, "idempotency", "k", {"v": 2})  # no expiry any more
    assert {"ttl", "exp"}.isdisjoint(_raw_item(dynamodb_store, "idempotency", "k"))


def test_numbers_round_trip(dynamodb_store: DynamoDBStore) -> None:
    data = {"ratio": 0.1, "pi": math.pi, "tiny": -1e-7, "big": 2**62, "nested": [{"x": 12.5}]}
    dynamodb_store.put(SHOP, "products", "p", data)
    got = dynamodb_store.get(SHOP, "products", "p")
    assert got is not None
    assert got.data == data
    assert isinstance(got.data["ratio"], float)
    assert isinstance(got.data["big"], int)
    assert [d.id for d in dynamodb_store.query(SHOP, "products", where={"ratio": 0.1}).items] == [
        "p"
    ]


def test_unstorable_number_is_a_store_error(dynamodb_store: DynamoDBStore) -> None:
    with pytest.raises(StoreError) as caught:
        dynamodb_store.put(SHOP, "products", "p", {"n": 10**40})  # beyond 38 digits
    assert not isinstance(caught.value, StoreUnavailableError)  # retrying cannot help


def test_item_too_large_for_dynamodb_is_translated(dynamodb_store: DynamoDBStore) -> None:
    dynamodb_store.put(SHOP, "products", "big", {"v": 1})
    key = Key(SHOP, "products", "big")
    with pytest.raises(DocumentTooLargeError):  # bypasses the base class's size check
        too_large = {"blob": "x" * 410_000}
        dynamodb_store._write(Write(key, too_large, None, Expect.ANY, None, time.time()))
    assert dynamodb_store.get(SHOP, "products", "big").data == {"v": 1}  # type: ignore[union-attr]


def test_missing_table_is_unavailable(moto_endpoint: str) -> None:
    store = open_store(f"dynamodb://no-such-table?region=us-east-1&endpoint_url={moto_endpoint}")
    with pytest.raises(StoreUnavailableError):
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.get(SHOP, "products", "p")


@pytest.mark.parametrize(
    "url",
    ["dynamodb://", "dynamodb://t", "dynamodb://table/extra", "dynamodb://table?regoin=eu-west-1"],
)
def test_malformed_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        DynamoDBStore.from_url(url)


def test_import_does_not_load_the_sdk() -> None:
    code = "import shared.store.dynamodb, sys; assert 'boto3' not in sys.modules, 'boto3'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_an_item_too_large_in_a_batch_is_translated(dynamodb_store: DynamoDBStore) -> None:
    key = Key(SHOP, "products", "big")
    fine = Write(Key(SHOP, "products", "fine"), {"v": 1}, None, Expect.ANY, None, time.time())
    too_large = Write(key, {"blob": "x" * 410_000}, None, Expect.ANY, None, time.time())
    with pytest.raises(DocumentTooLargeError):  # bypasses the base class's size check
        dynamodb_store._put_many([fine, too_large])
    assert dynamodb_store.get(SHOP, "products", "fine") is None  # one transaction: nothing


class CancelsTransactions:
    """The real client, whose next ``cancels`` TransactWriteItems calls DynamoDB cancels with
    ``reason`` (as it does one racing another write to an item) before doing anything."""

    def __init__(self, client: Any, reason: str, cancels: int) -> None:
        self.client, self.reason, self.cancels = client, reason, cancels
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **request: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.cancels:
            self.cancels -= 1
            reasons = [{"Code": "None"}] * (len(request["TransactItems"]) - 1)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [*reasons, {"Code": self.reason}],
                },
                "TransactWriteItems",
            )
        return self.client.transact_write_items(**request)


def test_a_batch_cancelled_by_a_conflict_is_tried_again(dynamodb_store: DynamoDBStore) -> None:
    client = CancelsTransactions(dynamodb_store.client, "TransactionConflict", cancels=2)
    store = DynamoDBStore(dynamodb_store.table, client=client)  # type: ignore[arg-type]
    store.put_many(SHOP, "products", {"p1": {"n": 1}, "p2": {"n": 2}})
    assert client.calls == 3
    got = store.get_many(SHOP, "products", ["p1", "p2"])
    assert [(d.data, d.version) for d in got.values()] == [({"n": 1}, 1), ({"n": 2}, 1)]


def test_a_batch_refused_for_good_is_not_retried(dynamodb_store: DynamoDBStore) -> None:
    client = CancelsTransactions(dynamodb_store.client, "ItemCollectionSizeLimitExceeded", 1)
    store = DynamoDBStore(dynamodb_store.table, client=client)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as caught:
        store.put_many(SHOP, "products", {"p1": {"n": 1}})
    assert not isinstance(caught.value, StoreUnavailableError)
    assert "ItemCollectionSizeLimitExceeded" in str(caught.value)
    assert client.calls == 1
