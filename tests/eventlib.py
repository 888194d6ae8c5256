"""Recorded inbound payloads: ``tests/events/*.json``, loaded through this one helper.

WhatsApp, Telegram, Messenger and Instagram events are replayed as if delivered an hour ago:
their provider times (``timestamp``, ``date``, ``edit_date``; Messenger's ``time`` and
``watermark``, in milliseconds) move forward by one amount, keeping their gaps, since
the webhooks ignore an event older than their week-long deduplication window.
"""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"
RECORDED_AT = 1760000000  # about when the channel events were recorded
_SHIFT = int(time.time()) - 3600 - RECORDED_AT
_TIME_FIELDS = frozenset({"timestamp", "date", "edit_date", "time", "watermark"})


def delivered_at(recorded: int) -> int:
    """The time a recorded channel event's ``recorded`` time becomes when replayed."""
    return recorded + _SHIFT


@cache
def _read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def load_event(name: str) -> dict[str, Any]:
    """A fresh deep copy of the recorded event ``name`` (file name without ``.json``)."""
    event = copy.deepcopy(_read(name))
    if name.startswith(("whatsapp_", "telegram_")):
        _retime(event)
    elif name.startswith(("messenger_", "instagram_")):  # Meta's Messenger times: milliseconds
        _retime(event, 1000)
    return event


def _retime(value: Any, unit: int = 1) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in list(items):
        if key in _TIME_FIELDS and isinstance(child, int | str) and str(child).isdigit():
            value[key] = type(child)(int(child) + _SHIFT * unit)
        elif isinstance(child, dict | list):
            _retime(child, unit)
