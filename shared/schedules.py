"""The schedule runner: what fires when, and the one tick that fires it.

A schedule is a five-field cron expression or a one-off time, in an IANA time zone
(``ScheduleSpec``). Fire times are computed on the local wall clock with zoneinfo: a local time
that does not exist (the hour skipped in spring) fires at the same wall-clock offset after the
jump, 02:30 becoming 03:30; a local time that happens twice (autumn) fires once, the first time.

Entries live in the reserved platform scope (shops are each in their own scope; the index of
shops, ``shared.shops.all_shop_ids``, lives there too): ``schedules/{shop}~{kind}~{target}``.
``tick`` reads those due, in ``next_at`` order, claims each fire with a create-only
``schedule_runs`` document (so a duplicate or concurrent tick fires nothing twice), queues a
``"scheduled"`` work item and moves the entry to its next fire. Fires missed while nothing
ticked (an outage) are caught up once, as the latest of them. The worker hands the item to the
function ``SCHEDULED`` registers for its kind.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from shared.backends import load_target
from shared.exceptions import (
    AlreadyExistsError,
    ComptoirError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
)
from shared.hours import minutes_of_day, zone
from shared.log import log_event
from shared.models import CONFLICT_BACKOFF, Model, mutate
from shared.queue.base import WorkItem
from shared.store import Store
from shared.store.base import check_id, check_shop
from shared.worker import UnknownWorkKindError

if TYPE_CHECKING:
    from shared.app import App

PLATFORM = "platform"  # the reserved scope of cross-shop indexes; no shop may take this id
ENTRIES = "schedules"
RUNS = "schedule_runs"
RUN_RETENTION_S = 90 * 86400  # a claim outlives any tick that could still try the same fire
# How far the day walk looks for a fire: 8 years covers "29 feb" on a Monday and any real
# expression; a cron that matches no day that far is refused when parsed (see ``_never_fires``).
_MAX_DAYS = 8 * 366
_PAGE = 100

# kind -> "module:function" called as (app, shop, target, slot) by the "scheduled" work kind;
# ``slot`` is the fire time (epoch seconds), None when the entry was only woken.
SCHEDULED: dict[str, str] = {
    "campaign": "shared.campaigns.runner:on_schedule",  # start a campaign's run, resume one
    "job": "shared.jobs:on_schedule",  # a job's or a reminder's messages
}


# --- cron ------------------------------------------------------------------------------------

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_WEEKDAYS)}),
)


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool  # the field is not "*": with weekdays restricted too, either matches
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays


@lru_cache(maxsize=256)
def parse_cron(expression: str) -> Cron:
    """The five fields of ``expression``; ValueError naming the field that is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    values = [_parse_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    cron = Cron(
        minutes=tuple(sorted(values[0])),
        hours=tuple(sorted(values[1])),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )
    if _never_fires(cron):
        raise ValueError("the day of month never occurs in the months given")
    return cron


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    found: set[int] = set()
    for item in text.lower().split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name}: step {step_text!r} is not a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = _value(start, name, low, high, names)
            # "5/15" runs from 5 to the end, as in Vixie cron.
            last = _value(end, name, low, high, names) if dash else (high if slash else first)
            if first > last:
                raise ValueError(f"{name}: range {base!r} runs backwards")
        found.update(range(first, last + 1, step))
    return found


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}-{high}")
    return value


def _never_fires(cron: Cron) -> bool:
    if cron.weekdays_restricted and cron.days_restricted:
        return False  # the weekdays alone fire
    longest = {month: calendar.monthrange(2024, month)[1] for month in cron.months}  # a leap year
    return not any(day <= longest[month] for month in cron.months for day in cron.days)


# --- specs -----------------------------------------------------------------------------------


