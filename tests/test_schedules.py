"""The schedule runner (shared/schedules.py): cron parsing, fire times across DST, quiet hours,
and the tick on a real SQLite store with the in-process queue."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared import schedules
from shared.app import App
from shared.exceptions import InvalidInputError, NotFoundError, UnknownShopError
from shared.schedules import (
    ENTRIES,
    PLATFORM,
    RUNS,
    QuietHours,
    ScheduleSpec,
    latest_fire,
    next_fire,
    parse_cron,
    quiet_until,
    remove_entry,
    save_entry,
    tick,
    wake,
)
from shared.shops import load_shop, new_shop

PARIS, DAKAR = ZoneInfo("Europe/Paris"), ZoneInfo("Africa/Dakar")
CALLS: list[tuple[str, str, float | None]] = []


def on_schedule(app: App, shop: str, target: str, slot: float | None) -> None:
    """The test-only scheduled kind's function."""
    CALLS.append((shop, target, slot))


def at(zone: ZoneInfo, *fields: int) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()  # type: ignore[misc]


def local(zone: ZoneInfo, timestamp: float | None) -> str:
    assert timestamp is not None
    return datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M %Z")


# --- cron ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "check"),
    [
        ("*/15 * * * *", lambda c: c.minutes == (0, 15, 30, 45)),
        ("5-20/5 9 * * *", lambda c: c.minutes == (5, 10, 15, 20) and c.hours == (9,)),
        ("0 9 * * mon-fri", lambda c: c.weekdays == {1, 2, 3, 4, 5}),
        ("0 9 * * 7", lambda c: c.weekdays == {0}),  # 7 is Sunday, as 0
        ("0 9 1,15 jan,JUL *", lambda c: c.days == {1, 15} and c.months == {1, 7}),
        ("30 8 * * SUN", lambda c: c.weekdays == {0} and not c.days_restricted),
    ],
)
def test_valid_cron_expressions(expression: str, check: Any) -> None:
    assert check(parse_cron(expression))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 9 0 * *", "day of month: 0 is outside 1-31"),
        ("0 9 * 13 *", "month: 13 is outside 1-12"),
        ("0 9 * * 8", "day of week: 8 is outside 0-7"),
        ("*/0 * * * *", "minute: step '0'"),
        ("0 9 * * fri-mon", "runs backwards"),
        ("0 9 * * lundi", "day of week: 'lundi' is not a number or a name"),
        ("0 9 30 feb *", "never occurs"),
    ],
)
def test_invalid_cron_expressions_say_what_is_wrong(expression: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ScheduleSpec(cron=expression, timezone="Africa/Dakar")


def test_a_spec_has_exactly_one_of_cron_and_at_and_a_known_zone() -> None:
    with pytest.raises(ValidationError, match="exactly one of cron"):
        ScheduleSpec(timezone="Africa/Dakar")
    with pytest.raises(ValidationError, match="exactly one of cron"):
        ScheduleSpec(cron="0 9 * * *", at=1.0, timezone="Africa/Dakar")
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        ScheduleSpec(cron="0 9 * * *", timezone="Mars/Olympus")


# --- fire times ------------------------------------------------------------------------------


def test_next_fire_in_dakar_has_no_dst() -> None:
    spec = ScheduleSpec(cron="0 9 * * mon", timezone="Africa/Dakar")
    after = at(DAKAR, 2025, 3, 28, 12, 0)  # a Friday
    assert local(DAKAR, next_fire(spec, after)) == "2025-03-31 09:00 GMT"
    assert local(DAKAR, next_fire(spec, at(DAKAR, 2025, 3, 31, 9, 0))) == "2025-04-07 09:00 GMT"


def test_next_fire_across_dst_in_paris() -> None:
    daily = ScheduleSpec(cron="0 9 * * *", timezone="Europe/Paris")
    # 09:00 local on both sides of the spring change: the UTC hour moves, the local one does not.
    first = next_fire(daily, at(PARIS, 2025, 3, 29, 10, 0))
    assert local(PARIS, first) == "2025-03-30 09:00 CEST"
    assert first is not None and local(PARIS, next_fire(daily, first)) == "2025-03-31 09:00 CEST"
    # 02:30 does not exist on 30 March 2025: skipped forward to 03:30, fired once.
    skipped = ScheduleSpec(cron="30 2 * * *", timezone="Europe/Paris")
    fire = next_fire(skipped, at(PARIS, 2025, 3, 29, 12, 0))
    assert local(PARIS, fire) == "2025-03-30 03:30 CEST"
    assert fire is not None and local(PARIS, next_fire(skipped, fire)) == "2025-03-31 02:30 CEST"
    # 02:30 happens twice on 26 October 2025: it fires once, the first time.
    fire = next_fire(skipped, at(PARIS, 2025, 10, 25, 12, 0))
    assert local(PARIS, fire) == "2025-10-26 02:30 CEST"
    assert fire is not None and local(PARIS, next_fire(skipped, fire)) == "2025-10-27 02:30 CET"


def test_weekday_or_day_of_month_when_both_are_restricted() -> None:
    # The 13th, or any Friday (cron's OR rule).
    spec = ScheduleSpec(cron="0 12 13 * fri", timezone="Africa/Dakar")
    fires = []
    moment = at(DAKAR, 2025, 6, 1, 0, 0)
    for _ in range(5):
        found = next_fire(spec, moment)
        assert found is not None
        fires.append(local(DAKAR, found)[:10])
        moment = found
    assert fires == ["2025-06-06", "2025-06-13", "2025-06-20", "2025-06-27", "2025-07-04"]
    # With the weekday "*", the day of month alone counts (AND with everything).
    assert local(DAKAR, next_fire(ScheduleSpec(cron="0 12 13 * *", timezone="Africa/Dakar"),
                                  at(DAKAR, 2025, 6, 1, 0, 0)))[:10] == "2025-06-13"  # fmt: skip


def test_latest_fire_after_a_three_day_outage_is_the_last_one_only() -> None:
    spec = ScheduleSpec(cron="*/5 * * * *", timezone="Europe/Paris")
    last_seen = at(PARIS, 2025, 3, 28, 10, 0)
    now = at(PARIS, 2025, 3, 31, 10, 7)  # 3 days later, across the spring change
    assert local(PARIS, latest_fire(spec, last_seen, now)) == "2025-03-31 10:05 CEST"
    assert latest_fire(spec, now, now + 60) is None  # nothing in (10:07, 10:08]
    # A weekly schedule missed for months: the walk goes back day by day from now, not minute
    # by minute from the outage.
    weekly = ScheduleSpec(cron="0 9 * * mon", timezone="Africa/Dakar")
    found = latest_fire(weekly, at(DAKAR, 2024, 1, 1, 0, 0), at(DAKAR, 2025, 6, 5, 0, 0))
    assert local(DAKAR, found) == "2025-06-02 09:00 GMT"


def test_a_one_off_fires_once() -> None:
    when = at(DAKAR, 2025, 6, 5, 9, 0)
    spec = ScheduleSpec(at=when, timezone="Africa/Dakar")
    assert next_fire(spec, when - 1) == when
    assert next_fire(spec, when) is None
    assert latest_fire(spec, when - 1, when + 3600) == when
    assert latest_fire(spec, when, when + 3600) is None


def test_quiet_hours_spanning_midnight() -> None:
    quiet = QuietHours()  # 21:00-08:00
    assert quiet_until(quiet, "Africa/Dakar", at(DAKAR, 2025, 6, 5, 20, 59)) is None
    assert local(DAKAR, quiet_until(quiet, "Africa/Dakar", at(DAKAR, 2025, 6, 5, 21, 0))) == (
        "2025-06-06 08:00 GMT"
    )
    assert local(DAKAR, quiet_until(quiet, "Africa/Dakar", at(DAKAR, 2025, 6, 6, 3, 0))) == (
        "2025-06-06 08:00 GMT"
    )
    assert quiet_until(quiet, "Africa/Dakar", at(DAKAR, 2025, 6, 6, 8, 0)) is None
    lunch = QuietHours(start="12:00", end="14:00")
    assert local(PARIS, quiet_until(lunch, "Europe/Paris", at(PARIS, 2025, 6, 6, 13, 0))) == (
        "2025-06-06 14:00 CEST"
    )
    with pytest.raises(ValidationError, match="expected HH:MM"):
        QuietHours(start="9h")


# --- the tick --------------------------------------------------------------------------------


@pytest.fixture
def kind(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(schedules.SCHEDULED, "test_kind", f"{__name__}:on_schedule")
    CALLS.clear()
    return "test_kind"


def runs(app: App) -> list[str]:
    return [doc.id for doc in app.store.scan(PLATFORM, RUNS)]


DAILY = ScheduleSpec(cron="0 9 * * *", timezone="Africa/Dakar")
MORNING = at(DAKAR, 2030, 6, 5, 8, 0)  # claims expire 90 days after: in the future
NINE = at(DAKAR, 2030, 6, 5, 9, 0)


def test_a_due_entry_is_fired_once_with_its_slot(app: App, kind: str) -> None:
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING)
    assert tick(app, MORNING + 60).queued == 0  # not due yet
    report = tick(app, NINE + 30)
    assert (report.due, report.queued) == (1, 1)
    assert runs(app) == [f"teranga~{kind}~c1~{NINE:.0f}"]
    assert tick(app, NINE + 30).queued == 0  # the same tick again: nothing
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert CALLS == [("teranga", "c1", NINE)]
    entry = app.store.get(PLATFORM, ENTRIES, f"teranga~{kind}~c1")
    assert entry is not None and entry.data["next_fire_at"] == NINE + 86400


def test_a_duplicate_claim_queues_nothing(app: App, kind: str) -> None:
    # Another tick claimed this fire but died before moving the entry.
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING)
    app.store.create(PLATFORM, RUNS, f"teranga~{kind}~c1~{NINE:.0f}", {"at": NINE})
    report = tick(app, NINE + 30)
    assert (report.queued, report.claimed_before) == (0, 1)
    entry = app.store.get(PLATFORM, ENTRIES, f"teranga~{kind}~c1")
    assert entry is not None and entry.data["next_at"] == NINE + 86400  # moved on all the same


