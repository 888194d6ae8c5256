"""What the contract suite cannot express about the DynamoDB backend: its item layout, number
encoding, error translation and import cost."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

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
