"""The console's audit log: append-only entries, newest first, never failing the action."""

from __future__ import annotations

import time

from shared.admin import audit, auth
from shared.app import App


def _operator(shop: str = "teranga") -> auth.Operator:
    return auth.Operator("op-1", shop, "awa@maison-teranga.example", "s", "c", time.time() + 60)


def test_entries_are_read_newest_first_a_page_at_a_time(admin_app: App) -> None:
    for n in range(3):
        audit.record(admin_app.store, "teranga", _operator(), "order.status", f"o{n}", {"n": n})
    first, cursor = audit.entries(admin_app.store, "teranga", limit=2)
    assert [e["target"] for e in first] == ["o2", "o1"]
    assert first[0]["operator"] == "awa@maison-teranga.example"
    assert first[0]["details"] == {"n": 2}
    rest, end = audit.entries(admin_app.store, "teranga", cursor, limit=2)
    assert [e["target"] for e in rest] == ["o0"] and end is None
    assert audit.entries(admin_app.store, "other")[0] == []


def test_a_failed_record_does_not_raise_into_the_action(admin_app: App) -> None:
    # A shop id the store refuses: the write fails, the caller carries on.
    audit.record(admin_app.store, "Not A Shop!", _operator(), "order.status", "o1")
