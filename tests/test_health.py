"""``/healthz`` through both adapters: it proves the store takes writes, not only reads."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable

from shared.app import App
from shared.chat import HOLDING_REPLY
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


def test_a_provider_without_its_key_is_misconfigured_in_healthz_and_each_failing_turn(
    client: Client, make_app: Callable[..., App], logs: io.StringIO
) -> None:
    make_app(LLM_PROVIDER="openai")  # no OPENAI_API_KEY nor LLM_API_KEY
    result = client.request("GET", "/healthz")
    # The store is fine (a restart would not fix a missing variable): 200, and it says so.
    assert (result.status, result.json()) == (200, {**HEALTHY, "llm": "misconfigured"})
    for _ in range(2):
        turn = post_json(client, "/chat", {"message": "Bonjour, vous livrez à Thiès ?"})
        assert (turn.status, turn.json()["reply"]) == (200, HOLDING_REPLY["fr"])
    events = [json.loads(line) for line in logs.getvalue().splitlines()]
    misconfigured = [e for e in events if e["event"] == "llm_misconfigured"]
    assert [(e["level"], e["provider"], e["missing"]) for e in misconfigured] == [
        ("WARNING", "openai", "OPENAI_API_KEY")
    ] * 2  # one per failing turn
    assert "Thiès" not in logs.getvalue()


def test_a_key_or_an_own_base_url_is_not_misconfigured(
    client: Client, make_app: Callable[..., App]
) -> None:
    for settings in (
        {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test"},
        {"LLM_PROVIDER": "deepseek", "LLM_API_KEY": "sk-test"},
        {"LLM_PROVIDER": "ollama"},  # a local server takes no key
        {"LLM_PROVIDER": "openai", "LLM_BASE_URL": "http://127.0.0.1:9/v1"},  # one's own server
    ):
        make_app(**settings)
        result = client.request("GET", "/healthz")
        assert result.json()["llm"] == settings["LLM_PROVIDER"], settings
    make_app(LLM_PROVIDER="offline", LLM_FALLBACKS="gemini")  # a fallback without its key
    assert client.request("GET", "/healthz").json()["llm"] == "misconfigured"
