"""What the contract cannot see of the Firestore backend: its layout, its TTL field, its lazy
import, and how it reports what only the server checks or an unreachable server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.exceptions import DocumentTooLargeError, StoreUnavailableError
from shared.store import open_store
from shared.store.base import encoded_size
from shared.store.firestore import FirestoreStore
from tests.loopback import free_port

SHOP = "shop-a"
ROOT = Path(__file__).resolve().parents[2]


def _raw(store: FirestoreStore, path: str) -> dict[str, object] | None:
    return store.client.document(path).get().to_dict()


def test_nested_collection_is_a_subcollection_of_its_document(
    firestore_store: FirestoreStore,
) -> None:
    firestore_store.put(SHOP, "conversations/c1/messages", "m1", {"text": "a"})
    firestore_store.put(SHOP, "products", "p1", {"title": "b"})
    assert _raw(firestore_store, f"shops/{SHOP}/conversations/c1/messages/m1") == {
        "d": {"text": "a"},
        "k": "m1",
        "v": 1,
    }
    assert _raw(firestore_store, f"shops/{SHOP}/products/p1") == {
        "d": {"title": "b"},
        "k": "p1",
        "v": 1,
    }
    # The parents are only paths: nothing is written at them.
    assert _raw(firestore_store, f"shops/{SHOP}/conversations/c1") is None
    assert _raw(firestore_store, f"shops/{SHOP}") is None


def test_expiry_is_written_as_a_ttl_timestamp_and_cleared(firestore_store: FirestoreStore) -> None:
    expires_at = time.time() + 3600
    firestore_store.put(SHOP, "idempotency", "k", {"v": 1}, expires_at=expires_at)
    raw = _raw(firestore_store, f"shops/{SHOP}/idempotency/k")
    assert raw is not None
    assert raw["exp"] == expires_at
    assert raw["ttl"] == datetime.fromtimestamp(expires_at, tz=UTC)
    firestore_store.put(SHOP, "idempotency", "k", {"v": 2})
    assert _raw(firestore_store, f"shops/{SHOP}/idempotency/k") == {"d": {"v": 2}, "k": "k", "v": 2}


def test_size_refused_by_the_server_is_document_too_large(
    firestore_store: FirestoreStore,
) -> None:
    # Small in JSON (2 bytes a number), over 1 MiB as Firestore counts (8 bytes a number).
    data = {"n": [1] * 135_000}
    assert encoded_size(data) < firestore_store.max_document_bytes
    with pytest.raises(DocumentTooLargeError):
        firestore_store.put(SHOP, "products", "big", data)
    assert firestore_store.get(SHOP, "products", "big") is None


def test_ping_fails_fast_when_the_server_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    store = open_store("firestore://unreachable")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        store.ping()
    assert time.monotonic() - started < 3
    store.close()


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    # A fresh interpreter: this one has loaded the SDK already. (``google`` and
    # ``google.cloud`` are namespace packages that .pth files may load at startup.)
    code = (
        "import json, sys, shared.store.firestore; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith(('google.cloud.firestore', 'google.api_core', 'google.auth', 'grpc')))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
