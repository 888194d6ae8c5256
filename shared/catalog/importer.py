"""Catalogue and FAQ import into the document store.

Formats are told apart by content, not by file name:

* Text starting with ``[`` or ``{`` is JSON. Its products are the list itself or the list under
  ``"products"``. If any item has a ``handle`` key the file is Shopify's ``products.json``
  (storefront ``/products.json`` or an Admin API ``products`` response); otherwise every item is
  a Comptoir ``Product`` document (``id``, ``title``, ``variants[].price``...) in which
  ``currency`` and the variants' ``id`` may be left out.
* Anything else is a Shopify product CSV export: one row per variant and/or image, rows grouped
  by ``Handle``, the first row of a handle carrying the product fields. The classic headers
  (``Variant Price``) and the 2024 ones (``Price``, ``URL handle``...) are both read.

Parsing never writes. A file that cannot be read at all, or does not parse cleanly (unbalanced
quotes, a header without the required columns), raises ImportFileError naming the line, and
nothing is written; a malformed row or item is reported as a RowError and skipped while the rest
is imported. Every id is stable (the
handle; the variant's SKU or options; the FAQ's id or question), so importing a file again
updates documents instead of duplicating them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from shared import jsonsafe
from shared.catalog import PRODUCTS, RESTOCKS
from shared.exceptions import ImportFileError, InvalidInputError
from shared.models import LANGUAGES, FaqEntry, Product, Shop, Variant
from shared.progress import Progress
from shared.shops import apply_settings, create_shop, index_shop, new_shop, update_shop
from shared.store import Store

if TYPE_CHECKING:
    from shared.catalog.snapshot import CatalogSnapshots

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"

_IMPORTS = "imports"  # one marker per collection while an import writes
_BATCH = 100  # ids per get_many: DynamoDB's BatchGetItem takes at most 100 keys
_WRITE_CHUNK = 250  # documents per put_many: progress is reported after each
_UNPOSITIONED = 1 << 30  # an image without a position sorts after every positioned one
_KEY_REFUSED = re.compile(r"[^A-Za-z0-9._:@+=~-]+")  # characters a store id may not hold
_MAX_JSON_DEPTH = 32  # catalogues and FAQs nest under 8 deep

# Shopify's 2024 CSV export renamed these columns; the classic names are the ones used below.
_SHOPIFY_ALIASES = {
    "url handle": "handle",
    "description": "body (html)",
    "published on online store": "published",
    "sku": "variant sku",
    "price": "variant price",
    "compare-at price": "variant compare at price",
    "inventory tracker": "variant inventory tracker",
    "inventory quantity": "variant inventory qty",
    "continue selling when out of stock": "variant inventory policy",
    "image source": "image src",
}
# Cells that never hold a line break: one that does comes from a quote left open above it.
_SINGLE_LINE_COLUMNS = (
    "handle",
    "title",
    "variant sku",
    "variant price",
    "variant compare at price",
    "option1 value",
    "option2 value",
    "option3 value",
    "image src",
)
# Filled only on the first row of a handle: tells a title-less product row from a continuation.
_PRODUCT_COLUMNS = (
    "body (html)",
    "vendor",
    "product category",
    "type",
    "tags",
    "published",
    "status",
    "option1 name",
)


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A rejected part of a file: a CSV ``line`` (physical, the header is line 1) or a JSON
    ``item`` (1-based position in the list)."""

    message: str
    line: int | None = None
    item: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"item {self.item}"
        return f"{where}: {self.message}"


@dataclass
class ImportResult:
    products: list[Product] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0  # draft, archived or unpublished products: left out on purpose


@dataclass
class FaqImportResult:
    entries: list[FaqEntry] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class Guess:
    """A setting of a new shop that nobody gave: ``value`` as guessed (or the default, or ""
    when nothing could stand in for it) and ``reason``, the evidence."""

    key: str
    value: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    collection: str
    created: int
    updated: int
    unchanged: int  # identical to the stored document, so not rewritten
    skipped: int
    errors: list[RowError]
    catalog_version: int
    removed: int = 0  # with prune: stored documents the file no longer has
    guesses: list[Guess] = field(default_factory=list)  # when the import created the shop

    @property
    def rejected(self) -> int:
        """Rejected rows (CSV) or items (JSON): a row may have more than one error."""
        return len({(error.line, error.item) for error in self.errors})

    def summary(self) -> str:
        """One line; its counts are what was written (and what the file held)."""
        unit = "row" if any(error.line is not None for error in self.errors) else "item"
        plural = "s" if self.rejected > 1 else ""
        rejected = f", {self.rejected} {unit}{plural} rejected" if self.errors else ", 0 rejected"
        skipped = f", {self.skipped} not published" if self.skipped else ""
        if self.created == self.updated == self.removed == 0:
            counts = f"nothing changed ({self.unchanged} unchanged{skipped}{rejected})"
        else:
            removed = f", {self.removed} removed" if self.removed else ""
            counts = (
                f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
                f"{removed}{skipped}{rejected}"
            )
        return f"{self.collection}: {counts}; catalog version {self.catalog_version}"


