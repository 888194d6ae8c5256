"""The document-store port.

Every key is scoped by shop. A collection path is a name, or a name nested under a document
(``conversations/{id}/messages``) so that one conversation's messages share a partition on every
backend. The base class validates keys, sizes and expiry, encodes cursors and defines the
semantics; a backend implements a handful of small primitives (``_get_many``, ``_write``,
``_delete``, ``_query``, ``_increment``, ``ping``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from shared.exceptions import (
    DocumentTooLargeError,
    InvalidKeyError,
    NotFoundError,
    StoreError,
)

Scalar = str | int | float | bool

_SHOP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# No "/" (a path separator everywhere), no leading "." or "__" (reserved by Firestore).
_ID_RE = re.compile(r"^(?!__)[A-Za-z0-9_-][A-Za-z0-9._:@+=~-]{0,255}$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_QUERY_LIMIT = 500


@dataclass(frozen=True)
class Doc:
    """A stored document: its id, its data and a version that grows by one on every write."""

    id: str
    data: dict[str, Any]
    version: int
    expires_at: float | None = None


@dataclass(frozen=True)
class Page:
    items: list[Doc]
    cursor: str | None


class Expect(Enum):
    """The precondition of a write."""

    ANY = "any"  # upsert
    ABSENT = "absent"  # create-only; an expired document counts as absent
    VERSION = "version"  # replace only if the stored version is the one given


@dataclass(frozen=True)
class Key:
    shop: str
    collection: str
    id: str


@dataclass(frozen=True)
class Write:
    """A validated write: ``data`` is plain JSON, ``if_version`` is set only under VERSION."""

    key: Key
    data: dict[str, Any]
    expires_at: float | None
    expect: Expect
    if_version: int | None
    now: float


@dataclass(frozen=True)
class QuerySpec:
    """A validated query; ``after`` is the (order value, id) of the last item already returned."""

    shop: str
    collection: str
    where: Mapping[str, Scalar]
    order_by: str | None
    descending: bool
    limit: int
    after: tuple[Any, str] | None
    now: float


def check_shop(shop: str) -> str:
    if not isinstance(shop, str) or not _SHOP_RE.fullmatch(shop):
        raise InvalidKeyError("shop must be 1-63 chars of a-z, 0-9, '-' or '_'")
    return shop


def check_collection(collection: str) -> str:
    parts = collection.split("/") if isinstance(collection, str) else [""]
    if len(parts) % 2 != 1 or not all(
        (_NAME_RE if i % 2 == 0 else _ID_RE).fullmatch(p) for i, p in enumerate(parts)
    ):
        raise InvalidKeyError("collection must be 'name' or 'name/{id}/name'")
    return collection


def check_id(doc_id: str) -> str:
    if not isinstance(doc_id, str) or not _ID_RE.fullmatch(doc_id):
        raise InvalidKeyError("document id must be 1-256 chars of A-Z a-z 0-9 . _ : @ + = ~ -")
    return doc_id


def _check_field(field: str) -> str:
    if not isinstance(field, str) or not _FIELD_RE.fullmatch(field):
        raise InvalidKeyError(f"field name {field!r} is not a plain identifier")
    return field


def encoded_size(data: Mapping[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def _encode_cursor(after: tuple[Any, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def cursor_after(doc: Doc, order_by: str | None) -> str:
    """The cursor of a query (ordered by ``order_by``) that resumes after ``doc``: how a reader
    that stops inside a page picks up where it stopped."""
    return _encode_cursor((doc.data.get(order_by) if order_by else doc.id, doc.id))


def _decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        value, doc_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidKeyError("malformed cursor") from exc
    return value, check_id(doc_id)


class Store(ABC):
    """A document store; see the module docstring. Thread-safe."""

    backend: ClassVar[str]
    max_document_bytes: ClassVar[int]

    # --- public API: validation and semantics live here --------------------------------------

    def get(self, shop: str, collection: str, doc_id: str) -> Doc | None:
        return self.get_many(shop, collection, [doc_id]).get(doc_id)

    def get_many(self, shop: str, collection: str, ids: Sequence[str]) -> dict[str, Doc]:
        keys = [self._key(shop, collection, i) for i in dict.fromkeys(ids)]
        if not keys:
            return {}
        now = time.time()
        found = self._get_many(keys)
        return {k: d for k, d in found.items() if not _expired(d, now)}

    def put(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        data: Mapping[str, Any],
        *,
        expires_at: float | None = None,
    ) -> Doc:
        """Create or replace a document."""
        return self._checked_write(shop, collection, doc_id, data, expires_at, Expect.ANY, None)

    def put_many(self, shop: str, collection: str, items: Mapping[str, Mapping[str, Any]]) -> None:
        """Create or replace many documents (``id -> data``), as ``put`` would each: the same
        stored shape, each version one more than the stored one, no expiry. Every item is
        checked before anything is written; the backend writes them in as few requests as it
        can (a batch is atomic on every backend, but a call may span several batches)."""
        if not isinstance(items, Mapping):
            raise StoreError("put_many takes a mapping of document id to data")
        now = time.time()
        writes = [
            self._checked(shop, collection, doc_id, data, None, Expect.ANY, None, now)
            for doc_id, data in items.items()
        ]
        if writes:
            self._put_many(writes)

    def create(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        data: Mapping[str, Any],
        *,
        expires_at: float | None = None,
    ) -> Doc:
        """Create a document; raises AlreadyExistsError if a live one has that key."""
        return self._checked_write(shop, collection, doc_id, data, expires_at, Expect.ABSENT, None)

    def update(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        data: Mapping[str, Any],
        *,
        if_version: int,
        expires_at: float | None = None,
    ) -> Doc:
        """Replace a document only if it is still at ``if_version``.

        Raises NotFoundError if it is gone, PreconditionFailedError if it changed.
        """
        return self._checked_write(
            shop, collection, doc_id, data, expires_at, Expect.VERSION, if_version
        )

    def delete(
        self, shop: str, collection: str, doc_id: str, *, if_version: int | None = None
    ) -> bool:
        """Delete a document; returns whether a live one was there. With ``if_version`` a
        changed live document raises PreconditionFailedError and is kept."""
        return self._delete(self._key(shop, collection, doc_id), if_version)

    def query(
        self,
        shop: str,
        collection: str,
        *,
        where: Mapping[str, Scalar] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Documents whose fields equal ``where``, ordered by ``order_by`` (then id) or by id.

        Documents lacking the ``order_by`` field are not returned (as on Firestore).
        """
        where = dict(where or {})
        for field, value in where.items():
            _check_field(field)
            if isinstance(value, bool | str | int | float) is False:
                raise InvalidKeyError(f"where[{field!r}] must be a string, number or boolean")
        if order_by is not None:
            _check_field(order_by)
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise InvalidKeyError(f"limit must be between 1 and {MAX_QUERY_LIMIT}")
        spec = QuerySpec(
            shop=check_shop(shop),
            collection=check_collection(collection),
            where=where,
            order_by=order_by,
            descending=descending,
            limit=limit + 1,  # one more tells whether there is a next page
            after=_decode_cursor(cursor) if cursor else None,
            now=time.time(),
        )
        docs = self._query(spec)
        if len(docs) <= limit:
            return Page(items=docs, cursor=None)
        docs = docs[:limit]
        return Page(items=docs, cursor=cursor_after(docs[-1], order_by))

    def scan(
        self, shop: str, collection: str, *, where: Mapping[str, Scalar] | None = None
    ) -> Iterator[Doc]:
        """Every matching document, by id, a page at a time."""
        cursor = None
        while True:
            page = self.query(shop, collection, where=where, limit=MAX_QUERY_LIMIT, cursor=cursor)
            yield from page.items
            if (cursor := page.cursor) is None:
                return

    def increment(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        field: str,
        amount: int = 1,
        *,
        expires_at: float | None = None,
    ) -> int:
        """Atomically add ``amount`` to an integer field (created at 0) and return the new value.

        ``expires_at`` applies when the counter is created; an expired counter restarts at 0.
        """
        key = self._key(shop, collection, doc_id)
        return self._increment(key, _check_field(field), amount, expires_at, time.time())

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailableError unless the backend answers."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections."""

    # --- backend primitives ------------------------------------------------------------------

    @abstractmethod
    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        """The stored documents among ``keys`` (all in one collection), expired ones included."""

    @abstractmethod
    def _write(self, write: Write) -> Doc:
        """Store ``write.data`` atomically under ``write.expect``; the version grows by one.

        Raises AlreadyExistsError (ABSENT and a live document exists), NotFoundError (VERSION
        and no live document) or PreconditionFailedError (VERSION and another version).
        """

    def _put_many(self, writes: Sequence[Write]) -> None:
        """Store unconditional writes (``Expect.ANY``, no expiry) of one collection; a backend
        with a batch write overrides this loop."""
        for write in writes:
            self._write(write)

    @abstractmethod
    def _delete(self, key: Key, if_version: int | None) -> bool: ...

    @abstractmethod
    def _query(self, spec: QuerySpec) -> list[Doc]:
        """Up to ``spec.limit`` live matching documents, in order, strictly after ``spec.after``."""

    @abstractmethod
    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int: ...

    # --- helpers -----------------------------------------------------------------------------

    def _key(self, shop: str, collection: str, doc_id: str) -> Key:
        return Key(check_shop(shop), check_collection(collection), check_id(doc_id))

    def _checked_write(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        data: Mapping[str, Any],
        expires_at: float | None,
        expect: Expect,
        if_version: int | None,
    ) -> Doc:
        return self._write(
            self._checked(
                shop, collection, doc_id, data, expires_at, expect, if_version, time.time()
            )
        )

    def _checked(
        self,
        shop: str,
        collection: str,
        doc_id: str,
        data: Mapping[str, Any],
        expires_at: float | None,
        expect: Expect,
        if_version: int | None,
        now: float,
    ) -> Write:
        key = self._key(shop, collection, doc_id)
        if not isinstance(data, Mapping):
            raise StoreError("document data must be a mapping")
        try:  # a deep copy that proves it is JSON every backend can hold (no NaN, no Infinity)
            plain = json.loads(json.dumps(dict(data), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"document {collection}/{doc_id} is not plain JSON") from exc
        size = encoded_size(plain)
        if size > self.max_document_bytes:
            raise DocumentTooLargeError(
                f"document {collection}/{doc_id} is {size} bytes; "
                f"the {self.backend} store holds at most {self.max_document_bytes}"
            )
        return Write(key, plain, expires_at, expect, if_version, now)


def batches(writes: Sequence[Write], max_items: int, max_bytes: int) -> Iterator[list[Write]]:
    """``writes`` in order, cut into batches of at most ``max_items`` whose documents' encoded
    sizes add up to at most ``max_bytes`` (a document larger alone still gets a batch)."""
    batch: list[Write] = []
    size = 0
    for write in writes:
        item_size = encoded_size(write.data)
        if batch and (len(batch) == max_items or size + item_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(write)
        size += item_size
    if batch:
        yield batch


def _expired(doc: Doc, now: float) -> bool:
    return doc.expires_at is not None and doc.expires_at <= now


def is_live(doc: Doc | None, now: float) -> bool:
    return doc is not None and not _expired(doc, now)


def _order_value(value: Any) -> tuple[int, Any]:
    # One total order across types, as Firestore's: booleans, numbers, strings, then the rest.
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True))


