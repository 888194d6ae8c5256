"""When a customer means, in French or English: "demain à 9h", "dans 2 heures", "next Monday at
2:30pm", read on the shop's wall clock relative to now.

A phrase is a relative delay ("dans 2 heures", "in two minutes"), or a day and/or a time of
day: a day alone is at its part of the day ("ce soir": 19:00) or 09:00; a time alone is today,
or tomorrow once it has passed. Weekdays mean the next such day after today ("lundi prochain"
and "next Monday" alike); a date without a year is the next one to come. Anything this cannot
read for certain (two days named, 25h, "ce soir" said at 23:00) gives None: the assistant asks.

Matching is done on the lower-cased text (same length as the original), so the spans ``find``
returns cut the original: what is left is what to be reminded of.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from shared.hours import zone

DEFAULT_HOUR = 9  # a day named without a time: the morning
_NUMBERS = {
    "un": 1, "une": 1, "a": 1, "an": 1, "one": 1, "deux": 2, "two": 2, "trois": 3, "three": 3,
    "quatre": 4, "four": 4, "cinq": 5, "five": 5, "six": 6, "sept": 7, "seven": 7, "huit": 8,
    "eight": 8, "neuf": 9, "nine": 9, "dix": 10, "ten": 10, "quinze": 15, "fifteen": 15,
    "vingt": 20, "twenty": 20, "trente": 30, "thirty": 30, "quarante-cinq": 45,
}  # fmt: skip
_UNITS = {
    "minute": 60, "minutes": 60, "min": 60, "mn": 60, "heure": 3600, "heures": 3600, "h": 3600,
    "hour": 3600, "hours": 3600, "jour": 86400, "jours": 86400, "day": 86400, "days": 86400,
    "semaine": 7 * 86400, "semaines": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400,
}  # fmt: skip
_WEEKDAYS = {
    "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6,
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}  # fmt: skip
_MONTHS = {
    "janvier": 1, "fevrier": 2, "février": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "aout": 8, "août": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "decembre": 12, "décembre": 12, "january": 1, "february": 2, "march": 3, "april": 4,
    "may": 5, "june": 6, "july": 7, "august": 8, "september": 9, "october": 10,
    "november": 11, "december": 12,
}  # fmt: skip
# Day words: days from today, and the hour they imply when no time is said.
_DAY_WORDS: dict[str, tuple[int, int | None]] = {
    "après-demain": (2, None), "apres-demain": (2, None), "après demain": (2, None),
    "apres demain": (2, None), "the day after tomorrow": (2, None), "demain": (1, None),
    "tomorrow": (1, None), "aujourd'hui": (0, None), "today": (0, None), "ce soir": (0, 19),
    "tonight": (0, 19), "this evening": (0, 19), "ce matin": (0, 9), "this morning": (0, 9),
    "cet après-midi": (0, 15), "cet apres-midi": (0, 15), "this afternoon": (0, 15),
}  # fmt: skip
_PARTS = {"matin": 9, "morning": 9, "après-midi": 15, "apres-midi": 15, "afternoon": 15,
          "soir": 19, "evening": 19, "night": 19}  # fmt: skip


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUMBER = rf"(\d{{1,3}}|{_alternatives(_NUMBERS)})"
_RELATIVE_RE = re.compile(rf"\b(?:dans|in)\s+{_NUMBER}\s+({_alternatives(_UNITS)})\b")
_DAY_WORD_RE = re.compile(rf"(?<![\w-])(?:{_alternatives(_DAY_WORDS)})(?![\w-])")
_WEEKDAY_RE = re.compile(
    rf"\b(?:(?:on|next|this|ce|le)\s+)?({_alternatives(_WEEKDAYS)})(?:\s+(?:prochain|next))?"
    rf"(?:\s+({_alternatives(_PARTS)}))?\b"
)
_DATE_RE = re.compile(
    rf"\b(?:(?:le|on|the)\s+)?(\d{{1,2}})(?:er|st|nd|rd|th)?\s+(?:of\s+)?({_alternatives(_MONTHS)})\b"
    rf"|\b(?:on\s+)?({_alternatives(_MONTHS)})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b"
)
_TIME_RE = re.compile(
    r"(?:\b(?:à|a|at|vers|around|for)\s+)?"
    r"(?:\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b"  # 9am, 2:30 pm
    r"|\b(\d{1,2})\s+heures?\b"  # à 9 heures
    r"|\b(\d{1,2})\s*(?:h(?![a-z])|:)\s*(\d{2})?(?!\d)"  # 9h, 14h30, 18:00
    r"(?:\s*(?:du|in the)\s+(matin|soir|morning|evening))?"
    r"|\b(midi|noon|minuit|midnight)\b)"
)


@dataclass(frozen=True)
class Found:
    at: datetime  # aware, in the shop's timezone
    spans: tuple[tuple[int, int], ...]  # where the phrase is in the text

    def rest(self, text: str) -> str:
        """``text`` without the phrase."""
        kept = text
        for start, end in sorted(self.spans, reverse=True):
            kept = kept[:start] + " " + kept[end:]
        return " ".join(kept.split())


def parse(text: str, now: float, timezone: str) -> datetime | None:
    """The moment ``text`` names, after ``now``, in ``timezone``; None when it names none or
    more than one."""
    found = find(text, now, timezone)
    return found.at if found is not None else None


def find(text: str, now: float, timezone: str) -> Found | None:
    """The moment named somewhere in ``text`` (a sentence), and where."""
    tz = zone(timezone)
    lowered = text.lower().replace("’", "'")
    local_now = datetime.fromtimestamp(now, tz)
    relative = list(_RELATIVE_RE.finditer(lowered))
    if relative:
        if len(relative) > 1:
            return None
        match = relative[0]
        amount = _number(match.group(1))
        seconds = amount * _UNITS[match.group(2)]
        if amount <= 0:
            return None
        at = datetime.fromtimestamp(now + seconds, tz)
        return Found(at, (match.span(),))
    day, default_hour, day_spans, explicit_day = _day(lowered, local_now)
    if day is None and day_spans:  # two days named, or a date that does not exist
        return None
    clock, time_spans, ambiguous = _clock(_without(lowered, day_spans))
    if ambiguous:
        return None
    if day is None and clock is None:
        return None
    if clock is None:
        clock = time(default_hour if default_hour is not None else DEFAULT_HOUR)
    elif default_hour is not None and default_hour >= 15 and clock.hour < 12:
        clock = time(clock.hour + 12, clock.minute)  # "ce soir à 8h": 20:00
    chosen = day if day is not None else local_now.date()
    at = datetime.combine(chosen, clock, tz)
    at = datetime.fromtimestamp(at.timestamp(), tz)  # a skipped hour moves on, as in schedules
    if at.timestamp() <= now:
        if explicit_day:
            return None  # "aujourd'hui à 8h" at noon: the customer means something else
        at = datetime.fromtimestamp(
            datetime.combine(chosen + timedelta(days=1), clock, tz).timestamp(), tz
        )
    return Found(at, (*day_spans, *time_spans))


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word]


def _day(text: str, now: datetime) -> tuple[date | None, int | None, list[tuple[int, int]], bool]:
    """The day named (None when none or several), the hour its words imply, where, and whether
    a day was named at all."""
    days: list[tuple[date, int | None]] = []
    spans: list[tuple[int, int]] = []
    today = now.date()
    for match in _DAY_WORD_RE.finditer(text):
        offset, hour = _DAY_WORDS[match.group(0)]
        days.append((today + timedelta(days=offset), hour))
        spans.append(match.span())
    for match in _WEEKDAY_RE.finditer(text):
        ahead = (_WEEKDAYS[match.group(1)] - today.weekday() - 1) % 7 + 1
        part = _PARTS.get(match.group(2) or "")
        days.append((today + timedelta(days=ahead), part))
        spans.append(match.span())
    for match in _DATE_RE.finditer(text):
        day_text, month_text = match.group(1) or match.group(4), match.group(2) or match.group(3)
        found = _next_date(today, _MONTHS[month_text], int(day_text))
        if found is None:
            return None, None, [match.span()], True
        days.append((found, None))
        spans.append(match.span())
    if not days:
        return None, None, [], False
    if len({d for d, _ in days}) > 1:
        return None, None, spans, True
    hours = [h for _, h in days if h is not None]
    return days[0][0], (hours[0] if hours else None), spans, True


def _next_date(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            found = date(year, month, day)
        except ValueError:
            return None
        if found >= today:
            return found
    return None


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with ``spans`` blanked (same length): a date's "12" is not a time."""
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _clock(text: str) -> tuple[time | None, list[tuple[int, int]], bool]:
    """The time of day said, where, and whether what was said cannot be read for certain."""
    found: list[tuple[time, tuple[int, int]]] = []
    for match in _TIME_RE.finditer(text):
        hour, minute = 0, 0
        if match.group(1) is not None:
            hour, minute = int(match.group(1)), int(match.group(2) or 0)
            if not 1 <= hour <= 12:
                return None, [], True
            hour = hour % 12 + (12 if match.group(3) == "pm" else 0)
        elif match.group(4) is not None:
            hour = int(match.group(4))
        elif match.group(5) is not None:
            if ":" in match.group(0) and match.group(6) is None:
                continue  # "note: 3" is not a time
            hour, minute = int(match.group(5)), int(match.group(6) or 0)
            if match.group(7) in ("soir", "evening") and hour < 12:
                hour += 12
        else:
            hour = 12 if match.group(8) in ("midi", "noon") else 0
        if hour > 23 or minute > 59:
            return None, [], True
        found.append((time(hour, minute), match.span()))
    if not found:
        return None, [], False
    if len({t for t, _ in found}) > 1:
        return None, [], True
    return found[0][0], [span for _, span in found], False


_REMINDER_RE = re.compile(
    r"^\s*(?:(?:est-ce que tu peux|tu peux|peux-tu|pouvez-vous|can you|could you|please)\s+)?"
    r"(?:rappelle[sz]?[- ]moi|rappelez[- ]moi|remind me)\b[\s,:]*",
    re.IGNORECASE,
)
_WHAT_RE = re.compile(r"^(?:de |d'|d’|que |qu'|qu’|to |that |about |of )", re.IGNORECASE)


def reminder_request(text: str) -> tuple[str, str] | None:
    """A message asking for a reminder ("rappelle-moi demain à 9h de payer", "remind me on
    Friday to pay"): when (the phrase as said, or the whole request when none is read) and what;
    None for any other message."""
    match = _REMINDER_RE.match(text)
    if match is None:
        return None
    request = text[match.end() :].strip()
    # Spans do not depend on the clock: any instant and zone find the same phrase.
    found = find(request, 0.0, "UTC")
    if found is None:
        return request, _WHAT_RE.sub("", request).strip(" .!?") or request
    said = " ".join(request[start:end].strip() for start, end in sorted(found.spans))
    what = _WHAT_RE.sub("", found.rest(request)).strip(" .!?")
    return said, what or request