@dataclass(frozen=True)
class SeedReport:
    catalog: ImportReport
    faq: ImportReport

    @property
    def errors(self) -> list[RowError]:
        return [*self.catalog.errors, *self.faq.errors]

    def summary(self) -> str:
        return f"{self.catalog.summary()}\n{self.faq.summary()}"


class _MalformedError(Exception):
    """A row, item or variant is malformed; the message says why."""


# --- parsing: products -------------------------------------------------------------------------


def load_products(path: str | Path, *, currency: str, shop_url: str = "") -> ImportResult:
    """Parse a catalogue file (see the module docstring for the formats) without writing."""
    path = Path(path)
    text = _read_text(path)
    shop_url = shop_url.rstrip("/")
    if not _is_json(text):
        return _load_shopify_csv(text, path.name, currency, shop_url)
    data = _parse_json(text, path.name)
    items = data.get("products") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ImportFileError(
            f'{path.name}: expected a JSON list of products or an object with a "products" list'
        )
    parse: Callable[[Mapping[str, Any], list[str]], Product | None]
    if any(isinstance(item, dict) and "handle" in item for item in items):
        parse = partial(_from_shopify_json, currency=currency, shop_url=shop_url)
    else:
        parse = partial(_from_own_json, currency=currency, shop_url=shop_url)
    return _load_json_items(items, parse)


@dataclass
class _Draft:
    """A product being assembled from its CSV rows."""

    handle: str
    line: int
    title: str
    body_html: str
    vendor: str
    category: str
    tags: list[str]
    option_names: list[str]
    variants: dict[str, Variant] = field(default_factory=dict)
    images: list[tuple[int, int, str]] = field(default_factory=list)  # (position, order, src)


def _load_shopify_csv(text: str, name: str, currency: str, shop_url: str) -> ImportResult:
    result = ImportResult()
    drafts: dict[str, _Draft] = {}
    ignored: set[str] = set()  # handles whose product row was left out: drop their other rows
    rows = _csv_rows(
        text, name, ("Handle", "Title", "Variant Price"), _SHOPIFY_ALIASES, _SINGLE_LINE_COLUMNS
    )
    for row in rows:
        handle = row.get("handle")
        if not handle:
            result.errors.append(RowError("the row has no Handle", line=row.line))
            continue
        draft = drafts.get(handle)
        if draft is None:
            if handle in ignored:
                continue
            if not row.get("title"):
                if any(row.get(column) for column in _PRODUCT_COLUMNS):
                    ignored.add(handle)
                    message = f"product {handle!r} has no Title"
                else:
                    message = f"row for {handle!r} comes before any row with that product's Title"
                result.errors.append(RowError(message, line=row.line))
                continue
            if not _listed(row.get("status"), row.get("published")):
                ignored.add(handle)
                result.skipped += 1
                continue
            draft = drafts[handle] = _Draft(
                handle=handle,
                line=row.line,
                title=row.get("title"),
                body_html=row.get("body (html)"),
                vendor=row.get("vendor"),
                category=row.get("type") or row.get("product category").rsplit(">", 1)[-1].strip(),
                tags=_tags(row.get("tags")),
                option_names=[row.get(f"option{i} name") for i in (1, 2, 3)],
            )
        _add_csv_row(draft, row, result.errors)

    ids: set[str] = set()
    for draft in drafts.values():
        if not draft.variants:
            result.errors.append(
                RowError(f"product {draft.handle!r} skipped: no valid variant", line=draft.line)
            )
            continue
        product = _shopify_product(
            draft.handle,
            title=draft.title,
            body_html=draft.body_html,
            vendor=draft.vendor,
            category=draft.category,
            tags=draft.tags,
            images=draft.images,
            variants=list(draft.variants.values()),
            currency=currency,
            shop_url=shop_url,
        )
        if product.id in ids:  # two handles that fold to one id, e.g. "robe-été" and "robe-ete"
            result.errors.append(
                RowError(f"product {draft.handle!r}: duplicate id {product.id!r}", line=draft.line)
            )
            continue
        ids.add(product.id)
        result.products.append(product)
    result.errors.sort(key=lambda error: error.line or 0)  # stable: a line's errors keep order
    return result


