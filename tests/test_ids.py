"""Identifiers the store must always accept."""

from __future__ import annotations

import time

from shared.ids import is_session_id, is_sortable_id, new_session_id, new_sortable_id, sortable_at
from shared.store.base import check_id


def test_session_ids_are_random_and_storable() -> None:
    ids = {new_session_id() for _ in range(20_000)}  # about five would start with "__" otherwise
    assert len(ids) == 20_000
    for session_id in ids:
        assert is_session_id(session_id)
        assert check_id(session_id) == session_id
    # About 300 of 20,000 would start with "-", which a command line reads as an option
    # (`python -m shared release -abc…` failed: tests/test_crm.py, one run in 64).
    assert not any(session_id.startswith("-") for session_id in ids)


def test_a_client_sent_reserved_id_is_not_a_session_id() -> None:
    assert not is_session_id("__" + "a" * 30)
    assert is_session_id("_a" + "b" * 30)


def test_sortable_ids_increase() -> None:
    ids = [new_sortable_id() for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000


def test_a_time_position_sorts_between_the_ids_made_before_and_after_it() -> None:
    before = new_sortable_id()
    position = sortable_at(time.time())
    time.sleep(0.002)
    after = new_sortable_id()
    assert before < position < after
    assert all(is_sortable_id(v) for v in (before, position, after))
    assert check_id(position) == position
    for wrong in ("", "abc", "1" * 15, before + "0", new_session_id(), 17):
        assert not is_sortable_id(wrong)
