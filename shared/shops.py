"""Shops: loading one (cached per warm instance) and changing its settings.

A shop is one document, ``shops/{id}`` in its own scope. The catalogue importer creates it
(``create_shop``) and bumps its ``catalog_version`` (``shared/catalog/importer.py``); everything
else reads it through ``Shops`` and changes it through ``update_shop``. As each shop lives in its
own scope, ``create_shop`` also lists it in the platform scope's index (``shops/{id}`` there),
which ``all_shop_ids`` reads for the tasks that visit every shop. Every change of settings
(``shop set``, an import's ``--settings``, a new shop) goes through ``apply_settings``, which
checks it whole.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidKeyError,
    NotFoundError,
    UnknownShopError,
)
from shared.models import Shop, mutate
from shared.schedules import PLATFORM
from shared.store import Store
from shared.store.base import check_shop

SHOPS = "shops"  # a shop's own document, in its scope; in the platform scope, the index
_INDEX_PAGE = 500
CACHE_SECONDS = 60.0  # a new catalogue version reaches a warm instance within a minute
# Not settings: the id names the shop, imports count the catalogue's versions.
_MANAGED = frozenset({"id", "catalog_version"})
# What `shop set` and an import's --settings take, in the model's order.
SETTINGS = tuple(key for key in Shop.model_fields if key not in _MANAGED)


def load_shop(store: Store, shop_id: str) -> Shop:
    """The stored shop; UnknownShopError if there is none (or ``shop_id`` cannot be one)."""
    doc = store.get(shop_id, SHOPS, shop_id) if _valid_shop_id(shop_id) else None
    if doc is None:
        raise UnknownShopError(f"unknown shop {shop_id!r}")
    return Shop.from_doc(doc)


class Shops:
    """The shops a warm instance has read, each kept CACHE_SECONDS."""

    def __init__(
        self, store: Store, default_shop: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.default_shop = default_shop
        self.clock = clock
        self._cached: dict[str, tuple[float, Shop]] = {}
        self._lock = threading.Lock()

    def get(self, shop_id: str | None) -> Shop:
        """The shop ``shop_id`` (DEFAULT_SHOP when None)."""
        shop_id = shop_id or self.default_shop
        now = self.clock()
        cached = self._cached.get(shop_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        shop = load_shop(self.store, shop_id)
        with self._lock:
            self._cached[shop_id] = (now, shop)
        return shop

    def invalidate(self, shop_id: str) -> None:
        """Forget ``shop_id``: its settings just changed here, so this instance's next turn
        reads them (other warm instances within CACHE_SECONDS)."""
        with self._lock:
            self._cached.pop(shop_id, None)


def update_shop(store: Store, shop_id: str, changes: Mapping[str, Any]) -> Shop:
    """Change the settings ``changes`` names, checked by ``apply_settings``, with a conditional
    write (re-applied if the shop changed meanwhile, an import bumping its catalogue version).
    Raises InvalidInputError naming the field for a key that is not a setting or an invalid
    value (nothing is written then), UnknownShopError for a shop that does not exist."""
    _check_keys(changes)
    if not _valid_shop_id(shop_id):
        raise UnknownShopError(f"unknown shop {shop_id!r}")
    try:
        return mutate(store, shop_id, SHOPS, shop_id, Shop, lambda s: apply_settings(s, changes))[0]
    except NotFoundError as exc:
        raise UnknownShopError(f"unknown shop {shop_id!r}") from exc


def new_shop(shop_id: str, settings: Mapping[str, Any]) -> Shop:
    """A shop not stored yet, named after its id unless ``settings`` names it."""
    if shop_id == PLATFORM:
        raise InvalidInputError(f"{PLATFORM!r} is reserved (cross-shop schedules): pick another id")
    return apply_settings(Shop(id=shop_id, name=shop_id), settings)


def create_shop(store: Store, shop: Shop) -> bool:
    """Store a new shop and list it in the index; whether it was created (False: it existed,
    and is kept as it is). The index entry is written first, create-or-keep: a shop is never
    stored unlisted, and an entry whose shop is missing (a crash in between) is skipped by the
    tasks that read it."""
    index_shop(store, shop.id)
    try:
        store.create(shop.id, SHOPS, shop.id, shop.to_doc())
    except AlreadyExistsError:  # a concurrent import created it
        return False
    return True


def index_shop(store: Store, shop_id: str) -> None:
    """List ``shop_id`` in the index, unless it is there already."""
    with contextlib.suppress(AlreadyExistsError):
        store.create(PLATFORM, SHOPS, shop_id, {"created_at": time.time()})


def all_shop_ids(store: Store, default_shop: str) -> list[str]:
    """Every shop of the index, and ``default_shop``: a deployment older than the index has
    its shop unlisted, yet it must not be forgotten."""
    ids = {default_shop}
    cursor: str | None = None
    while True:
        page = store.query(PLATFORM, SHOPS, limit=_INDEX_PAGE, cursor=cursor)
        ids.update(doc.id for doc in page.items)
        if page.cursor is None:
            return sorted(ids)
        cursor = page.cursor


def apply_settings(shop: Shop, changes: Mapping[str, Any]) -> Shop:
    """``shop`` with ``changes``, checked as the Shop model checks them and, for the keys
    changed, against what the model cannot afford to check on every load. Raises
    InvalidInputError "key: why" for the first bad key or value."""
    _check_keys(changes)
    try:
        changed = Shop.model_validate({**shop.model_dump(), **changes})
    except ValidationError as exc:
        error = exc.errors()[0]
        # pydantic says where in a dict's keys the error is with a "[key]" part: not a field.
        field = ".".join(str(part) for part in error["loc"] if part != "[key]")
        raise InvalidInputError(f"{field}: {error['msg'].removeprefix('Value error, ')}") from None
    for key in changes:
        check = _CHECKS.get(key)
        problem = check(getattr(changed, key)) if check else None
        if problem:
            raise InvalidInputError(f"{key}: {problem}")
    return changed


def settings_from_text(assignments: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words as changes: a list setting takes comma-separated values
    (``languages=fr,en``), a structured one JSON (``business_hours={"mon": ["09:00-18:00"]}``,
    ``plans=[{"id": "month", ...}]``),
    ``key=`` clears an optional setting. Raises InvalidInputError naming the key."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"{assignment!r}: expected key=value")
        _check_keys({key: None})
        if key in changes:
            raise InvalidInputError(f"{key}: given twice")
        changes[key] = _value(key, text.strip())
    return changes


def _value(key: str, text: str) -> Any:
    field = Shop.model_fields[key]
    if not text:
        default = field.get_default(call_default_factory=True)
        if field.is_required() or default not in (None, "", []):
            raise InvalidInputError(f"{key}: cannot be cleared, give a value")
        return default
    kinds = [a for a in get_args(field.annotation) if a is not type(None)]
    if get_origin(field.annotation) in (Union, types.UnionType) and len(kinds) == 1:
        annotation = kinds[0]  # Optional[X]: X
    else:
        annotation = field.annotation
    item = get_args(annotation)[0] if get_origin(annotation) is list else None
    if item is not None and not _is_model(item):
        return [part.strip() for part in text.split(",") if part.strip()]
    structured = get_origin(annotation) is dict or item is not None or _is_model(annotation)
    if not structured:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{key}: expected JSON ({exc})") from None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _check_keys(changes: Mapping[str, Any]) -> None:
    for key in changes:
        if key not in SETTINGS:
            raise InvalidInputError(f"{key}: not a shop setting")


def _phone_region_problem(region: str) -> str | None:
    import phonenumbers  # lazy: its metadata tables cost a cold start

    if region in phonenumbers.SUPPORTED_REGIONS:
        return None
    return f"{region!r} is not a region with phone numbers (e.g. SN, CI, FR)"


def _persona_problem(persona: str) -> str | None:
    from shared.prompts import personas

    known = personas()
    return None if persona in known else f"{persona!r} is not a persona ({', '.join(known)})"


def _llm_provider_problem(provider: str | None) -> str | None:
    from shared.settings import LLMProvider

    providers = get_args(LLMProvider)
    if provider is None or provider in providers:
        return None
    return f"{provider!r} is not a provider ({', '.join(providers)})"


def _payment_provider_problem(provider: str) -> str | None:
    from shared.payments import PROVIDERS

    if provider in PROVIDERS:
        return None
    return f"{provider!r} is not a payment provider ({', '.join(PROVIDERS)})"


# Checks too costly for every load of a shop, made when the setting changes.
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "phone_region": _phone_region_problem,
    "persona": _persona_problem,
    "llm_provider": _llm_provider_problem,
    "payment_provider": _payment_provider_problem,
}


def _valid_shop_id(shop_id: str) -> bool:
    try:
        check_shop(shop_id)
    except InvalidKeyError:
        return False
    return shop_id != PLATFORM  # the scope of cross-shop indexes, never a shop