def _add_csv_row(draft: _Draft, row: _Row, errors: list[RowError]) -> None:
    src = row.get("image src")
    if src:
        position = row.get("image position")
        draft.images.append(
            (int(position) if position.isdigit() else _UNPOSITIONED, len(draft.images), src)
        )
    values = [row.get(f"option{i} value") for i in (1, 2, 3)]
    if not (row.get("variant price") or row.get("variant sku") or any(values)):
        return  # an image-only row
    try:
        qty = _integer(row.get("variant inventory qty"), "Variant Inventory Qty")
        variant = _variant(
            _key(draft.handle),
            sku=row.get("variant sku"),
            options=_options(draft.option_names, values),
            price=_money(row.get("variant price"), "Variant Price"),
            compare_at=_optional_money(
                row.get("variant compare at price"), "Variant Compare At Price"
            ),
            available=_in_stock(
                tracked=bool(row.get("variant inventory tracker")),
                continues=row.get("variant inventory policy").lower() in ("continue", "true"),
                qty=qty,
            ),
            inventory=qty,
        )
    except _MalformedError as exc:
        errors.append(RowError(f"product {draft.handle!r}: {exc}", line=row.line))
        return
    if variant.id in draft.variants:
        errors.append(
            RowError(
                f"product {draft.handle!r}: a variant with the same SKU or options comes earlier",
                line=row.line,
            )
        )
        return
    draft.variants[variant.id] = variant


def _load_json_items(
    items: Sequence[object],
    parse: Callable[[Mapping[str, Any], list[str]], Product | None],
) -> ImportResult:
    result = ImportResult()
    seen: set[str] = set()
    for number, raw in enumerate(items, 1):
        messages: list[str] = []
        try:
            if not isinstance(raw, dict):
                raise _MalformedError("not a JSON object")
            product = parse(raw, messages)
        except _MalformedError as exc:
            messages.append(str(exc))
        else:
            if product is None:
                result.skipped += 1
            elif product.id in seen:
                messages.append(f"duplicate product id {product.id!r}: an earlier item has it")
            else:
                seen.add(product.id)
                result.products.append(product)
        result.errors.extend(RowError(message, item=number) for message in messages)
    return result


def _from_shopify_json(
    raw: Mapping[str, Any], messages: list[str], *, currency: str, shop_url: str
) -> Product | None:
    """A product of Shopify's products.json; None when it is not on sale (draft, unpublished)."""
    status = _text(raw.get("status")).lower()
    if status not in ("", "active") or ("published_at" in raw and raw["published_at"] is None):
        return None
    handle = _text(raw.get("handle"))
    if not handle:
        raise _MalformedError("the product has no handle")
    title = _text(raw.get("title"))
    if not title:
        raise _MalformedError(f"product {handle!r} has no title")
    options = raw.get("options")
    options = options if isinstance(options, list) else []
    names = [_text(o.get("name")) if isinstance(o, dict) else "" for o in options]
    names = [*names, "", "", ""][:3]
    product_id = _key(handle)

    def build(v: Mapping[str, Any]) -> Variant:
        qty = v.get("inventory_quantity")
        qty = qty if isinstance(qty, int) and not isinstance(qty, bool) else None
        available = v.get("available")  # the storefront's products.json says it outright
        if not isinstance(available, bool):
            available = _in_stock(
                tracked=bool(v.get("inventory_management")),
                continues=v.get("inventory_policy") == "continue",
                qty=qty,
            )
        title = _text(v.get("title"))
        return _variant(
            product_id,
            variant_id=_id_text(v.get("id")),
            title=None if title in ("", "Default Title") else title,
            sku=_text(v.get("sku")),
            options=_options(names, [_text(v.get(f"option{i}")) for i in (1, 2, 3)]),
            price=_money(v.get("price"), "price"),
            compare_at=_optional_money(v.get("compare_at_price"), "compare_at_price"),
            available=available,
            inventory=qty,
        )

    images = raw.get("images")
    return _shopify_product(
        handle,
        title=title,
        body_html=_text(raw.get("body_html")),
        vendor=_text(raw.get("vendor")),
        category=_text(raw.get("product_type")),
        tags=_tags(raw.get("tags")),
        images=[
            (_position(image.get("position")), order, _text(image.get("src")))
            for order, image in enumerate(images if isinstance(images, list) else [])
            if isinstance(image, dict) and _text(image.get("src"))
        ],
        variants=_json_variants(raw.get("variants"), build, messages, f"product {handle!r}"),
        currency=currency,
        shop_url=shop_url,
    )


