"""Recorded inbound payloads: ``tests/events/*.json``, loaded through this one helper."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def load_event(name: str) -> dict[str, Any]:
    """A fresh deep copy of the recorded event ``name`` (file name without ``.json``)."""
    return copy.deepcopy(_read(name))