class ScheduleSpec(BaseModel):
    """When something fires: ``cron`` (five fields) or ``at`` (once, epoch seconds), in
    ``timezone``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str | None = None
    at: float | None = None
    timezone: str

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str | None) -> str | None:
        if cron is not None:
            parse_cron(" ".join(cron.split()))
        return " ".join(cron.split()) if cron is not None else None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        zone(name)
        return name

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.cron is None) == (self.at is None):
            raise ValueError("give exactly one of cron (repeating) and at (once)")
        return self


def next_fire(spec: ScheduleSpec, after: float) -> float | None:
    """The first fire strictly after ``after``; None when there is none (a one-off past)."""
    if spec.cron is None:
        return spec.at if spec.at is not None and spec.at > after else None
    return _walk(parse_cron(spec.cron), spec.timezone, after, forward=True)


def latest_fire(spec: ScheduleSpec, after: float, now: float) -> float | None:
    """The latest fire in ``(after, now]``: however many were missed, they are caught up once.
    Walks back from ``now`` a day at a time, so a long outage costs no more than a short one."""
    if spec.cron is None:
        return spec.at if spec.at is not None and after < spec.at <= now else None
    found = _walk(parse_cron(spec.cron), spec.timezone, now, forward=False)
    return found if found is not None and found > after else None


def _walk(cron: Cron, timezone: str, start: float, *, forward: bool) -> float | None:
    """Forward: the first fire > ``start``; backward: the last fire <= ``start``. Day by day on
    the local calendar, only the matching days expanded into their times."""
    tz = zone(timezone)
    today = datetime.fromtimestamp(start, tz).date()
    step = timedelta(days=1 if forward else -1)
    for offset in range(_MAX_DAYS):
        day = today + step * offset
        if not cron.matches_day(day):
            continue
        best = _best_in_day(cron, day, tz, start, forward)
        if best is not None:
            return best
    return None


def _best_in_day(cron: Cron, day: date, tz: Any, start: float, forward: bool) -> float | None:
    # Instants within a day follow the wall clock except across a skipped hour (shifted by up
    # to its length): the best is kept, and the search stops two hours past it.
    best: float | None = None
    times = [(h, m) for h in cron.hours for m in cron.minutes]
    for hour, minute in times if forward else reversed(times):
        # fold=0: an ambiguous time is its first occurrence, a skipped one is shifted forward.
        instant = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()
        if forward and instant > start:
            if best is not None and instant > best + 7200:
                break
            best = instant if best is None else min(best, instant)
        elif not forward and instant <= start:
            if best is not None and instant < best - 7200:
                break
            best = instant if best is None else max(best, instant)
    return best


# --- quiet hours -----------------------------------------------------------------------------


class QuietHours(BaseModel):
    """Local times between which nothing is sent; ``start`` after ``end`` spans midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = "21:00"
    end: str = "08:00"

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, text: str) -> str:
        minutes_of_day(text)
        return text


def quiet_until(quiet: QuietHours, timezone: str, at: float) -> float | None:
    """When the quiet hours around ``at`` end; None when ``at`` is outside them (or they are
    empty: start equal to end)."""
    tz = zone(timezone)
    local = datetime.fromtimestamp(at, tz)
    now = local.hour * 60 + local.minute + local.second / 60
    start, end = minutes_of_day(quiet.start), minutes_of_day(quiet.end)
    if start == end:
        return None
    if start < end:
        quiet_now, end_day = start <= now < end, local.date()
    else:  # spans midnight
        quiet_now = now >= start or now < end
        end_day = local.date() if now < end else local.date() + timedelta(days=1)
    if not quiet_now:
        return None
    midnight = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    return (midnight + timedelta(minutes=end)).timestamp()


# --- entries ---------------------------------------------------------------------------------


class ScheduleEntry(Model):
    id: str
    shop: str
    kind: str
    target: str
    spec: ScheduleSpec
    enabled: bool = True
    next_fire_at: float | None = None
    wake_at: float | None = None
    next_at: float | None = None  # the earlier of the two; absent: no query returns it
    updated_at: float | None = None

    def moved(self, now: float) -> ScheduleEntry:
        """After a tick at ``now``: the fire and wake that were due are spent."""
        fire = self.next_fire_at
        if fire is not None and fire <= now:
            fire = next_fire(self.spec, now)
        wake = self.wake_at if self.wake_at is not None and self.wake_at > now else None
        return self._timed(fire, wake)

    def _timed(self, fire: float | None, wake: float | None) -> ScheduleEntry:
        pending = [t for t in (fire, wake) if t is not None]
        next_at = min(pending) if pending and self.enabled else None
        return self.model_copy(update={"next_fire_at": fire, "wake_at": wake, "next_at": next_at})


def entry_id(shop: str, kind: str, target: str) -> str:
    return check_id(f"{shop}~{kind}~{target}")


def save_entry(
    store: Store,
    shop: str,
    kind: str,
    target: str,
    spec: ScheduleSpec,
    now: float,
    *,
    enabled: bool = True,
) -> ScheduleEntry:
    """Create or replace the schedule of (shop, kind, target); its next fire is the first after
    ``now``. A wake already asked for is kept."""
    if check_shop(shop) == PLATFORM:
        raise InvalidInputError(f"{PLATFORM!r} is not a shop")
    if kind not in SCHEDULED:
        raise InvalidInputError(f"no scheduled kind {kind!r} (known: {', '.join(SCHEDULED)})")
    doc_id = entry_id(shop, kind, target)
    fresh = ScheduleEntry(
        id=doc_id, shop=shop, kind=kind, target=target, spec=spec, enabled=enabled
    )
    for _ in CONFLICT_BACKOFF:  # another writer (a tick moving it) got in first: read again
        doc = store.get(PLATFORM, ENTRIES, doc_id)
        wake_at = doc.data.get("wake_at") if doc is not None else None
        entry = fresh.model_copy(update={"updated_at": now})._timed(next_fire(spec, now), wake_at)
        try:
            if doc is None:
                store.create(PLATFORM, ENTRIES, doc_id, entry.to_doc())
            else:
                store.update(PLATFORM, ENTRIES, doc_id, entry.to_doc(), if_version=doc.version)
        except (AlreadyExistsError, PreconditionFailedError, NotFoundError):
            continue
        return entry
    raise PreconditionFailedError(f"{ENTRIES} kept changing; try again")


