"""Shops: the per-instance cache and the checked, conditional settings update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.catalog.importer import import_catalog, import_faq, seed_demo
from shared.exceptions import InvalidInputError, UnknownShopError
from shared.schedules import PLATFORM
from shared.shops import (
    CACHE_SECONDS,
    Shops,
    all_shop_ids,
    create_shop,
    load_shop,
    new_shop,
    update_shop,
)
from shared.store import Doc
from shared.store.sqlite import SQLiteStore

SHOP = "boutique"
DATA = Path(__file__).parent / "data"
CATALOG = DATA / "catalog_shopify.csv"
FAQ = DATA / "catalog_faq.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ImportDuringUpdate(SQLiteStore):
    """A real store on which a catalogue import bumps the shop's version just before the first
    conditional write lands: the write finds the shop changed."""

    raced = False

    def update(self, *args: Any, **kwargs: Any) -> Doc:
        if not self.raced:
            self.raced = True
            self.increment(SHOP, "shops", SHOP, "catalog_version")
        return super().update(*args, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "shops.db")
    store.put(SHOP, "shops", SHOP, {"name": "Boutique", "catalog_version": 3})
    return store


def test_an_update_is_stored_and_returned(store: SQLiteStore) -> None:
    updated = update_shop(store, SHOP, {"offer": "livraison offerte", "timezone": "Europe/Paris"})
    assert (updated.offer, updated.timezone) == ("livraison offerte", "Europe/Paris")
    assert load_shop(store, SHOP) == updated
    assert updated.catalog_version == 3 and updated.name == "Boutique"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "blue"}, "colour"),  # not a setting
        ({"catalog_version": 9}, "catalog_version"),  # counted by imports
        ({"id": "other"}, "id"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"business_hours": {"mon": ["9h-18h"]}}, "business_hours"),
        ({"languages": "fr"}, "languages"),
        ({"whatsapp_template": {"name": 3}}, "whatsapp_template.name"),
        ({"payment_provider": "paypal"}, "payment_provider"),
    ],
)
def test_an_invalid_change_names_its_field_and_changes_nothing(
    store: SQLiteStore, changes: dict[str, Any], field: str
) -> None:
    before = store.get(SHOP, "shops", SHOP)
    with pytest.raises(InvalidInputError, match=rf"^{field}: "):
        update_shop(store, SHOP, changes)
    assert store.get(SHOP, "shops", SHOP) == before


def test_an_unknown_shop_cannot_be_updated(store: SQLiteStore) -> None:
    with pytest.raises(UnknownShopError):
        update_shop(store, "nowhere", {"offer": "x"})
    with pytest.raises(UnknownShopError):
        update_shop(store, "../bad id", {"offer": "x"})


def test_an_update_racing_an_import_keeps_the_new_catalogue_version(tmp_path: Path) -> None:
    store = ImportDuringUpdate(tmp_path / "race.db")
    store.put(SHOP, "shops", SHOP, {"name": "Boutique", "catalog_version": 3})
    updated = update_shop(store, SHOP, {"offer": "-10 % ce week-end"})
    assert store.raced
    assert (updated.offer, updated.catalog_version) == ("-10 % ce week-end", 4)
    assert load_shop(store, SHOP) == updated


def test_the_cache_keeps_a_shop_a_minute(store: SQLiteStore) -> None:
    clock = Clock()
    shops = Shops(store, SHOP, clock=clock)
    assert shops.get(None).offer == ""  # None: the default shop
    update_shop(store, SHOP, {"offer": "nouveau"})
    assert shops.get(SHOP).offer == ""
    clock.now += CACHE_SECONDS
    assert shops.get(SHOP).offer == "nouveau"
    with pytest.raises(UnknownShopError):
        shops.get("nowhere")


def test_every_way_a_shop_is_created_lists_it_for_the_tasks(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "index.db")
    store.put("ancienne", "shops", "ancienne", {"name": "Stored before the index"})
    assert all_shop_ids(store, "ancienne") == ["ancienne"]  # DEFAULT_SHOP is never forgotten
    assert create_shop(store, new_shop("boutique", {"name": "Boutique"})) is True
    import_catalog(store, "importee", CATALOG, shop_name="Importée", currency="XOF")
    import_faq(store, "faq-seule", FAQ)
    seed_demo(store)
    import_catalog(store, "ancienne", CATALOG, currency="XOF")  # listed on its next import
    assert all_shop_ids(store, "ailleurs") == [
        "ailleurs", "ancienne", "boutique", "demo", "faq-seule", "importee",
    ]  # fmt: skip


def test_creating_a_shop_again_keeps_it_and_its_index_entry(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "index.db")
    assert create_shop(store, new_shop("boutique", {"name": "Boutique"})) is True
    listed = store.get(PLATFORM, "shops", "boutique")
    assert create_shop(store, new_shop("boutique", {"name": "Autre"})) is False
    assert load_shop(store, "boutique").name == "Boutique"
    assert store.get(PLATFORM, "shops", "boutique") == listed