def _from_own_json(
    raw: Mapping[str, Any], messages: list[str], *, currency: str, shop_url: str
) -> Product:
    product_id = _id_text(raw.get("id"))
    if not product_id:
        raise _MalformedError('the product has no "id"')
    product_id = _key(product_id)
    label = f"product {product_id!r}"

    def build(v: Mapping[str, Any]) -> Variant:
        price = _money(v.get("price"), "price")
        compare_at = _optional_money(v.get("compare_at_price"), "compare_at_price")
        try:  # the model checks the other fields' types; the id is derived below if missing
            parsed = Variant.model_validate(
                {**v, "id": "-", "price": price, "compare_at_price": compare_at}
            )
        except ValidationError as exc:
            raise _MalformedError(_validation_message(exc)) from None
        return _variant(
            product_id,
            variant_id=_id_text(v.get("id")),
            title=parsed.title or None,
            sku=parsed.sku or "",
            options=parsed.options,
            price=price,
            compare_at=compare_at,
            available=parsed.available,
            inventory=parsed.inventory,
        )

    variants = _json_variants(raw.get("variants"), build, messages, label)
    try:
        return Product.model_validate(
            {
                **raw,
                "id": product_id,
                "currency": raw.get("currency") or currency,
                "url": raw.get("url") or product_url(shop_url, _id_text(raw.get("id"))),
                "tags": _tags(raw.get("tags")),
                "variants": variants,
            }
        )
    except ValidationError as exc:
        raise _MalformedError(f"{label}: {_validation_message(exc)}") from None


def _json_variants(
    raws: object,
    build: Callable[[Mapping[str, Any]], Variant],
    messages: list[str],
    label: str,
) -> list[Variant]:
    """The valid variants; a broken one is reported in ``messages`` and left out."""
    if not isinstance(raws, list):
        raise _MalformedError(f'{label}: "variants" is not a list')
    variants: dict[str, Variant] = {}
    for number, raw in enumerate(raws, 1):
        try:
            if not isinstance(raw, dict):
                raise _MalformedError("not a JSON object")
            variant = build(raw)
        except _MalformedError as exc:
            messages.append(f"{label}: variant {number}: {exc}")
            continue
        if variant.id in variants:
            messages.append(f"{label}: variant {number}: duplicate variant id {variant.id!r}")
            continue
        variants[variant.id] = variant
    if not variants:
        raise _MalformedError(f"{label} skipped: no valid variant")
    return list(variants.values())


def _shopify_product(
    handle: str,
    *,
    title: str,
    body_html: str,
    vendor: str,
    category: str,
    tags: list[str],
    images: Iterable[tuple[int, int, str]],
    variants: list[Variant],
    currency: str,
    shop_url: str,
) -> Product:
    return Product(
        id=_key(handle),
        title=title,
        description=html_to_text(body_html),
        vendor=vendor,
        category=category,
        tags=tags,
        url=product_url(shop_url, handle),
        image=min(images, default=(0, 0, ""))[2],  # the first by position, then file order
        currency=currency,
        variants=variants,
    )


def product_url(shop_url: str, handle: str) -> str:
    """The product's page on the shop's storefront (Shopify's ``/products/{handle}``); "" when
    the shop has no URL."""
    return f"{shop_url.rstrip('/')}/products/{quote(handle, safe='')}" if shop_url else ""


def _variant(
    product_id: str,
    *,
    sku: str,
    options: dict[str, str],
    price: Decimal,
    compare_at: Decimal | None,
    available: bool,
    inventory: int | None,
    variant_id: str = "",
    title: str | None = None,
) -> Variant:
    """A variant; without a given id, one derived from the SKU or the options, stable across
    re-imports."""
    derived = f"{product_id}:{_key(sku or '-'.join(options.values()) or 'default')}"
    return Variant(
        id=variant_id or derived,
        title=" / ".join(options.values()) if title is None else title,
        sku=sku or None,
        price=price,
        # A compare-at price not above the price is no discount; quoting it would mislead.
        compare_at_price=compare_at if compare_at is not None and compare_at > price else None,
        available=available,
        inventory=inventory,
        options=options,
    )


