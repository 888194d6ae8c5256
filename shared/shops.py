"""Shops: loading one (cached per warm instance) and changing its settings.

A shop is one document, ``shops/{id}`` in its own scope. The catalogue importer creates it and
bumps its ``catalog_version`` (``shared/catalog/importer.py``); everything else reads it through
``Shops`` and changes it through ``update_shop``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.exceptions import InvalidInputError, InvalidKeyError, NotFoundError, UnknownShopError
from shared.models import Shop, mutate
from shared.store import Store
from shared.store.base import check_shop

SHOPS = "shops"
CACHE_SECONDS = 60.0  # a new catalogue version reaches a warm instance within a minute
# Not settings: the id names the shop, imports count the catalogue's versions.
_MANAGED = frozenset({"id", "catalog_version"})


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


def update_shop(store: Store, shop_id: str, changes: dict[str, Any]) -> Shop:
    """Change the settings ``changes`` names, checked as the Shop model checks them, with a
    conditional write (re-applied if the shop changed meanwhile, an import bumping its catalogue
    version). Raises InvalidInputError naming the field for a key that is not a setting or an
    invalid value, UnknownShopError for a shop that does not exist."""
    for key in changes:
        if key not in Shop.model_fields or key in _MANAGED:
            raise InvalidInputError(f"{key}: not a shop setting")

    def apply(shop: Shop) -> Shop:
        try:
            return Shop.model_validate({**shop.model_dump(), **changes})
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise InvalidInputError(f"{field}: {error['msg']}") from None

    if not _valid_shop_id(shop_id):
        raise UnknownShopError(f"unknown shop {shop_id!r}")
    try:
        return mutate(store, shop_id, SHOPS, shop_id, Shop, apply)[0]
    except NotFoundError as exc:
        raise UnknownShopError(f"unknown shop {shop_id!r}") from exc


def _valid_shop_id(shop_id: str) -> bool:
    try:
        check_shop(shop_id)
    except InvalidKeyError:
        return False
    return True
