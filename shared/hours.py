"""A shop's business hours: whether it is open at a moment, and when it opens next, said in the
customer's language ("demain à 9 h", "tomorrow at 9 am").

Hours are open-close ranges per weekday in the shop's time zone (``{"mon": ["09:00-13:00",
"15:00-19:00"], ...}``); a day not listed is closed; no hours at all means always open. A range
ends on its day ("24:00" at the latest): a night opening is two ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)  # in date.weekday() order
Hours = Mapping[Weekday, Sequence[str]]

_DAY_NAMES = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def parse_range(text: str) -> tuple[int, int]:
    """``"09:00-18:30"`` as minutes after midnight, ``(540, 1110)``; ValueError if malformed."""
    opens, sep, closes = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    start, end = minutes_of_day(opens), minutes_of_day(closes)
    if not start < end:
        raise ValueError(f"{text!r} closes before it opens (split a night into two days)")
    return start, end


def check_hours(hours: Hours) -> None:
    if not any(hours.values()):
        raise ValueError("give at least one open range, or no business hours (always open)")
    for ranges in hours.values():
        for text in ranges:
            parse_range(text)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Africa/Dakar)") from None


def next_opening(hours: Hours | None, timezone: str, at: float) -> datetime | None:
    """When the shop opens next if it is closed at ``at`` (a Unix time), in its time zone;
    None if it is open then."""
    if not hours:
        return None
    tz = zone(timezone)
    now = datetime.fromtimestamp(at, tz)
    for offset in range(8):  # every listed weekday comes round within a week
        day = now.date() + timedelta(days=offset)
        for start, end in sorted(parse_range(r) for r in hours.get(WEEKDAYS[day.weekday()], ())):
            if now >= _on(day, end, tz):
                continue
            return None if now >= _on(day, start, tz) else _on(day, start, tz)
    return None


def when(opening: datetime, at: float, lang: str) -> str:
    """``opening`` as a customer reads it at ``at``: "demain à 9 h", "on Monday at 9:30 am"."""
    lang = lang if lang in _DAY_NAMES else "en"
    days = (opening.date() - datetime.fromtimestamp(at, opening.tzinfo).date()).days
    hour, minute = opening.hour, opening.minute
    if lang == "fr":
        day = ("aujourd'hui", "demain")[days] if days < 2 else _DAY_NAMES["fr"][opening.weekday()]
        return f"{day} à {hour} h" + (f" {minute:02d}" if minute else "")
    day = ("today", "tomorrow")[days] if days < 2 else "on " + _DAY_NAMES["en"][opening.weekday()]
    clock = f"{(hour - 1) % 12 + 1}" + (f":{minute:02d}" if minute else "")
    return f"{day} at {clock} {'am' if hour < 12 else 'pm'}"


def minutes_of_day(text: str) -> int:
    """``"21:30"`` as minutes after midnight (``"24:00"`` is 1440); ValueError if malformed."""
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"expected HH:MM, got {text.strip()!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"{text.strip()!r} is not a time of day")
    return value


def _on(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    # Wall-clock arithmetic: "24:00" is the next midnight.
    return datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=minutes)