def _options(names: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    # Shopify gives a product without options a single option "Title" = "Default Title".
    return {
        name or f"Option{i}": value
        for i, (name, value) in enumerate(zip(names, values, strict=True), 1)
        if value and value != "Default Title"
    }


def _in_stock(*, tracked: bool, continues: bool, qty: int | None) -> bool:
    """Shopify keeps selling an untracked variant, or one set to continue when out of stock."""
    return not tracked or continues or qty is None or qty > 0


def _listed(status: str, published: str) -> bool:
    """Whether Shopify shows the product: active (or no Status column) and not unpublished."""
    return status.lower() in ("", "active") and published.lower() not in ("false", "no", "0")


# --- parsing: FAQ ------------------------------------------------------------------------------


def load_faq(path: str | Path) -> FaqImportResult:
    """Parse a FAQ file without writing: a JSON list of {question, answer, lang?, tags?, id?}
    objects, or a CSV with columns question, answer and optionally lang, tags, id."""
    path = Path(path)
    text = _read_text(path)
    records: list[tuple[int, object]]
    if _is_json(text):
        data = _parse_json(text, path.name)
        if not isinstance(data, list):
            raise ImportFileError(f"{path.name}: expected a JSON list of {{question, answer}}")
        records, by_line = list(enumerate(data, 1)), False
    else:
        rows = _csv_rows(text, path.name, ("question", "answer"), {}, ("id", "lang", "tags"))
        columns = ("question", "answer", "lang", "tags", "id")
        records = [(row.line, {c: row.get(c) for c in columns}) for row in rows]
        by_line = True

    result = FaqImportResult()
    seen: set[str] = set()
    for number, raw in records:
        try:
            entry = _faq_entry(raw)
            if entry.id in seen:
                raise _MalformedError(f"duplicate FAQ id {entry.id!r}: an earlier entry has it")
        except _MalformedError as exc:
            error = RowError(str(exc), line=number) if by_line else RowError(str(exc), item=number)
            result.errors.append(error)
            continue
        seen.add(entry.id)
        result.entries.append(entry)
    return result


def _faq_entry(raw: object) -> FaqEntry:
    if not isinstance(raw, dict):
        raise _MalformedError("not a JSON object")
    question, answer = _text(raw.get("question")), _text(raw.get("answer"))
    if not question or not answer:
        raise _MalformedError("question and answer must both be non-empty text")
    given = _id_text(raw.get("id"))
    return FaqEntry(
        id=_key(given) if given else _question_id(question),
        question=question,
        answer=answer,
        lang=_text(raw.get("lang")).lower() or "fr",
        tags=_tags(raw.get("tags")),
    )


def _question_id(question: str) -> str:
    # Case and spacing edits keep the id; rewording the question makes a new entry.
    normalized = " ".join(question.casefold().split())
    return "faq-" + hashlib.sha256(normalized.encode()).hexdigest()[:16]


# --- writing -----------------------------------------------------------------------------------


def import_catalog(
    store: Store,
    shop_id: str,
    path: str | Path,
    *,
    shop_name: str | None = None,
    currency: str | None = None,
    settings: Mapping[str, Any] | None = None,
    prune: bool = False,
    snapshots: CatalogSnapshots | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a catalogue file into the shop's "products", creating the shop if it is missing.

    ``settings`` (the keys of ``python -m shared shop set``) change the shop first; ``shop_name``
    and ``currency`` set up a new shop, whose other settings are guessed from the catalogue and
    reported in ``guesses``. ``currency`` (else the shop's) prices the products. The settings
    are checked and the whole file is parsed before anything is written. With ``prune`` (a full
    export), products the file no longer has — deleted, drafted or archived in the shop — are
    removed, so the assistant stops offering them. ``snapshots`` gets the new version's
    snapshot, for cold instances to build their index from. ``progress`` hears how many of the
    changed products are written, a chunk at a time.
    """
    settings = settings or {}
    doc = store.get(shop_id, "shops", shop_id)
    if doc is not None:
        stored = Shop.from_doc(doc)
        shop = apply_settings(stored, settings)
        parsed = load_products(path, currency=currency or shop.currency, shop_url=shop.url)
        if shop != stored:
            shop = update_shop(store, shop_id, settings)
        docs = [(p.id, p.to_doc()) for p in parsed.products]
        return _save(
            store,
            shop,
            True,
            PRODUCTS,
            docs,
            parsed.errors,
            parsed.skipped,
            prune,
            snapshots,
            progress,
        )

    given = {
        **settings,
        **({"name": shop_name} if shop_name else {}),
        **({"currency": currency} if currency else {}),
    }
    shop = new_shop(shop_id, given)
    # Unpriced (""): the currency may be guessed from the products.
    parsed = load_products(
        path, currency=shop.currency if "currency" in given else "", shop_url=shop.url
    )
    shop, guesses = _guess_settings(shop, given.keys(), parsed.products)
    products = [
        p if p.currency else p.model_copy(update={"currency": shop.currency})
        for p in parsed.products
    ]
    if any(not p.url for p in products) and not shop.url:
        guesses.append(Guess("url", "", "not set, so product cards have no link"))
    docs = [(p.id, p.to_doc()) for p in products]
    report = _save(
        store,
        shop,
        False,
        PRODUCTS,
        docs,
        parsed.errors,
        parsed.skipped,
        prune,
        snapshots,
        progress,
    )
    return replace(report, guesses=guesses)


def load_settings(path: str | Path) -> dict[str, Any]:
    """A shop's settings file: one JSON object of ``shop set`` keys (checked when applied)."""
    path = Path(path)
    settings = _parse_json(_read_text(path), path.name)
    if not isinstance(settings, dict):
        raise ImportFileError(f'{path.name}: expected a JSON object of settings ({{"name": …}})')
    return settings


def import_faq(
    store: Store,
    shop_id: str,
    path: str | Path,
    *,
    prune: bool = False,
    snapshots: CatalogSnapshots | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a FAQ file into the shop's "faq", creating the shop if it is missing (and
    ``snapshots`` the new version's snapshot); ``progress`` as for ``import_catalog``."""
    doc = store.get(shop_id, "shops", shop_id)
    shop = Shop.from_doc(doc) if doc is not None else new_shop(shop_id, {})
    parsed = load_faq(path)
    docs = [(e.id, e.to_doc()) for e in parsed.entries]
    exists = doc is not None
    return _save(store, shop, exists, "faq", docs, parsed.errors, 0, prune, snapshots, progress)


def seed_demo(store: Store, shop_id: str = "demo") -> SeedReport:
    """Load the bundled demo shop (Maison Teranga); running it again changes nothing.

    An existing shop keeps its settings.
    """
    create_shop(store, new_shop(shop_id, load_settings(DEMO_DIR / "shop.json")))
    return SeedReport(
        catalog=import_catalog(store, shop_id, DEMO_DIR / "catalog.csv"),
        faq=import_faq(store, shop_id, DEMO_DIR / "faq.json"),
    )


# --- guessing a new shop's settings ------------------------------------------------------------

# Words that tell a French catalogue from an English one (titles and descriptions).
_CATALOGUE_WORDS = {
    "fr": frozenset("le la les des du de un une et en pour avec sans sur au aux est vos".split()),
    "en": frozenset("the and for with without of to in on is are your".split()),
}
_LANGUAGE_NAMES = {"fr": "French", "en": "English"}
_CFA_PRICES = 1000  # a median price from which whole prices are francs CFA, not euros
# The country a currency most likely means for a shop (XOF: eight countries; Senegal first).
_CURRENCY_REGIONS = {
    "XOF": "SN", "XAF": "CM", "EUR": "FR", "USD": "US", "GBP": "GB", "CAD": "CA", "AUD": "AU",
    "CHF": "CH", "NGN": "NG", "GHS": "GH", "MAD": "MA", "TND": "TN", "DZD": "DZ", "EGP": "EG",
    "KES": "KE", "UGX": "UG", "TZS": "TZ", "RWF": "RW", "GNF": "GN", "CDF": "CD", "ETB": "ET",
    "ZAR": "ZA", "MUR": "MU", "INR": "IN", "JPY": "JP", "CNY": "CN", "BRL": "BR", "AED": "AE",
}  # fmt: skip


def _guess_settings(
    shop: Shop, given: Iterable[str], products: Sequence[Product]
) -> tuple[Shop, list[Guess]]:
    """``shop`` with what nobody gave guessed from the catalogue, each guess in order, every
    one from the evidence before it (the region from the currency, the zone from the region)."""
    given = set(given)
    guesses: list[Guess] = []
    if "name" not in given:
        guesses.append(Guess("name", shop.name, "the shop id"))
    if "languages" not in given:
        lang = _catalogue_language(products)
        if lang is not None:
            shop = apply_settings(shop, {"languages": [lang, *(x for x in LANGUAGES if x != lang)]})
        reason = f"{_LANGUAGE_NAMES[lang]} catalogue" if lang else "default"
        guesses.append(Guess("languages", ",".join(shop.languages), reason))
    if "currency" not in given:
        code, reason = _currency_of(products, shop.languages[0])
        shop = apply_settings(shop, {"currency": code})
        guesses.append(Guess("currency", code, reason))
    if "phone_region" not in given:
        region = _CURRENCY_REGIONS.get(shop.currency)
        if region is not None:
            shop = apply_settings(shop, {"phone_region": region})
        reason = f"currency {shop.currency}" if region else "default"
        guesses.append(Guess("phone_region", shop.phone_region, reason))
    if "timezone" not in given:
        zones = _region_zones(shop.phone_region)
        if len(zones) == 1:
            shop = apply_settings(shop, {"timezone": zones[0]})
            reason = f"phone region {shop.phone_region}"
        else:
            reason = f"default, {shop.phone_region} has several" if zones else "default"
        guesses.append(Guess("timezone", shop.timezone, reason))
    return shop, guesses


def _catalogue_language(products: Sequence[Product]) -> str | None:
    """The language most of the catalogue's common words are in; None when they do not say."""
    words = Counter(
        word
        for product in products
        for word in re.findall(r"[^\W\d_]+", f"{product.title} {product.description}".lower())
    )
    counts = {
        lang: sum(words[word] for word in common) for lang, common in _CATALOGUE_WORDS.items()
    }
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > max(n for lang, n in counts.items() if lang != best) else None


def _currency_of(products: Sequence[Product], lang: str) -> tuple[str, str]:
    """The currency the products' prices are most likely in, and why."""
    priced = Counter(p.currency for p in products if p.currency)  # our JSON may say it
    if priced:
        return priced.most_common(1)[0][0], "the catalogue's prices"
    prices = sorted(v.price for p in products for v in p.variants)
    if not prices:
        return "XOF", "default"
    # A franc CFA price is thousands without cents (1 EUR is 656 XOF); euros and dollars are
    # smaller or have cents (Shopify writes "18.00" either way, so only real cents count).
    whole = all(price == price.to_integral_value() for price in prices)
    if whole and prices[len(prices) // 2] >= _CFA_PRICES:
        return "XOF", "whole prices in thousands"
    name = _LANGUAGE_NAMES.get(lang, lang)
    return ("EUR" if lang == "fr" else "USD"), f"prices in units, {name} catalogue"


def _region_zones(region: str) -> list[str]:
    """The IANA time zones of a country, from the zone database's table."""
    from importlib.resources import files

    try:
        table = (files("tzdata.zoneinfo") / "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return []
    rows = (line.split("\t") for line in table.splitlines() if not line.startswith("#"))
    return [row[2] for row in rows if len(row) > 2 and row[0] == region]


def _save(
    store: Store,
    shop: Shop,
    exists: bool,
    collection: str,
    docs: list[tuple[str, dict[str, Any]]],
    errors: list[RowError],
    skipped: int,
    prune: bool,
    snapshots: CatalogSnapshots | None,
    progress: Progress | None,
) -> ImportReport:
    if exists:
        index_shop(store, shop.id)  # a shop stored before the index: listed on its next import
    else:
        create_shop(store, shop)
    writes: list[tuple[str, dict[str, Any]]] = []
    restocked: list[str] = []
    created = unchanged = 0
    for start in range(0, len(docs), _BATCH):
        batch = docs[start : start + _BATCH]
        stored = store.get_many(shop.id, collection, [doc_id for doc_id, _ in batch])
        for doc_id, data in batch:
            old = stored.get(doc_id)
            if old is not None and old.data == data:
                unchanged += 1
                continue
            writes.append((doc_id, data))
            created += old is None
            if collection == PRODUCTS and old is not None and _back_in_stock(old.data, data):
                restocked.append(doc_id)
    kept = {doc_id for doc_id, _ in docs}
    stale = [d.id for d in store.scan(shop.id, collection) if d.id not in kept] if prune else []
    # Set while an import writes: a rerun after one that stopped half-way (which then finds
    # everything "unchanged") still moves the version, so warm instances rebuild their index.
    interrupted = store.get(shop.id, _IMPORTS, collection) is not None
    removed = 0
    if writes or stale or interrupted:
        store.put(shop.id, _IMPORTS, collection, {"started_at": time.time()})
        for start in range(0, len(writes), _WRITE_CHUNK):
            store.put_many(shop.id, collection, dict(writes[start : start + _WRITE_CHUNK]))
            if progress is not None:
                progress(min(start + _WRITE_CHUNK, len(writes)), len(writes))
        removed = sum(store.delete(shop.id, collection, doc_id) for doc_id in stale)
        now = time.time()
        store.put_many(shop.id, RESTOCKS, {doc_id: {"at": now} for doc_id in restocked})
        version = store.increment(shop.id, "shops", shop.id, "catalog_version")
        store.delete(shop.id, _IMPORTS, collection)
        if snapshots is not None:
            snapshots.refresh(shop.id)
    else:  # nothing changed: caches stay valid, the version stays
        doc = store.get(shop.id, "shops", shop.id)
        version = int(doc.data.get("catalog_version", 0)) if doc else 0
    updated = len(writes) - created
    return ImportReport(collection, created, updated, unchanged, skipped, errors, version, removed)


def _back_in_stock(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def available(data: dict[str, Any]) -> bool:
        return any(v.get("available", True) for v in data.get("variants", []))

    return available(new) and not available(old)


# --- reading files -----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path.name}: not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from exc
    if not text.strip():
        raise ImportFileError(f"{path.name}: the file is empty")
    return text


def _is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("[", "{")


def _parse_json(text: str, name: str) -> Any:
    """Refuse, before anything is written, what would only fail while writing: nesting deeper
    than any catalogue (later steps recurse) and a lone surrogate escape such as ``"\\ud800"``,
    which json accepts but no UTF-8 store can hold."""
    try:  # exact prices: never through float
        return jsonsafe.loads(text, max_depth=_MAX_JSON_DEPTH, parse_float=Decimal)
    except InvalidInputError as exc:
        raise ImportFileError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class _Row:
    line: int  # the physical line the row starts on
    cells: Sequence[str]
    columns: Mapping[str, int]

    def get(self, column: str) -> str:
        index = self.columns.get(column)
        return self.cells[index].strip() if index is not None and index < len(self.cells) else ""


def _csv_rows(
    text: str,
    name: str,
    required: Sequence[str],
    aliases: Mapping[str, str],
    single_line: Sequence[str] = (),
) -> Iterator[_Row]:
    """The non-blank data rows; column names are matched case-insensitively.

    A file that does not parse cleanly raises ImportFileError naming the line: a quote left
    open swallows the lines after it into one cell (a product titled with raw CSV), so quotes
    are read strictly, and a ``single_line`` column whose cell spans lines is refused too (the
    quote closed somewhere further down).
    """
    first_line = text.split("\n", 1)[0]
    # Excel in a French locale saves "CSV" with semicolons.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns: dict[str, int] | None = None
    line = 1  # a quoted cell may span lines, so rows and lines are counted apart
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if columns is None:
                    columns = _header(cells, aliases)
                    missing = [c for c in required if c.lower() not in columns]
                    if missing:
                        raise ImportFileError(
                            f"{name}: line {line}: missing column(s) {', '.join(missing)} "
                            f"in the header ({delimiter!r}-separated)"
                        )
                else:
                    row = _Row(line, cells, columns)
                    _check_single_line(row, single_line, reader.line_num, name)
                    yield row
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(
            f"{name}: line {line}: unbalanced quotes, a quoted cell opened on this line is not "
            f"closed properly (read up to line {reader.line_num}: {exc}); nothing was imported"
        ) from exc


def _check_single_line(row: _Row, columns: Sequence[str], last_line: int, name: str) -> None:
    for column in columns:
        if "\n" in row.get(column) or "\r" in row.get(column):
            raise ImportFileError(
                f"{name}: line {row.line}: unbalanced quotes, the {column!r} cell runs on to "
                f"line {last_line}; nothing was imported"
            )


def _header(cells: Sequence[str], aliases: Mapping[str, str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(cells):
        key = " ".join(name.lower().split())
        columns.setdefault(aliases.get(key, key), index)
    return columns


# --- small conversions -------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n- " if tag == "li" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: a line per block, "- " before list items, spaces
    collapsed, entities decoded."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line not in ("", "-"))


def _money(value: object, label: str) -> Decimal:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        raise _MalformedError(f"{label} is missing")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _MalformedError(f"{label} {value!r} is not a number")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _MalformedError(f"{label} {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise _MalformedError(f"{label} {value!r} is not a valid price")
    return amount


def _optional_money(value: object, label: str) -> Decimal | None:
    empty = value is None or (isinstance(value, str) and not value.strip())
    return None if empty else _money(value, label)


def _integer(text: str, label: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise _MalformedError(f"{label} {text!r} is not a whole number") from None


def _position(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else _UNPOSITIONED


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _id_text(value: object) -> str:
    """An id given as text or as a number (Shopify's ids are numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _tags(value: object) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return list(dict.fromkeys(t.strip() for t in parts if isinstance(t, str) and t.strip()))


def _key(text: str) -> str:
    """``text`` as a store id: accents folded, other refused characters turned into '-'."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    key = _KEY_REFUSED.sub("-", folded).strip("-._:@+=~")[:200]
    return key or "k-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors()[:3]
    )
