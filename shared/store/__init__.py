"""The document-store port and the factory that picks a backend from ``STORE_URL``."""

from __future__ import annotations

from typing import Any

from shared.backends import choose, load_target
from shared.store.base import Doc, Expect, Page, Store

BACKENDS = {
    "sqlite": "shared.store.sqlite:SQLiteStore",
    "dynamodb": "shared.store.dynamodb:DynamoDBStore",
    "firestore": "shared.store.firestore:FirestoreStore",
}


def open_store(url: str, **clients: Any) -> Store:
    """Open the backend named by the URL's scheme; SDK clients may be injected (tests)."""
    scheme = url.split(":", 1)[0]
    unsupported = (
        f"STORE_URL: unsupported scheme {scheme!r} (expected one of {', '.join(BACKENDS)})"
    )
    store: Store = load_target(choose(BACKENDS, scheme, unsupported)).from_url(url, **clients)
    return store


__all__ = ["Doc", "Expect", "Page", "Store", "open_store"]
