"""The ``store`` fixture: every contract test runs once per backend.

Each backend's fixture lives in ``tests/fixtures/<backend>.py`` and yields a fresh, empty Store.
"""

from __future__ import annotations

import pytest

from shared.store import Store

BACKENDS = ["sqlite", "dynamodb", "firestore"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Store:
    backend_store: Store = request.getfixturevalue(f"{request.param}_store")
    return backend_store
