"""Campaign files: what a description becomes (recipe defaults, overrides, local times), what is
refused and how it is said, and the schedule entry a campaign keeps, through ``definitions`` and
through ``python -m shared campaign create|list``."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared import schedules
from shared.app import App
from shared.campaigns import definitions
from shared.campaigns.definitions import load_campaign
from shared.cli import main
from shared.exceptions import InvalidInputError
from tests.campaigns.conftest import SHOP, TEMPLATE

BRIEF = {"brief": "Bonjour {{ customer.first_name }}"}


def create(
    tmp_path: Path, description: dict[str, Any], *extra: str, name: str = "campaign.json"
) -> int:
    path = tmp_path / name
    path.write_text(json.dumps(description), encoding="utf-8")
    return main(["campaign", "create", "--shop", SHOP, "--file", str(path), *extra])


def schedule_entry(app: App, campaign_id: str) -> schedules.ScheduleEntry | None:
    doc = app.store.get(
        schedules.PLATFORM,
        schedules.ENTRIES,
        schedules.entry_id(SHOP, definitions.SCHEDULE_KIND, campaign_id),
    )
    return None if doc is None else schedules.ScheduleEntry.from_doc(doc)


def test_a_recipe_with_options_and_overrides_merged_key_by_key(app: App) -> None:
    shop = app.shops.get(SHOP)
    description = {
        "id": "relance",
        "recipe": "abandoned_order",
        "options": {"hours": 5},
        # Overrides one key of the recipe's segment and message each: the others stay.
        "segment": {"order_status": ["confirmed"], "channels": ["whatsapp"]},
        "message": {"template": TEMPLATE},
        "schedule": {"max_per_run": 50},
    }

    built = definitions.build(shop, description, 1000.0)

    assert built.recipe == "abandoned_order"
    assert built.name == "relance"  # the id, when no name is given
    assert built.segment.order_status == ["confirmed"]
    assert built.segment.order_idle_hours == 5.0  # from the option
    assert built.segment.channels == ["whatsapp"]
    assert built.repeat == "order"  # the recipe's
    assert "{{ order.product }}" in built.message.brief  # the recipe's brief kept
    assert built.message.template is not None and built.message.template.name == TEMPLATE["name"]
    assert built.schedule.max_per_run == 50
    assert built.schedule.quiet_hours is not None  # the default quiet hours are kept
    assert (built.created_at, built.updated_at) == (1000.0, 1000.0)


def test_no_quiet_hours_is_kept_when_saved(app: App) -> None:
    shop = app.shops.get(SHOP)
    description = {"id": "nuit", "message": BRIEF, "schedule": {"quiet_hours": None}}
    definitions.save(app.store, shop, definitions.build(shop, description, 1.0), 1.0, replace=False)

    assert load_campaign(app.store, SHOP, "nuit").schedule.quiet_hours is None  # not the default


def test_local_times_are_read_in_the_shops_timezone(app: App) -> None:
    shop = app.shops.get(SHOP).model_copy(update={"timezone": "Europe/Paris"})
    description = {
        "id": "soldes",
        "message": BRIEF,
        "schedule": {"at": "2030-07-01T09:30"},
        "segment": {"created_after": "2030-01-15", "created_before": "2030-06-01T00:00:00Z"},
    }

    built = definitions.build(shop, description, time.time())

    paris = ZoneInfo("Europe/Paris")
    assert built.schedule.at == datetime(2030, 7, 1, 9, 30, tzinfo=paris).timestamp()
    assert built.schedule.at == datetime(2030, 7, 1, 7, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert built.segment.created_after == datetime(2030, 1, 15, tzinfo=paris).timestamp()
    # An explicit offset wins over the shop's timezone.
    assert built.segment.created_before == datetime(2030, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp()


@pytest.mark.parametrize(
    ("description", "named"),
    [
        ({"id": "x", "recipe": "flash_sale", "message": BRIEF}, "unknown recipe 'flash_sale'"),
        ({"id": "x", "message": BRIEF, "schedule": {"cron": "61 * * * *"}}, "schedule:"),
        ({"id": "x", "message": BRIEF, "schedule": {"cron": "every day"}}, "schedule:"),
        (
            {"id": "x", "message": BRIEF, "schedule": {"cron": "0 9 * * *", "at": 2e9}},
            "schedule: Value error, give `at` or `cron`, not both",
        ),
        (
            {"id": "x", "message": {"template": {**TEMPLATE, "variables": ["customer.email"]}}},
            "message.template.variables: Value error, 'customer.email' is not a field",
        ),
        (
            {"id": "x", "message": {"brief": "Bonjour {% if customer.name %}"}},
            "the brief is not a valid template",
        ),
        ({"id": "x"}, "message: Field required"),
        ({"id": "x", "message": {"brief": "  "}}, "message: Value error, give a brief"),
        ({"id": "X Y", "message": BRIEF}, "id: String should match pattern"),
        (
            {"id": "x", "message": BRIEF, "schedule": {"at": "tomorrow"}},
            "schedule.at: 'tomorrow' is not an ISO date or time",
        ),
    ],
)
def test_a_bad_campaign_file_exits_2_naming_the_field(
    app: App,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    description: dict[str, Any],
    named: str,
) -> None:
    assert create(tmp_path, description) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err
    assert definitions.list_campaigns(app.store, SHOP) == []  # nothing saved


def test_a_brief_cannot_reach_python_internals(app: App, tmp_path: Path) -> None:
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    # Refused when the campaign is made (the sandbox's error), never rendered for a customer;
    # tests/campaigns/test_render.py renders such briefs.
    with pytest.raises(InvalidInputError, match="unsafe"):
        definitions.build(app.shops.get(SHOP), {"id": "x", "message": {"brief": escape}}, 0.0)
    assert create(tmp_path, {"id": "x", "message": {"brief": escape}}) == 2
    assert definitions.list_campaigns(app.store, SHOP) == []


def test_a_duplicate_id_needs_replace_which_keeps_created_at(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(tmp_path, {"id": "promo", "name": "First", "message": BRIEF}) == 0
    first = load_campaign(app.store, SHOP, "promo")
    capsys.readouterr()

    assert create(tmp_path, {"id": "promo", "name": "Second", "message": BRIEF}) == 2
    assert "campaign 'promo' exists (create it with --replace" in capsys.readouterr().err
    assert load_campaign(app.store, SHOP, "promo").name == "First"

    assert create(tmp_path, {"id": "promo", "name": "Second", "message": BRIEF}, "--replace") == 0
    replaced = load_campaign(app.store, SHOP, "promo")
    assert replaced.name == "Second"
    assert replaced.created_at == first.created_at
    assert replaced.updated_at >= first.updated_at


def test_a_cron_campaign_has_its_schedule_entry_and_loses_it_without(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weekly = {"id": "hebdo", "message": BRIEF, "schedule": {"cron": "0 9 * * 1"}}
    assert create(tmp_path, weekly) == 0
    assert "campaign hebdo saved (cron 0 9 * * 1)" in capsys.readouterr().out
    entry = schedule_entry(app, "hebdo")
    assert entry is not None
    assert entry.spec.cron == "0 9 * * 1" and entry.spec.timezone == "Africa/Dakar"
    assert entry.next_fire_at is not None and entry.next_fire_at > time.time()
    assert time.gmtime(entry.next_fire_at)[3:7] == (9, 0, 0, 0)  # 09:00 Monday, Dakar is UTC

    assert create(tmp_path, {"id": "hebdo", "message": BRIEF}, "--replace") == 0
    assert "(by hand)" in capsys.readouterr().out
    assert schedule_entry(app, "hebdo") is None

    # A disabled campaign keeps no entry either.
    assert create(tmp_path, {**weekly, "enabled": False}, "--replace") == 0
    assert schedule_entry(app, "hebdo") is None


def test_campaign_list_shows_each_campaign(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create(tmp_path, {"id": "relance", "recipe": "abandoned_order", "message": {}}, name="a.json")
    create(
        tmp_path,
        {
            "id": "soldes",
            "name": "Soldes d'été",
            "message": BRIEF,
            "enabled": False,
            "schedule": {"at": "2030-07-01T09:30"},
        },
        name="b.json",
    )
    capsys.readouterr()

    assert main(["campaign", "list", "--shop", SHOP]) == 0

    lines = sorted(capsys.readouterr().out.splitlines())
    assert lines == [
        "relance\tabandoned_order\tenabled\tby hand\trelance",
        "soldes\t-\tdisabled\tonce at 2030-07-01 09:30 UTC\tSoldes d'été",
    ]