def test_two_concurrent_ticks_queue_one(app: App, kind: str) -> None:
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING)
    barrier = threading.Barrier(4)
    reports = []

    def run() -> None:
        barrier.wait()
        reports.append(tick(app, NINE + 30))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.queued for r in reports) == 1
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert CALLS == [("teranga", "c1", NINE)]


def test_an_outage_is_caught_up_once(app: App, kind: str) -> None:
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING)
    three_days_later = NINE + 3 * 86400 + 3600
    assert tick(app, three_days_later).queued == 1
    assert tick(app, three_days_later + 300).queued == 0
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert CALLS == [("teranga", "c1", NINE + 3 * 86400)]


def test_a_bad_stored_entry_does_not_block_the_others(
    app: App, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    save_entry(app.store, "teranga", kind, "c2", DAILY, MORNING)
    broken = {"shop": "teranga", "kind": kind, "target": "secret-customer", "enabled": True,
              "spec": {"cron": "not a cron", "timezone": "Africa/Dakar"},
              "next_fire_at": MORNING, "next_at": MORNING}  # fmt: skip
    app.store.put(PLATFORM, ENTRIES, f"teranga~{kind}~secret-customer", broken)
    report = tick(app, NINE + 30)
    assert (report.due, report.queued, report.failed) == (2, 1, 1)
    assert "secret-customer" not in caplog.text
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert CALLS == [("teranga", "c2", NINE)]


def test_wake_calls_without_a_slot_and_disabled_entries_never_fire(app: App, kind: str) -> None:
    with pytest.raises(NotFoundError):
        wake(app.store, "teranga", kind, "c1", NINE)
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING)
    woken = wake(app.store, "teranga", kind, "c1", MORNING + 600)
    assert woken.next_at == MORNING + 600
    assert tick(app, MORNING + 601).queued == 1
    assert tick(app, MORNING + 602).queued == 0
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert CALLS == [("teranga", "c1", None)]
    save_entry(app.store, "teranga", kind, "c1", DAILY, MORNING, enabled=False)
    assert tick(app, NINE + 30).due == 0
    assert remove_entry(app.store, "teranga", kind, "c1") is True
    assert remove_entry(app.store, "teranga", kind, "c1") is False


def test_entries_refuse_the_platform_scope_and_unknown_kinds(app: App, kind: str) -> None:
    with pytest.raises(InvalidInputError, match="not a shop"):
        save_entry(app.store, PLATFORM, kind, "c1", DAILY, MORNING)
    with pytest.raises(InvalidInputError, match="no scheduled kind 'nope'"):
        save_entry(app.store, "teranga", "nope", "c1", DAILY, MORNING)


def test_platform_is_no_shop_id(app: App) -> None:
    with pytest.raises(InvalidInputError, match="reserved"):
        new_shop(PLATFORM, {})
    app.store.put(PLATFORM, "shops", PLATFORM, {"id": PLATFORM, "name": "x"})
    with pytest.raises(UnknownShopError):
        load_shop(app.store, PLATFORM)
