"""``/healthz`` through both adapters: it proves the store takes writes, not only reads."""

from __future__ import annotations

import sqlite3

from shared.app import App
from tests.fixtures.app import Client, post_json

HEALTHY = {"status": "ok", "store": "sqlite", "llm": "offline"}


def refuse_writes(app: App) -> None:
    """Make the app's real SQLite file refuse every write while reads go on (as a full disk or a
    read-only volume would; file modes do not stop root, so triggers do it)."""
    path = app.settings.store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON docs "
                "BEGIN SELECT RAISE(ABORT, 'read-only'); END"
            )


def heartbeat_version(app: App) -> int | None:
    doc = app.store.get(app.settings.default_shop, "health", "heartbeat")
    return doc.version if doc else None


def test_healthy_store_is_200_and_the_heartbeat_was_written(client: Client, app: App) -> None:
    result = client.request("GET", "/healthz")
    assert (result.status, result.json()) == (200, HEALTHY)
    assert heartbeat_version(app) == 1


def test_the_heartbeat_is_written_at_most_every_few_seconds(client: Client, app: App) -> None:
    statuses = [client.request("GET", "/healthz").status for _ in range(5)]
    assert statuses == [200] * 5
    assert heartbeat_version(app) == 1  # one write for five checks


def test_a_store_that_refuses_writes_is_503(client: Client, app: App) -> None:
    refuse_writes(app)
    assert app.store.get("teranga", "shops", "teranga") is not None  # reads still work
    result = client.request("GET", "/healthz")
    assert result.status == 503
    assert result.json() == {**HEALTHY, "status": "unavailable", "reason": "store_unwritable"}
    # What the check stands for: a chat turn fails the same way.
    turn = post_json(client, "/chat", {"message": "Bonjour"})
    assert (turn.status, turn.json()["error"]["code"]) == (503, "store_unavailable")
