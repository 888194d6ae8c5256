"""A real SQLite store that counts its operations and can be told to fail some writes: the
consolidator's budget and its failure paths are checked on it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from shared.app import App, use_app
from shared.exceptions import StoreUnavailableError
from shared.store.base import Doc, Key, QuerySpec, Write
from shared.store.sqlite import SQLiteStore
from tests.fixtures.app import make_settings, seed_small_shop


class WatchedStore(SQLiteStore):
    """SQLite, recording each primitive (reads, queries, writes) by collection, and refusing the
    writes ``fail_write`` picks (as an unavailable store would)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.ops: list[str] = []
        self.fail_write: Callable[[Key], bool] | None = None

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        self.ops.append(f"get {keys[0].collection}")
        return super()._get_many(keys)

    def _query(self, spec: QuerySpec) -> list[Doc]:
        self.ops.append(f"query {spec.collection}")
        return super()._query(spec)

    def _write(self, write: Write) -> Doc:
        if self.fail_write is not None and self.fail_write(write.key):
            raise StoreUnavailableError("injected failure")
        try:
            written = super()._write(write)
        except Exception:
            self.ops.append(f"refused {write.key.collection}")  # an operation all the same
            raise
        self.ops.append(f"write {write.key.collection}")
        return written

    def writes(self) -> list[str]:
        return [op for op in self.ops if op.startswith("write")]


def watched_app(tmp_path: Path, **overrides: str) -> tuple[App, WatchedStore]:
    """An App on a fresh WatchedStore holding the small test shop, installed for the functions."""
    settings = make_settings(
        tmp_path, RATE_LIMIT_PER_MINUTE="100000", CLIENT_RATE_LIMIT_PER_MINUTE="100000", **overrides
    )
    app = App(settings)
    store = WatchedStore(settings.store_url.removeprefix("sqlite:///"))
    app.store = store  # type: ignore[misc]  # the cached property, filled before first use
    seed_small_shop(app)
    use_app(app)
    return app, store
