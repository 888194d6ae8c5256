"""``shared.when``: every phrase the reminders understand, read on a fixed clock in the shop's
timezone, across a daylight-saving change."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.when import parse, reminder_request

DAKAR, PARIS = "Africa/Dakar", "Europe/Paris"
# Wednesday 5 November 2025, 10:00 in Dakar (UTC+0, no DST).
DAKAR_NOW = datetime(2025, 11, 5, 10, 0, tzinfo=ZoneInfo(DAKAR)).timestamp()
# Friday 28 March 2025, 10:00 in Paris (CET, UTC+1): clocks go to CEST (UTC+2) on Sunday 30.
PARIS_NOW = datetime(2025, 3, 28, 10, 0, tzinfo=ZoneInfo(PARIS)).timestamp()

CASES = [
    ("demain à 9h", (2025, 11, 6, 9, 0), (2025, 3, 29, 9, 0)),
    ("dans 2 heures", (2025, 11, 5, 12, 0), (2025, 3, 28, 12, 0)),
    ("dans deux minutes", (2025, 11, 5, 10, 2), (2025, 3, 28, 10, 2)),
    ("ce soir", (2025, 11, 5, 19, 0), (2025, 3, 28, 19, 0)),
    ("vendredi", (2025, 11, 7, 9, 0), (2025, 4, 4, 9, 0)),  # on a Friday: the next one
    ("lundi prochain à 14h30", (2025, 11, 10, 14, 30), (2025, 3, 31, 14, 30)),
    ("le 12 décembre à 10h", (2025, 12, 12, 10, 0), (2025, 12, 12, 10, 0)),
    ("tomorrow at 9am", (2025, 11, 6, 9, 0), (2025, 3, 29, 9, 0)),
    ("in 2 minutes", (2025, 11, 5, 10, 2), (2025, 3, 28, 10, 2)),
    ("on Friday", (2025, 11, 7, 9, 0), (2025, 4, 4, 9, 0)),
    ("next Monday at 2:30pm", (2025, 11, 10, 14, 30), (2025, 3, 31, 14, 30)),
    ("at 18:00", (2025, 11, 5, 18, 0), (2025, 3, 28, 18, 0)),
]


@pytest.mark.parametrize(("phrase", "dakar", "paris"), CASES)
def test_each_phrase_is_read_on_the_shops_wall_clock(
    phrase: str, dakar: tuple[int, ...], paris: tuple[int, ...]
) -> None:
    at = parse(phrase, DAKAR_NOW, DAKAR)
    assert at is not None and at.tzinfo is not None
    assert at == datetime(*dakar, tzinfo=ZoneInfo(DAKAR))
    at = parse(phrase, PARIS_NOW, PARIS)
    assert at == datetime(*paris, tzinfo=ZoneInfo(PARIS))


def test_a_wall_clock_time_after_the_change_keeps_its_local_hour() -> None:
    # Saturday 29 March 2025, 22:00 CET: "demain à 9h" is 9:00 CEST, 10 hours later, not 11.
    saturday = datetime(2025, 3, 29, 22, 0, tzinfo=ZoneInfo(PARIS)).timestamp()
    at = parse("demain à 9h", saturday, PARIS)
    assert at is not None
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert at.timestamp() - saturday == 10 * 3600


def test_a_delay_across_the_change_is_real_time() -> None:
    # Sunday 30 March 2025, 01:30 CET: two hours later the clock reads 04:30 CEST.
    night = datetime(2025, 3, 30, 1, 30, tzinfo=ZoneInfo(PARIS)).timestamp()
    at = parse("dans 2 heures", night, PARIS)
    assert at is not None and (at.hour, at.minute) == (4, 30)
    assert at.timestamp() - night == 2 * 3600


def test_a_time_already_past_today_is_tomorrow() -> None:
    assert parse("at 9:00", DAKAR_NOW, DAKAR) == datetime(2025, 11, 6, 9, 0, tzinfo=ZoneInfo(DAKAR))


@pytest.mark.parametrize(
    "phrase",
    ["", "bientôt", "mardi ou vendredi", "à 25h", "aujourd'hui à 8h", "le 31 février", "at 13pm"],
)
def test_what_cannot_be_read_for_certain_gives_none(phrase: str) -> None:
    assert parse(phrase, DAKAR_NOW, DAKAR) is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("rappelle-moi dans 2 minutes de payer", ("dans 2 minutes", "payer")),
        ("Rappelle-moi demain à 9h de payer", ("demain à 9h", "payer")),
        ("remind me on Friday to pay", ("on Friday", "pay")),
        ("remind me to call the shop next Monday at 2:30pm", ("next Monday at 2:30pm",
                                                              "call the shop")),
        ("bonjour", None),
    ],
)
def test_a_reminder_request_splits_into_when_and_what(
    message: str, expected: tuple[str, str] | None
) -> None:
    assert reminder_request(message) == expected
