"""Catalogue and FAQ import: the three product formats, FAQ files, writes and the demo shop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from shared.app import App
from shared.catalog.importer import (
    DEMO_DIR,
    ImportResult,
    RowError,
    html_to_text,
    import_catalog,
    import_faq,
    load_faq,
    load_products,
    seed_demo,
)
from shared.cli import main
from shared.exceptions import ImportFileError
from shared.models import FaqEntry, Product, Shop
from shared.store.sqlite import SQLiteStore
from tests.terminal import on_a_terminal

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHOPIFY_CSV = DATA / "catalog_shopify.csv"
SHOP = "teranga"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "t.db")
    yield store
    store.close()


def _by_id(result: ImportResult) -> dict[str, Product]:
    return {p.id: p for p in result.products}


def _errors(result: ImportResult) -> list[tuple[int | None, str]]:
    return [(e.line if e.line is not None else e.item, e.message) for e in result.errors]


def _products(store: SQLiteStore, shop: str = SHOP) -> dict[str, Product]:
    docs = store.query(shop, "products", limit=500).items
    return {d.id: Product.from_doc(d) for d in docs}


def _shop(store: SQLiteStore, shop: str = SHOP) -> Shop:
    doc = store.get(shop, "shops", shop)
    assert doc is not None
    return Shop.from_doc(doc)


# --- Shopify CSV -------------------------------------------------------------------------------


def test_shopify_csv_groups_variants_by_handle() -> None:
    result = load_products(SHOPIFY_CSV, currency="XOF", shop_url="https://shop.example/")
    products = _by_id(result)
    assert list(products) == ["boubou-brode", "sac-en-raphia", "bougie-bissap"]

    boubou = products["boubou-brode"]
    assert boubou.title == "Boubou brodé"
    assert boubou.vendor == "Maison Teranga"
    assert boubou.category == "Boubou"
    assert boubou.currency == "XOF"
    assert boubou.url == "https://shop.example/products/boubou-brode"
    assert boubou.tags == ["boubou", "brodé", "fête"]
    assert boubou.description == "Boubou en bazin brodé main.\n- 100 % coton\n- Fait à Dakar"
    # The image at position 1 is on the second row; position wins over row order.
    assert boubou.image == "https://cdn.example/boubou-front.jpg"

    small, medium = boubou.variants  # the L row has a broken price and is left out
    assert small.id == "boubou-brode:BB-S-W"
    assert small.title == "S / Blanc"
    assert small.options == {"Taille": "S", "Couleur": "Blanc"}
    assert small.sku == "BB-S-W"
    assert small.inventory == 3
    assert small.price == Decimal("45000.00")
    assert small.compare_at_price == Decimal("52000.00")
    assert medium.price == Decimal("45000.50")
    assert str(medium.price) == "45000.50"  # exact, never through float
    assert medium.compare_at_price is None
    assert boubou.price == Decimal("45000.00")


def test_shopify_csv_default_variant_and_stock_rules() -> None:
    products = _by_id(load_products(SHOPIFY_CSV, currency="XOF"))

    sac = products["sac-en-raphia"]
    assert sac.url == ""  # no shop URL given
    assert sac.description == "Sac & panier\ntressé"
    assert sac.tags == ["raphia", "sac", "été"]
    (variant,) = sac.variants
    assert variant.id == "sac-en-raphia:default"
    assert variant.title == ""
    assert variant.options == {}
    assert variant.sku is None
    assert variant.available  # out of stock, but set to continue selling

    (bougie,) = products["bougie-bissap"].variants
    assert not bougie.available  # tracked, none left, policy deny
    assert bougie.compare_at_price is None  # 8000 is below the price: no discount to quote


def test_shopify_csv_reports_malformed_rows_with_their_physical_lines() -> None:
    result = load_products(SHOPIFY_CSV, currency="XOF")
    errors = _errors(result)
    # Line numbers count the header as line 1 and the boubou's three-line Body cell.
    assert [line for line, _ in errors] == [6, 11, 12, 13, 13, 17]
    assert "Variant Price 'quarante mille' is not a number" in errors[0][1]
    assert "fantome" in errors[1][1] and "before" in errors[1][1]
    assert errors[2][1] == "product 'sans-titre' has no Title"
    assert "'12,5.0' is not a number" in errors[3][1]
    assert errors[4][1] == "product 'prix-casse' skipped: no valid variant"
    assert errors[5][1] == "the row has no Handle"
    assert all(isinstance(e, RowError) and e.item is None for e in result.errors)
    assert str(result.errors[0]).startswith("line 6: ")
    # The draft and the unpublished product are counted, not reported.
    assert result.skipped == 2


def test_shopify_2024_headers_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "URL handle;Title;Description;Option1 name;Option1 value;SKU;Price;Compare-at price;"
        "Image source;Image position;Status\n"
        "pagne-tisse;Pagne tissé;<p>Tissé main</p>;Couleur;Indigo;PT-I;35000;39000;"
        "https://cdn.example/pagne.jpg;1;Active\n",
        encoding="utf-8",
    )
    (product,) = load_products(path, currency="XOF").products
    assert product.id == "pagne-tisse"
    assert product.description == "Tissé main"
    assert product.image == "https://cdn.example/pagne.jpg"
    (variant,) = product.variants
    assert (variant.id, variant.price, variant.compare_at_price) == (
        "pagne-tisse:PT-I",
        Decimal("35000"),
        Decimal("39000"),
    )


# --- products.json and own JSON ----------------------------------------------------------------


def test_shopify_products_json() -> None:
    result = load_products(
        DATA / "catalog_shopify_products.json", currency="XOF", shop_url="https://shop.example"
    )
    products = _by_id(result)
    assert list(products) == ["sandales-en-cuir", "coussin-wax"]

    sandales = products["sandales-en-cuir"]
    assert sandales.description == "Sandales cousues main."
    assert sandales.category == "Chaussures"
    assert sandales.tags == ["cuir", "sandales"]
    assert sandales.image == "https://cdn.example/sandales-1.jpg"
    assert sandales.url == "https://shop.example/products/sandales-en-cuir"
    first, second = sandales.variants
    assert first.id == "41001"  # Shopify's own variant id
    assert first.options == {"Pointure": "38", "Couleur": "Naturel"}
    assert first.title == "38 / Naturel"
    assert first.price == Decimal("17500.00")
    assert first.compare_at_price == Decimal("20000.00")
    assert not second.available

    coussin = products["coussin-wax"]
    assert coussin.tags == ["maison", "wax"]
    assert coussin.image == ""
    (variant,) = coussin.variants  # the "abc" variant is reported and left out
    assert (variant.id, variant.title, variant.options, variant.sku) == ("42001", "", {}, None)
    assert not variant.available  # tracked, none left, policy deny

    assert result.skipped == 1  # the draft
    assert [e.item for e in result.errors] == [2, 4, 5, 5]
    assert "variant 2" in result.errors[0].message and "'abc'" in result.errors[0].message
    assert result.errors[1].message == "not a JSON object"
    assert result.errors[2].message == "product 'sans-prix': variant 1: price is missing"
    assert result.errors[3].message == "product 'sans-prix' skipped: no valid variant"
    assert all(e.line is None for e in result.errors)


def test_own_json() -> None:
    result = load_products(DATA / "catalog_own.json", currency="EUR")
    products = _by_id(result)
    assert list(products) == ["bougie-parfumee-bissap", "the-kinkeliba"]

    bougie = products["bougie-parfumee-bissap"]
    assert bougie.currency == "XOF"  # the item's own currency wins
    assert bougie.url == "https://maison-teranga.example/products/bougie-parfumee-bissap"
    small, large = bougie.variants
    assert (small.id, small.price) == ("bougie-180", Decimal("8500"))
    assert large.id == "bougie-parfumee-bissap:BPB-300"  # derived: no id in the file
    assert large.price == Decimal("12500.50")
    assert large.compare_at_price == Decimal("14000.25")
    assert large.inventory == 4

    kinkeliba = products["the-kinkeliba"]
    assert kinkeliba.currency == "EUR"  # filled from the import
    (variant,) = kinkeliba.variants
    assert variant.id == "the-kinkeliba:default"
    assert not kinkeliba.available

    assert [(e.item, e.message) for e in result.errors] == [
        (3, 'the product has no "id"'),
        (4, "product 'sans-variante' skipped: no valid variant"),
    ]


def test_load_products_round_trips_through_own_json(tmp_path: Path) -> None:
    original = load_products(SHOPIFY_CSV, currency="XOF").products
    path = tmp_path / "own.json"
    path.write_text(json.dumps({"products": [p.to_doc() for p in original]}), encoding="utf-8")
    again = load_products(path, currency="XOF")
    assert again.errors == []
    assert again.products == original


def test_html_to_text() -> None:
    html = (
        "<h2>Titre</h2><p>Un <b>boubou</b>&nbsp;brodé &amp; co.</p><ul><li>coton</li>"
        "<li>fait  main</li></ul><script>alert(1)</script><style>p {}</style>Fin<br/>ligne"
    )
    assert html_to_text(html) == "Titre\nUn boubou brodé & co.\n- coton\n- fait main\nFin\nligne"
    assert html_to_text("texte simple") == "texte simple"


# --- FAQ ---------------------------------------------------------------------------------------


def test_faq_json() -> None:
    result = load_faq(DATA / "catalog_faq.json")
    first, second = result.entries
    assert first == FaqEntry(
        id="livraison-dakar",
        question="Livrez-vous à Dakar ?",
        answer="Oui, en 24 à 48 h.",
        lang="fr",
        tags=["livraison", "dakar"],
    )
    assert second.id.startswith("faq-")
    assert second.lang == "en"
    assert second.tags == ["payment", "wave"]
    assert [(e.item, e.line) for e in result.errors] == [(3, None)]


def test_faq_csv_and_stable_question_ids(tmp_path: Path) -> None:
    result = load_faq(DATA / "catalog_faq.csv")
    first, second = result.entries
    assert first.answer == "Oui, en 24 à 48 h."
    assert first.tags == ["livraison", "dakar"]
    assert second.lang == "fr"  # the default when the cell is empty
    assert [(e.line, e.item) for e in result.errors] == [(4, None)]

    # The id comes from the question, so the same question keeps its id in any file.
    path = tmp_path / "faq.json"
    path.write_text(
        json.dumps([{"question": "  quels sont vos  HORAIRES ?", "answer": "9 h - 18 h"}]),
        encoding="utf-8",
    )
    (entry,) = load_faq(path).entries
    assert entry.id == second.id


# --- writing -----------------------------------------------------------------------------------


def test_import_catalog_creates_the_shop_and_bumps_the_version(store: SQLiteStore) -> None:
    report = import_catalog(store, SHOP, SHOPIFY_CSV, shop_name="Maison Teranga", currency="XOF")
    assert (report.created, report.updated, report.unchanged, report.skipped) == (3, 0, 0, 2)
    assert (len(report.errors), report.rejected) == (6, 5)  # line 13 has two errors
    assert report.summary() == (
        "products: 3 created, 0 updated, 0 unchanged, 2 not published, 5 rows rejected; "
        "catalog version 1"
    )
    shop = _shop(store)
    assert (shop.name, shop.currency, shop.catalog_version) == ("Maison Teranga", "XOF", 1)
    assert report.catalog_version == 1
    products = _products(store)
    assert set(products) == {"boubou-brode", "sac-en-raphia", "bougie-bissap"}
    assert products["boubou-brode"].variants[1].price == Decimal("45000.50")


def test_import_uses_an_existing_shop(store: SQLiteStore) -> None:
    shop = Shop(id=SHOP, name="Teranga", currency="EUR", url="https://teranga.example")
    store.put(SHOP, "shops", SHOP, shop.to_doc())
    import_catalog(store, SHOP, SHOPIFY_CSV, shop_name="Ignored")
    assert _shop(store).name == "Teranga"
    product = _products(store)["sac-en-raphia"]
    assert product.currency == "EUR"
    assert product.url == "https://teranga.example/products/sac-en-raphia"


def test_reimport_updates_and_never_duplicates(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    shutil.copy(SHOPIFY_CSV, path)
    import_catalog(store, SHOP, path)

    again = import_catalog(store, SHOP, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    # Nothing changed: the version stays, so warm instances keep their index.
    assert again.catalog_version == _shop(store).catalog_version == 1
    assert again.summary() == (
        "products: nothing changed (3 unchanged, 2 not published, 5 rows rejected); "
        "catalog version 1"
    )

    path.write_text(path.read_text(encoding="utf-8").replace("45000.50", "47000"), "utf-8")
    changed = import_catalog(store, SHOP, path)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)
    assert changed.catalog_version == _shop(store).catalog_version == 2
    products = _products(store)
    assert len(products) == 3
    assert [v.price for v in products["boubou-brode"].variants] == [
        Decimal("45000.00"),
        Decimal("47000"),
    ]


def test_prune_removes_what_a_full_export_no_longer_has(store: SQLiteStore, tmp_path: Path) -> None:
    import_catalog(store, SHOP, SHOPIFY_CSV)
    store.put(SHOP, "products", "old-product", {**_products(store)["boubou-brode"].to_doc()})
    kept = import_catalog(store, SHOP, SHOPIFY_CSV)
    assert kept.removed == 0
    assert "old-product" in _products(store)  # without prune, an import only adds and updates
    pruned = import_catalog(store, SHOP, SHOPIFY_CSV, prune=True)
    assert pruned.removed == 1
    assert "removed" in pruned.summary()
    assert sorted(_products(store)) == sorted(
        p.id for p in load_products(SHOPIFY_CSV, currency="XOF").products
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "latin1.csv",
            "Handle,Title,Variant Price\nrobe,Robe d\xe9t\xe9,1000\n".encode("latin-1"),
            "not UTF-8",
        ),
        ("broken.json", b'{"products": [', "invalid JSON"),
        ("not-a-list.json", b'{"products": {}}', 'a "products" list'),
        ("huge.csv", b"Handle,Title,Variant Price\nrobe,%b,1\n" % (b"x" * 200_000), "line 2: "),
        ("shape.json", b'{"items": []}', 'a "products" list'),
        (
            "columns.csv",
            b"nom,prix\nrobe,1000\n",
            "missing column(s) Handle, Title, Variant Price",
        ),
        ("empty.csv", b" \n", "empty"),
    ],
)
def test_unreadable_file_raises_before_any_write(
    store: SQLiteStore, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match="^" + name) as caught:
        import_catalog(store, SHOP, path)
    assert message in str(caught.value)
    assert store.get(SHOP, "shops", SHOP) is None
    assert _products(store) == {}


def test_missing_file_raises(store: SQLiteStore, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_catalog(store, SHOP, tmp_path / "absent.csv")
    with pytest.raises(ImportFileError, match="cannot read"):
        import_faq(store, SHOP, tmp_path / "absent.json")
    assert store.get(SHOP, "shops", SHOP) is None


def test_import_faq(store: SQLiteStore) -> None:
    report = import_faq(store, SHOP, DATA / "catalog_faq.json")
    assert (report.created, report.updated, len(report.errors)) == (2, 0, 1)
    assert _shop(store).catalog_version == 1
    docs = store.query(SHOP, "faq").items
    assert {d.id for d in docs} >= {"livraison-dakar"}
    assert import_faq(store, SHOP, DATA / "catalog_faq.json").unchanged == 2
    assert len(store.query(SHOP, "faq").items) == 2


# --- demo shop ---------------------------------------------------------------------------------


def test_demo_csv_is_a_shopify_export() -> None:
    header = (DEMO_DIR / "catalog.csv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.startswith("Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,")
    assert header.endswith(",Status")


def test_seed_demo(store: SQLiteStore) -> None:
    report = seed_demo(store)
    assert report.errors == []
    assert report.catalog.skipped == 1  # the draft
    assert report.summary().splitlines() == [
        "products: 41 created, 0 updated, 0 unchanged, 1 not published, 0 rejected; "
        "catalog version 1",
        "faq: 18 created, 0 updated, 0 unchanged, 0 rejected; catalog version 2",
    ]
    assert len(_products(store, "demo")) == report.catalog.created  # the counts are the writes
    assert len(store.query("demo", "faq").items) == report.faq.created

    shop = _shop(store, "demo")
    assert (shop.name, shop.currency, shop.phone_region) == ("Maison Teranga", "XOF", "SN")
    assert shop.url == "https://maison-teranga.example"
    assert "Dakar" in shop.offer

    products = _products(store, "demo")
    assert len(products) >= 38
    assert all(p.price > 0 and p.currency == "XOF" for p in products.values())
    assert all(
        p.url.startswith("https://maison-teranga.example/products/") for p in products.values()
    )
    titles = " | ".join(p.title for p in products.values())
    for wanted in (
        "Boubou brodé",
        "Sac en raphia",
        "Sandales en cuir",
        "Bougie parfumée bissap",
        "Coussin wax",
    ):
        assert wanted in titles
    assert any(len(p.variants) > 1 for p in products.values())
    assert any(v.compare_at_price for p in products.values() for v in p.variants)

    entries = [FaqEntry.from_doc(d) for d in store.query("demo", "faq").items]
    assert len(entries) >= 12
    assert {e.lang for e in entries} == {"fr", "en"}

    # Seeding again rewrites nothing and keeps the version.
    again = seed_demo(store)
    assert again.summary().splitlines() == [
        "products: nothing changed (41 unchanged, 1 not published, 0 rejected); catalog version 2",
        "faq: nothing changed (18 unchanged, 0 rejected); catalog version 2",
    ]
    assert _shop(store, "demo").catalog_version == 2
    assert len(_products(store, "demo")) == len(products)


# --- the CLI on a hostile JSON file --------------------------------------------------------------

DEEP_TAGS = '[{"id": "a", "title": "A", "tags": ' + "[" * 500 + "]" * 500 + "}]"


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        ("import-catalog", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("import-faq", '{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ("import-catalog", DEEP_TAGS, "nested too deeply"),
        (
            "import-catalog",
            '[{"id": "lampe", "title": "Lampe \\ud800", "variants": [{"price": "10"}]}]',
            "lone surrogate escape (\\ud800)",
        ),
        ("import-faq", '[{"question": "Q \\udc00 ?", "answer": "R"}]', "lone surrogate"),
    ],
    ids=["deep-catalog", "deep-faq", "deep-field", "surrogate-catalog", "surrogate-faq"],
)
def test_cli_refuses_a_hostile_json_file_and_changes_nothing(
    store: SQLiteStore, tmp_path: Path, command: str, content: str, message: str
) -> None:
    import_catalog(store, SHOP, SHOPIFY_CSV)
    before = (_products(store), _shop(store).catalog_version)
    path = tmp_path / "hostile.json"
    path.write_text(content, encoding="ascii")
    done = subprocess.run(
        [sys.executable, "-m", "shared", command, str(path), "--shop", SHOP],
        cwd=tmp_path,
        env={**os.environ, "STORE_URL": f"sqlite:///{tmp_path}/t.db", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: hostile.json: the JSON ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert (_products(store), _shop(store).catalog_version) == before


# --- files that do not parse cleanly change nothing ----------------------------------------------

_GOOD_ROWS = "sac,Sac en raphia,15000\nbougie,Bougie bissap,8500\n"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        # The quote never closes: the rest of the file would be the title.
        ('robe,"Robe wax,27500\n' + _GOOD_ROWS, "line 2: unbalanced quotes"),
        # It "closes" at the next quote: the product's title would be the next lines.
        ('robe,"Robe wax,27500\n' + _GOOD_ROWS.replace("Bougie bissap", '"Bougie"'), "line 2: "),
        # It closes right before a delimiter further down: parses, but the title spans lines.
        ('robe,"Robe wax,27500\nsac,Sac en raphia",15000\n', "line 2: unbalanced quotes"),
        # Later in the file, after good rows: the line is the one where the quote opens.
        (_GOOD_ROWS + 'robe,Robe wax,"27500\n', "line 4: unbalanced quotes"),
    ],
    ids=["never-closed", "closed-by-the-next-quote", "closed-lines-later", "after-good-rows"],
)
def test_a_csv_with_unbalanced_quotes_changes_nothing_and_says_where(
    store: SQLiteStore, tmp_path: Path, content: str, where: str
) -> None:
    import_catalog(store, SHOP, SHOPIFY_CSV)
    before = (_products(store), _shop(store).catalog_version)
    path = tmp_path / "broken.csv"
    path.write_text("Handle,Title,Variant Price\n" + content, encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"^broken\.csv: ") as caught:
        import_catalog(store, SHOP, path)
    assert where in str(caught.value)
    assert "nothing was imported" in str(caught.value)
    assert (_products(store), _shop(store).catalog_version) == before


def test_a_faq_csv_with_an_unclosed_quote_is_refused(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        'question,answer,lang\nLivrez-vous ?,"Oui, à Dakar,fr\nPaiement ?,Wave,fr\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError, match=r"^faq\.csv: line 2: unbalanced quotes"):
        import_faq(store, SHOP, path)
    assert store.get(SHOP, "shops", SHOP) is None


def test_a_wrong_header_names_its_line(store: SQLiteStore, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("\nnom,titre,prix\nrobe,Robe,1000\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        import_catalog(store, SHOP, path)
    assert str(caught.value).startswith(
        "export.csv: line 2: missing column(s) Handle, Title, Variant Price"
    )
    assert store.get(SHOP, "shops", SHOP) is None


def test_a_rerun_after_an_import_stopped_half_way_moves_the_version(
    store: SQLiteStore, tmp_path: Path
) -> None:
    import_catalog(store, SHOP, SHOPIFY_CSV)
    # What an import leaves when it stops between its writes and the version bump.
    store.put(SHOP, "imports", "products", {"started_at": 0})
    rerun = import_catalog(store, SHOP, SHOPIFY_CSV)
    assert (rerun.created, rerun.updated, rerun.unchanged) == (0, 0, 3)
    assert rerun.catalog_version == _shop(store).catalog_version == 2
    assert store.get(SHOP, "imports", "products") is None
    assert import_catalog(store, SHOP, SHOPIFY_CSV).catalog_version == 2  # then it stays


def test_the_demo_says_the_same_payment_means_everywhere() -> None:
    """The demo page, the FAQ in both languages and the shop's offer agree: Wave, Orange Money,
    cash on delivery in Dakar; no card."""
    faq = {e["id"]: e["answer"] for e in json.loads((DEMO_DIR / "faq.json").read_text("utf-8"))}
    page = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    footer = page.split('<footer class="shop-footer">', 1)[1].split("</footer>", 1)[0]
    offer = json.loads((DEMO_DIR / "shop.json").read_text("utf-8"))["offer"]
    cash_in = {"fr": "espèces à la livraison", "en": "cash on delivery"}
    for text, lang in ((faq["paiement"], "fr"), (footer, "fr"), (faq["payment"], "en")):
        assert "Wave" in text and "Orange Money" in text and cash_in[lang] in text, text
    for text in (footer, faq["paiement"], faq["payment"], offer):
        assert not any(word in text.lower() for word in ("carte", "card", "visa")), text


# --- shop settings at import: --settings, a new shop's guesses, product links -------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        cwd=tmp_path,
        env={**os.environ, "STORE_URL": f"sqlite:///{tmp_path}/t.db", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings_file(tmp_path: Path, settings: dict[str, object]) -> Path:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def test_settings_file_sets_up_a_new_shop_and_its_product_links(
    store: SQLiteStore, tmp_path: Path
) -> None:
    settings = _settings_file(
        tmp_path,
        {
            "name": "Glow Cosmetics",
            "url": "https://glow.example/",
            "currency": "USD",
            "languages": ["en", "fr"],
            "phone_region": "US",
            "timezone": "America/New_York",
            "system_prompt_addition": "Mention the free samples.",
        },
    )
    catalogue = DATA / "glow_cosmetics.csv"
    done = _cli(
        tmp_path, "import-catalog", str(catalogue), "--shop", "glow", "--settings", str(settings)
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # everything was given: nothing guessed
    shop = _shop(store, "glow")
    assert (shop.name, shop.url, shop.currency, shop.languages) == (
        "Glow Cosmetics",
        "https://glow.example",
        "USD",
        ["en", "fr"],
    )
    assert shop.timezone == "America/New_York"
    assert shop.system_prompt_addition == "Mention the free samples."
    products = _products(store, "glow")
    assert products["vitamin-c-serum"].url == "https://glow.example/products/vitamin-c-serum"
    assert all(p.currency == "USD" for p in products.values())


def test_settings_file_changes_an_existing_shop_before_its_products(
    store: SQLiteStore, tmp_path: Path
) -> None:
    import_catalog(store, SHOP, SHOPIFY_CSV, currency="XOF")
    assert _products(store)["sac-en-raphia"].url == ""  # no shop URL yet
    report = import_catalog(
        store, SHOP, SHOPIFY_CSV, settings={"url": "https://teranga.example", "offer": "-10 %"}
    )
    assert report.guesses == []  # an existing shop: nothing guessed
    assert (_shop(store).url, _shop(store).offer) == ("https://teranga.example", "-10 %")
    assert _products(store)["sac-en-raphia"].url == "https://teranga.example/products/sac-en-raphia"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"currency": "EURO"}, "error: currency: 'EURO' is not an ISO 4217 code"),
        ({"languages": ["fr", "klingon"]}, "error: languages: 'klingon' is not a language"),
        ({"timezone": "Mars/Olympus"}, "error: timezone: unknown time zone"),
        ({"business_hours": {"mon": ["9h-18h"]}}, "error: business_hours: expected HH:MM"),
        ({"colour": "blue"}, "error: colour: not a shop setting"),
    ],
)
@pytest.mark.parametrize("existing", [True, False], ids=["existing-shop", "new-shop"])
def test_bad_settings_at_import_change_nothing(
    store: SQLiteStore, tmp_path: Path, settings: dict[str, object], message: str, existing: bool
) -> None:
    if existing:
        import_catalog(store, SHOP, SHOPIFY_CSV, currency="XOF")
    before = (store.get(SHOP, "shops", SHOP), _products(store))
    path = _settings_file(tmp_path, {"offer": "changed", **settings})
    catalogue = DATA / "catalog_own.json"
    done = _cli(tmp_path, "import-catalog", str(catalogue), "--shop", SHOP, "--settings", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1
    assert (store.get(SHOP, "shops", SHOP), _products(store)) == before


def test_a_settings_file_that_is_not_an_object_is_refused(
    store: SQLiteStore, tmp_path: Path
) -> None:
    path = tmp_path / "shop.json"
    path.write_text('["fr", "en"]', encoding="utf-8")
    done = _cli(
        tmp_path, "import-catalog", str(SHOPIFY_CSV), "--shop", SHOP, "--settings", str(path)
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: shop.json: expected a JSON object of settings")
    assert store.get(SHOP, "shops", SHOP) is None


def test_a_new_english_shop_is_told_what_was_guessed(store: SQLiteStore, tmp_path: Path) -> None:
    done = _cli(tmp_path, "import-catalog", str(DATA / "glow_cosmetics.csv"), "--shop", "glow")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "new shop glow: guessed settings (python -m shared shop show glow):",
        "  name=glow (the shop id)",
        "  languages=en,fr (English catalogue)",
        "  currency=USD (prices in units, English catalogue)",
        "  phone_region=US (currency USD)",
        "  timezone=Africa/Dakar (default, US has several)",
        "  url: not set, so product cards have no link",
        "  change one: python -m shared shop set glow key=value",
        "  (a new currency prices the products from the next import)",
    ]
    shop = _shop(store, "glow")
    assert (shop.languages, shop.currency, shop.phone_region) == (["en", "fr"], "USD", "US")
    assert all(p.currency == "USD" for p in _products(store, "glow").values())


def test_a_new_french_shop_with_whole_prices_guesses_senegal(store: SQLiteStore) -> None:
    report = import_catalog(
        store, "boutique", DEMO_DIR / "catalog.csv", settings={"url": "https://b.example"}
    )
    assert [(g.key, g.value, g.reason) for g in report.guesses] == [
        ("name", "boutique", "the shop id"),
        ("languages", "fr,en", "French catalogue"),
        ("currency", "XOF", "whole prices in thousands"),
        ("phone_region", "SN", "currency XOF"),
        ("timezone", "Africa/Dakar", "phone region SN"),
    ]
    shop = _shop(store, "boutique")
    assert (shop.languages, shop.currency, shop.phone_region) == (["fr", "en"], "XOF", "SN")


def test_products_without_a_url_link_to_the_shop_url_and_handle(store: SQLiteStore) -> None:
    from shared.cards import product_card

    store.put(SHOP, "shops", SHOP, {"name": "Teranga", "url": "https://teranga.example"})
    import_catalog(store, SHOP, DATA / "catalog_own.json")
    products = _products(store)
    # No URL in the file: the shop's URL and the handle; one given in the file is kept.
    kinkeliba = product_card(products["the-kinkeliba"])
    assert kinkeliba["url"] == "https://teranga.example/products/the-kinkeliba"
    bougie = product_card(products["bougie-parfumee-bissap"])
    assert bougie["url"] == "https://maison-teranga.example/products/bougie-parfumee-bissap"


# --- progress ----------------------------------------------------------------------------------


def _catalogue(path: Path, count: int, price: int = 1000) -> Path:
    products = [
        {"id": f"p{i:04}", "title": f"Produit {i}", "variants": [{"price": str(price + i)}]}
        for i in range(count)
    ]
    path.write_text(json.dumps(products), encoding="utf-8")
    return path


def test_an_import_reports_its_writes_a_chunk_at_a_time(store: SQLiteStore, tmp_path: Path) -> None:
    path = _catalogue(tmp_path / "big.json", 600)
    calls: list[tuple[int, int]] = []
    report = import_catalog(store, SHOP, path, currency="XOF", progress=lambda *c: calls.append(c))
    assert calls == [(250, 600), (500, 600), (600, 600)]
    assert report.created == len(list(store.scan(SHOP, "products"))) == 600

    calls.clear()
    import_catalog(store, SHOP, path, progress=lambda *c: calls.append(c))
    assert calls == []  # nothing changed, nothing written

    path.write_text(path.read_text().replace('"1007"', '"2007"'), encoding="utf-8")
    changed = import_catalog(store, SHOP, path, progress=lambda *c: calls.append(c))
    assert (changed.updated, calls) == (1, [(1, 1)])
    assert store.get(SHOP, "products", "p0007").version == 2  # type: ignore[union-attr]


def test_a_faq_import_reports_its_writes(store: SQLiteStore) -> None:
    calls: list[tuple[int, int]] = []
    import_faq(store, SHOP, DATA / "catalog_faq.json", progress=lambda *c: calls.append(c))
    assert calls == [(2, 2)]


def test_the_cli_shows_progress_on_a_terminal_only(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _catalogue(tmp_path / "big.json", 300)
    with on_a_terminal() as terminal:
        assert main(["import-catalog", str(path), "--shop", "bulk", "--currency", "XOF"]) == 0
    shown = terminal.getvalue()
    assert "\r250/300 products written (83%)\r300/300 products written (100%)\n" in shown
    assert "products: 300 created" in capsys.readouterr().out

    _catalogue(path, 300, price=2000)
    assert main(["import-catalog", str(path), "--shop", "bulk"]) == 0
    captured = capsys.readouterr()
    assert "products: 0 created, 300 updated" in captured.out
    assert "written" not in captured.err and "\r" not in captured.err  # not a terminal
