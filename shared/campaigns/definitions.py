"""Campaigns as the shop keeps them (``campaigns/{id}``): created from a JSON description,
listed, loaded; each scheduled one has its entry in the schedule (``shared/schedules.py``).

A description names a recipe (``recipes.py``) or not; its own keys win over the recipe's, a
nested object key by key. Times may be written as ISO dates or local times (the shop's timezone)
where epoch seconds are stored: ``schedule.at``, ``segment.created_after``/``created_before``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared import schedules
from shared.campaigns.models import CAMPAIGN_ID, Campaign
from shared.campaigns.recipes import recipe_defaults
from shared.campaigns.render import check_brief
from shared.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from shared.models import Shop, mutate
from shared.store import Store

CAMPAIGNS = "campaigns"
SCHEDULE_KIND = "campaign"


def build(shop: Shop, description: Mapping[str, Any], now: float) -> Campaign:
    """The campaign ``description`` says, checked whole (InvalidInputError naming the field)."""
    if not isinstance(description, Mapping):
        raise InvalidInputError("a campaign is a JSON object")
    data: dict[str, Any] = {}
    recipe = description.get("recipe")
    if recipe is not None:
        options = description.get("options") or {}
        if not isinstance(options, Mapping):
            raise InvalidInputError("options: expected an object")
        data = recipe_defaults(str(recipe), options)
    data = _merged(data, description)
    data.pop("options", None)
    data.setdefault("name", data.get("id", ""))
    _local_times(data, shop.timezone)
    try:
        campaign = Campaign.model_validate({**data, "created_at": now, "updated_at": now})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'campaign'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidInputError("; ".join(problems[:5])) from None
    if campaign.message.brief.strip():
        check_brief(campaign.message.brief)
    if campaign.schedule.cron is not None:
        _spec(campaign, shop)  # a bad expression is refused now, not at the first tick
    return campaign


def save(store: Store, shop: Shop, campaign: Campaign, now: float, *, replace: bool) -> Campaign:
    """Store ``campaign`` (create-only unless ``replace``: AlreadyExistsError naming it) and put
    it on the schedule."""
    if replace:
        existing = store.get(shop.id, CAMPAIGNS, campaign.id)
        if existing is not None:
            campaign = campaign.model_copy(update={"created_at": existing.data["created_at"]})
        store.put(shop.id, CAMPAIGNS, campaign.id, campaign.to_doc())
    else:
        try:
            store.create(shop.id, CAMPAIGNS, campaign.id, campaign.to_doc())
        except AlreadyExistsError:
            raise AlreadyExistsError(f"campaign {campaign.id!r} exists") from None
    spec = _spec(campaign, shop)
    if spec is not None and campaign.enabled:
        schedules.save_entry(store, shop.id, SCHEDULE_KIND, campaign.id, spec, now)
    else:
        schedules.remove_entry(store, shop.id, SCHEDULE_KIND, campaign.id)
    return campaign


def set_enabled(store: Store, shop: Shop, campaign_id: str, enabled: bool, now: float) -> Campaign:
    """Stop a campaign (its schedule, and the batches of its runs not sent yet) or start it
    again."""
    load_campaign(store, shop.id, campaign_id)  # NotFoundError naming it

    def switch(campaign: Campaign) -> Campaign:
        return campaign.model_copy(update={"enabled": enabled})

    campaign = mutate(store, shop.id, CAMPAIGNS, campaign_id, Campaign, switch)[0]
    spec = _spec(campaign, shop)
    if spec is not None and enabled:
        schedules.save_entry(store, shop.id, SCHEDULE_KIND, campaign.id, spec, now)
    elif not enabled:
        schedules.remove_entry(store, shop.id, SCHEDULE_KIND, campaign.id)
    return campaign


def load_campaign(store: Store, shop: str, campaign_id: str) -> Campaign:
    doc = store.get(shop, CAMPAIGNS, campaign_id) if _valid_id(campaign_id) else None
    if doc is None:
        raise NotFoundError(f"no campaign {campaign_id!r} in shop {shop!r}")
    return Campaign.from_doc(doc)


def list_campaigns(store: Store, shop: str) -> list[Campaign]:
    return [Campaign.from_doc(d) for d in store.scan(shop, CAMPAIGNS)]


def _spec(campaign: Campaign, shop: Shop) -> schedules.ScheduleSpec | None:
    schedule = campaign.schedule
    if schedule.at is None and schedule.cron is None:
        return None
    try:
        return schedules.ScheduleSpec(cron=schedule.cron, at=schedule.at, timezone=shop.timezone)
    except ValidationError as exc:
        raise InvalidInputError(f"schedule: {exc.errors()[0]['msg']}") from None


def _valid_id(campaign_id: str) -> bool:
    return re.fullmatch(CAMPAIGN_ID, campaign_id) is not None


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _local_times(data: dict[str, Any], timezone: str) -> None:
    """ISO strings where epoch seconds are stored, read in the shop's timezone."""
    places = (("schedule", "at"), ("segment", "created_after"), ("segment", "created_before"))
    for group, key in places:
        section = data.get(group)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            try:
                when = datetime.fromisoformat(section[key])
            except ValueError:
                raise InvalidInputError(
                    f"{group}.{key}: {section[key]!r} is not an ISO date or time"
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=ZoneInfo(timezone))
            section[key] = when.timestamp()