def sort_key(order_by: str | None, doc: Doc) -> tuple[Any, str]:
    return (_order_value(doc.data.get(order_by)) if order_by else doc.id, doc.id)


def filter_and_page(docs: Sequence[Doc], spec: QuerySpec) -> list[Doc]:
    """Apply ``spec`` in memory: for backends (and stand-ins) that cannot order natively."""
    matching = [
        d
        for d in docs
        if not _expired(d, spec.now)
        and all(_equal(d.data.get(f), v) for f, v in spec.where.items())
        and (spec.order_by is None or d.data.get(spec.order_by) is not None)
    ]
    matching.sort(key=lambda d: sort_key(spec.order_by, d), reverse=spec.descending)
    if spec.after is not None:
        after = (_order_value(spec.after[0]) if spec.order_by else spec.after[0], spec.after[1])
        matching = [
            d
            for d in matching
            if (
                sort_key(spec.order_by, d) < after
                if spec.descending
                else sort_key(spec.order_by, d) > after
            )
        ]
    return matching[: spec.limit]


def _equal(stored: Any, wanted: Scalar) -> bool:
    # bool is an int in Python; True must not match 1.
    return (type(stored) is type(wanted) and stored == wanted) or (
        isinstance(stored, int | float)
        and isinstance(wanted, int | float)
        and not isinstance(stored, bool)
        and not isinstance(wanted, bool)
        and stored == wanted
    )


__all__ = [
    "Doc",
    "Expect",
    "Key",
    "NotFoundError",
    "Page",
    "QuerySpec",
    "Scalar",
    "Store",
    "Write",
    "batches",
    "filter_and_page",
    "is_live",
]
