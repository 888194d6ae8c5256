"""The public conversation set: scripted multi-turn dialogues with the facts a right answer holds.

One JSON file per category (``orders.json``, ``faq.json``...) holds ``{"category", "about",
"dialogues": [...]}``. A dialogue names its shop (``demo``: `python -m shared seed-demo`;
``glow``: the English cosmetics shop of ``tests/data/glow_cosmetics.csv``), its channel (``web``
or ``whatsapp``), the customer's language, and its turns; each turn says what the customer
writes and what the reply must show:

- ``products``: titles the reply names (all), ``products_any``: at least one of them,
  ``prices``: catalogue amounts the reply states (``"27500"``, ``"5.50"``);
- ``faq``: the id of the FAQ entry whose answer the reply gives, or null for "no FAQ answer";
- ``lang``: the reply's language when it differs from the dialogue's;
- ``says`` / ``not_says``: words the reply must hold / must not hold (whole words, case kept);
- ``search``: what a model would search for at this turn (the stub model only).

At the dialogue level, ``lead`` is the order the conversation must end with (``name``,
``phone`` in E.164, ``address``, ``product`` title, ``variant`` title or null, ``quantity``:
exact values), or null when no order may be recorded (a size that does not exist); ``refused``
is the order the customer tries to place in that case (the stub model submits it and the tool
must refuse it); ``handoff`` whether the conversation ends with a person from the shop;
``whatsapp_from`` the customer's WhatsApp number on that channel.

The data is loaded here, with no dependency on ``shared``: the test and ``bench/conversations.py``
run it through ``tests/conversations/runner.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SET_DIR = Path(__file__).resolve().parent
FLOORS = SET_DIR / "floors.json"
CATEGORY_FILES = (
    "orders",
    "faq",
    "products",
    "language",
    "handoff",
    "offers",
    "variants",
    "corrections",
    "greetings",
)
LEAD_FIELDS = ("name", "phone", "address", "product", "variant", "quantity")
_UNSET: Any = object()  # a key absent from the data (not scored), unlike an explicit null


@dataclass(frozen=True)
class Turn:
    say: str
    products: tuple[str, ...] = ()
    products_any: tuple[str, ...] = ()
    prices: tuple[str, ...] = ()
    faq: str | None = _UNSET  # _UNSET: not scored; None: the reply gives no FAQ answer
    lang: str | None = None
    says: tuple[str, ...] = ()
    not_says: tuple[str, ...] = ()
    search: str | None = None

    @property
    def scores_faq(self) -> bool:
        return self.faq is not _UNSET

    @property
    def scores_product(self) -> bool:
        return bool(self.products or self.products_any or self.prices)


@dataclass(frozen=True)
class Dialogue:
    id: str
    category: str
    shop: Literal["demo", "glow"]
    channel: Literal["web", "whatsapp"]
    lang: str
    turns: tuple[Turn, ...]
    lead: dict[str, Any] | None = _UNSET  # _UNSET: not scored; None: no order may be recorded
    refused: dict[str, Any] | None = None
    handoff: bool | None = None
    whatsapp_from: str | None = None
    note: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def scores_lead(self) -> bool:
        return self.lead is not _UNSET


def _turn(raw: dict[str, Any]) -> Turn:
    known = {f for f in Turn.__dataclass_fields__}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown turn keys {sorted(unknown)} in {raw.get('say')!r}")
    tuples = {"products", "products_any", "prices", "says", "not_says"}
    return Turn(**{k: tuple(v) if k in tuples else v for k, v in raw.items()})


def _dialogue(raw: dict[str, Any], category: str) -> Dialogue:
    raw = dict(raw)
    turns = tuple(_turn(t) for t in raw.pop("turns"))
    lead = raw.pop("lead", _UNSET)
    if isinstance(lead, dict) and set(lead) != set(LEAD_FIELDS):
        raise ValueError(f"{raw['id']}: a lead has exactly the fields {LEAD_FIELDS}")
    raw["tags"] = tuple(raw.get("tags", ()))
    return Dialogue(category=category, turns=turns, lead=lead, **raw)


def load_set(directory: Path = SET_DIR) -> list[Dialogue]:
    """Every dialogue of the set, category by category, in file order; ids are unique."""
    dialogues: list[Dialogue] = []
    for name in CATEGORY_FILES:
        data = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        if data["category"] != name:
            raise ValueError(f"{name}.json says it is {data['category']!r}")
        dialogues.extend(_dialogue(d, name) for d in data["dialogues"])
    ids = [d.id for d in dialogues]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate dialogue ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return dialogues


def load_floors(path: Path = FLOORS) -> dict[str, dict[str, dict[str, float]]]:
    """{mode: {category or "all": {metric: lowest accepted percentage}}}."""
    floors: dict[str, dict[str, dict[str, float]]] = json.loads(path.read_text(encoding="utf-8"))
    return floors