def remove_entry(store: Store, shop: str, kind: str, target: str) -> bool:
    """Forget the schedule; whether there was one."""
    return store.delete(PLATFORM, ENTRIES, entry_id(shop, kind, target))


def wake(store: Store, shop: str, kind: str, target: str, at: float) -> ScheduleEntry:
    """Ask for the entry's function to be called at ``at`` with no fire (slot None): a stalled
    or deferred run resumes then. The earliest wake asked for wins. NotFoundError without an
    entry."""

    def woken(entry: ScheduleEntry) -> ScheduleEntry:
        wake_at = at if entry.wake_at is None else min(entry.wake_at, at)
        return entry._timed(entry.next_fire_at, wake_at)

    return mutate(store, PLATFORM, ENTRIES, entry_id(shop, kind, target), ScheduleEntry, woken)[0]


# --- the tick --------------------------------------------------------------------------------


@dataclass
class TickReport:
    due: int = 0  # entries read with next_at <= now
    queued: int = 0  # work items sent
    claimed_before: int = 0  # fires another tick had already claimed
    failed: int = 0  # entries that could not be read or moved (logged, skipped)


def tick(app: App, now: float) -> TickReport:
    """Fire every due entry once; safe to run twice, or twice at the same time."""
    report = TickReport()
    cursor: str | None = None
    while True:
        page = app.store.query(PLATFORM, ENTRIES, order_by="next_at", limit=_PAGE, cursor=cursor)
        for doc in page.items:
            if float(doc.data["next_at"]) > now:
                return report
            report.due += 1
            try:
                _fire(app, ScheduleEntry.from_doc(doc), doc.version, now, report)
            except (ValidationError, ComptoirError, ValueError) as exc:
                # A bad stored spec or a store hiccup stops this entry only; the id and target
                # may name a customer, so only the shop and kind are logged.
                report.failed += 1
                log_event(
                    "schedule_failed",
                    shop=str(doc.data.get("shop", "")),
                    kind=str(doc.data.get("kind", "")),
                    error_type=type(exc).__name__,
                )
        if (cursor := page.cursor) is None:
            return report


def _fire(app: App, entry: ScheduleEntry, version: int, now: float, report: TickReport) -> None:
    slot = None
    if entry.next_fire_at is not None and entry.next_fire_at <= now:
        # next_fire_at is itself a fire: the search starts just before it.
        slot = latest_fire(entry.spec, entry.next_fire_at - 1, now)
    woken = entry.wake_at is not None and entry.wake_at <= now
    if slot is not None or woken:
        claim = f"{entry.id}~{slot:.0f}" if slot is not None else f"{entry.id}~w{entry.wake_at:.3f}"
        try:
            app.store.create(
                PLATFORM,
                RUNS,
                claim,
                {"shop": entry.shop, "kind": entry.kind, "slot": slot, "at": now},
                expires_at=now + RUN_RETENTION_S,
            )
        except AlreadyExistsError:
            report.claimed_before += 1
        else:
            item = WorkItem(
                kind="scheduled",
                shop=entry.shop,
                group=f"{entry.kind}:{entry.target}",
                dedup_id=claim,
                payload={"kind": entry.kind, "target": entry.target, "slot": slot},
            )
            try:
                app.queue.send(item)
            except BaseException:
                # Not queued: the claim goes, the entry stays due, the next tick tries again.
                app.store.delete(PLATFORM, RUNS, claim)
                raise
            report.queued += 1
    mutate(app.store, PLATFORM, ENTRIES, entry.id, ScheduleEntry, lambda e: e.moved(now),
           start=(entry, version))  # fmt: skip


def handle(app: App, item: WorkItem) -> None:
    """The ``"scheduled"`` work kind: call the function registered for the entry's kind."""
    kind = str(item.payload.get("kind", ""))
    target = SCHEDULED.get(kind)
    if target is None:
        raise UnknownWorkKindError(f"no scheduled kind {kind!r}")
    slot = item.payload.get("slot")
    load_target(target)(app, item.shop, str(item.payload["target"]), slot)


def tick_task(app: App, now: float) -> dict[str, Any]:
    """The ``tick`` task: its report as JSON."""
    started = time.perf_counter()
    report = asdict(tick(app, now))
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    log_event("schedule_tick", **report, latency_ms=latency_ms)
    return report
