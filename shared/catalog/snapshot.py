"""Catalogue snapshots: what a shop's retrieval index is built from, as one compressed object.

A cold instance would otherwise scan the whole catalogue from the store (on DynamoDB, about
2,100 strongly consistent read units at 10,000 products, for every cold instance at once after
a deploy or an import). Instead the importer (and ``embed-catalog``) writes the catalogue of the
new version as one object, and a cold instance reads that object and builds its index from it.

The object is ``catalog/{shop}/{version}-{token}.json.gz`` in the blob store
(``CATALOG_BLOB_URL``): gzip of a header line (format, shop, version, SHA-256 of the body) and
the body, JSON data only. The shop's ``catalog_snapshot`` document in the store names the
current object: a snapshot is used only when that document names it for the shop's current
version, so objects left from another store (a dev database recreated, its versions starting
again at 1) are never read. A missing, unreadable or corrupt snapshot is logged and the index
is built from the store, as before: a snapshot never fails a turn.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import zlib
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared.blob.exceptions import BlobError
from shared.catalog.retrieval import CatalogData, read_catalog
from shared.exceptions import StoreError
from shared.log import log_warning
from shared.models import FaqEntry, Product
from shared.store import Store

if TYPE_CHECKING:
    from shared.blob import Blob

FORMAT = 1
POINTER = "catalog_snapshot"  # the store collection (and document id) naming the current object
CONTENT_TYPE = "application/gzip"


class SnapshotUnusableError(Exception):
    """A snapshot object that cannot be trusted: corrupt, of another format, shop or version."""


def encode(shop: str, version: int, data: CatalogData) -> bytes:
    body = json.dumps(
        {
            "products": [p.model_dump(mode="json") for p in data.products],
            "faq": [f.model_dump(mode="json") for f in data.faq],
            "vectors": data.vectors,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    header = {
        "format": FORMAT,
        "shop": shop,
        "catalog_version": version,
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return gzip.compress(json.dumps(header).encode() + b"\n" + body, mtime=0)


def decode(raw: bytes, shop: str, version: int) -> CatalogData:
    """The catalogue in ``raw``, checked; raises SnapshotUnusableError."""
    try:
        header_line, _, body = gzip.decompress(raw).partition(b"\n")
        header = json.loads(header_line)
        if not isinstance(header, dict):
            raise SnapshotUnusableError("header")
        if header.get("format") != FORMAT:
            raise SnapshotUnusableError("format")
        if (header.get("shop"), header.get("catalog_version")) != (shop, version):
            raise SnapshotUnusableError("version")
        if header.get("sha256") != hashlib.sha256(body).hexdigest():
            raise SnapshotUnusableError("checksum")
        content = json.loads(body)
        return CatalogData(
            products=[Product.model_validate(p) for p in content["products"]],
            faq=[FaqEntry.model_validate(f) for f in content["faq"]],
            vectors=list(content["vectors"]),
        )
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError) as error:
        # ValueError covers bad JSON and pydantic's ValidationError.
        reason = "data" if isinstance(error, ValidationError | KeyError | TypeError) else "encoding"
        raise SnapshotUnusableError(reason) from error


class CatalogSnapshots:
    """Reads and writes the snapshots of every shop's catalogue; the blob store is opened on
    first use."""

    def __init__(self, store: Store, blob_url: str) -> None:
        self._store = store
        self._blob_url = blob_url

    @cached_property
    def blob(self) -> Blob:
        from shared.blob import open_blob  # on the first cold build, not at import

        return open_blob(self._blob_url)

    def load(self, shop: str, version: int) -> CatalogData | None:
        """The catalogue of ``version``, or None when it has no usable snapshot."""
        try:
            pointer = self._store.get(shop, POINTER, POINTER)
            if pointer is None or pointer.data.get("catalog_version") != version:
                return None
            data = decode(self.blob.get(str(pointer.data["key"])).data, shop, version)
        except (BlobError, StoreError, SnapshotUnusableError) as error:
            reason = str(error) if isinstance(error, SnapshotUnusableError) else "unreachable"
            log_warning("catalog_snapshot_unusable", shop=shop, version=version, reason=reason)
            return None
        return data

    def save(self, shop: str, version: int, data: CatalogData) -> None:
        """Write ``data`` (read after ``version`` was: that version or newer) as the snapshot of
        ``version``, unless a newer version has one already. A failure is logged only."""
        key = f"catalog/{shop}/{version}-{secrets.token_hex(8)}.json.gz"
        try:
            pointer = self._store.get(shop, POINTER, POINTER)
            if pointer is not None and int(pointer.data.get("catalog_version", 0)) > version:
                return  # written by an instance that read a newer shop: keep it
            raw = encode(shop, version, data)
            self.blob.put(key, raw, content_type=CONTENT_TYPE)
            # The object first: the pointer never names a missing one.
            self._store.put(shop, POINTER, POINTER, {"catalog_version": version, "key": key})
            if pointer is not None:  # no longer named: no instance reads it again
                self.blob.delete(str(pointer.data["key"]))
        except (BlobError, StoreError) as error:
            log_warning("catalog_snapshot_not_saved", shop=shop, error=type(error).__name__)

    def refresh(self, shop: str) -> None:
        """Snapshot the shop's catalogue as the store now holds it, unless its version has a
        snapshot already (after an import or an embedding, which move the version when they
        change something)."""
        doc = self._store.get(shop, "shops", shop)
        if doc is None:
            return
        # The version first: the catalogue read after it is of that version or newer.
        version = int(doc.data.get("catalog_version", 0))
        pointer = self._store.get(shop, POINTER, POINTER)
        if pointer is None or pointer.data.get("catalog_version") != version:
            self.save(shop, version, read_catalog(self._store, shop))
