"""Firestore backend (Native mode), through the ``google-cloud-firestore`` client over gRPC.

Layout: a document lives at ``shops/{shop}/{collection}/{id}``; a nested collection path
(``conversations/c1/messages``) is a subcollection (``shops/{shop}/conversations/c1/messages``),
so one conversation's messages are queried without touching the others. Its fields::

    d    map        the document's data (queries filter and order on ``d.<field>``)
    k    string     the document id again: queries order on it (descending name scans fail)
    v    integer    version, +1 on every write
    exp  double     exact ``expires_at`` (epoch seconds); absent when the document does not expire
    ttl  timestamp  the same instant for a TTL policy on the field ``ttl`` (set one per
                    collection group that expires, e.g. ``idempotency``); TTL deletion is lazy
                    (up to a day or more), so every read filters on ``exp`` itself

Conditional writes are compare-and-swap on the commit, not transactions: read the document,
decide, then write with a precondition Firestore checks atomically (``exists=False`` to create,
``update_time`` equal to the one read to replace or delete). Losing the race means somebody
else wrote, so the loop reads again and decides again; there are no locks to wait on and no
transaction retry budget to exhaust under contention. A put and the increment of a live
counter are single writes with ``Increment`` transforms, whose results give the new values.

Limitations:

- A query needs a composite index over its shape: ``d.<where fields>`` (equality), then
  ``d.<order_by>`` and ``__name__`` in the query's direction. Firestore refuses a query that
  lacks one (FAILED_PRECONDITION, raised here as StoreError) with a link that creates it.
- Expired documents are skipped after reading, not in the query: ``exp`` is absent on documents
  that do not expire, and Firestore cannot match a missing field. TTL keeps them rare; a page
  that lost some to expiry reads on until it is full.
- Firestore holds 1 MiB per document, its path and fields included, and counts 8 bytes per
  number, so a document of many small numbers can pass the JSON size check and still be refused
  (DocumentTooLargeError). It cannot hold arrays directly inside arrays, map keys that are empty
  or of the form ``__x__``, or integers beyond 64 bits (StoreError).
- Documents whose ``order_by`` field is missing or null are not returned by an ordered query.
- The SDK retries a commit that failed as UNAVAILABLE; if the first attempt did land, a retried
  increment counts twice and a retried create reports AlreadyExistsError.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared.exceptions import (
    AlreadyExistsError,
    ConfigError,
    DocumentTooLargeError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    StoreUnavailableError,
)
from shared.store.base import Doc, Expect, Key, QuerySpec, Store, Write, batches, is_live

if TYPE_CHECKING:
    from google.cloud.firestore import (
        Client,
        CollectionReference,
        DocumentReference,
        DocumentSnapshot,
    )

_URL_OPTIONS = {"database"}
# Seconds for a call, its retries included: a function's budget is seconds, while the SDK
# retries reads for up to 300 s and commits for up to 60 s.
_TIMEOUT = 10.0
_PING_TIMEOUT = 2.0
_MAX_ATTEMPTS = 8  # compare-and-swap rounds; each lost round means another writer won
# Firestore's and its emulator's wording for a document over 1 MiB (InvalidArgument).
_TOO_LARGE_RE = re.compile(r"maximum (allowed |entity )?size|longer than \d+ bytes", re.I)
_FIELDS = ["d", "k", "v", "exp", "ttl"]  # what a put sets or clears; nothing else is kept
_BATCH_MAX_ITEMS = 500  # Firestore's limit of writes per commit
# Of the 10 MiB a request may carry: room for the paths and field names.
_BATCH_MAX_BYTES = 8_000_000


class FirestoreStore(Store):
    backend = "firestore"
    # 1 MiB per document, minus room for what is not the data: the path (up to ~730 bytes
    # with the longest ids), the field names, version and expiry, and 32 bytes of overhead.
    max_document_bytes = 1_048_576 - 2_048

    def __init__(self, client: Client, *, owns_client: bool = False) -> None:
        from google.api_core import exceptions as api
        from google.api_core.retry import Retry, if_exception_type

        self.client = client
        self._owns_client = owns_client
        # The SDK's own choice of what to retry, within our time. A commit is not retried
        # after a timeout: it may have landed.
        transient = (api.ServiceUnavailable, api.ResourceExhausted)
        self._read: dict[str, Any] = {
            "retry": Retry(
                predicate=if_exception_type(
                    *transient, api.DeadlineExceeded, api.InternalServerError
                ),
                timeout=_TIMEOUT,
            ),
            "timeout": _TIMEOUT,
        }
        self._commit: dict[str, Any] = {
            "retry": Retry(predicate=if_exception_type(*transient), timeout=_TIMEOUT),
            "timeout": _TIMEOUT,
        }

    @classmethod
    def from_url(cls, url: str, *, client: Client | None = None, **_clients: Any) -> FirestoreStore:
        """``firestore://PROJECT?database=(default)``; an injected client decides both.

        With ``FIRESTORE_EMULATOR_HOST`` set, the SDK talks to that emulator with anonymous
        credentials, so none are needed.
        """
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - _URL_OPTIONS
        if parts.scheme != "firestore" or parts.path not in ("", "/") or unknown:
            raise ConfigError(f"STORE_URL: expected firestore://PROJECT?database=NAME, got {url!r}")
        if client is not None:
            return cls(client)
        # Lazy: the SDK costs ~0.3 s to import, paid only by deployments that use it.
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import firestore

        try:
            client = firestore.Client(
                project=parts.netloc or None, database=options.get("database", "(default)")
            )
        except (GoogleAuthError, OSError) as exc:  # no credentials, or no project to be found
            raise ConfigError(
                f"STORE_URL: cannot open Firestore ({exc}); name the project in the URL and "
                "provide Google credentials, or set FIRESTORE_EMULATOR_HOST"
            ) from exc
        return cls(client, owns_client=True)

    def ping(self) -> None:
        try:
            with _errors():
                # One document read, without the SDK's retries: a health check must answer fast.
                self.client.document("shops", "~ping").get(retry=None, timeout=_PING_TIMEOUT)
        except StoreError as exc:  # refused credentials or database: not usable either
            raise StoreUnavailableError(str(exc)) from exc

    def close(self) -> None:
        if self._owns_client:  # an injected client belongs to its owner
            self.client.close()  # type: ignore[no-untyped-call]

    # --- primitives --------------------------------------------------------------------------

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        with _errors():
            snapshots = self.client.get_all([self._ref(k) for k in keys], **self._read)
            return {doc.id: doc for doc in map(_doc, snapshots) if doc is not None}

    def _write(self, write: Write) -> Doc:
        key = write.key
        ref = self._ref(key)
        with _errors():
            if write.expect is Expect.ANY:
                # (The SDK documents a list of paths for ``merge``; its hint says only bool.)
                result = ref.set(_put_fields(write), merge=_FIELDS, **self._commit)  # type: ignore[arg-type]
                return Doc(
                    key.id, write.data, int(_number(result.transform_results[0])), write.expires_at
                )
            for attempt in range(_MAX_ATTEMPTS):
                # A create-only write first just creates: one call when the key is free.
                unseen = attempt == 0 and write.expect is Expect.ABSENT
                snapshot = None if unseen else ref.get(**self._read)
                current = None if snapshot is None else _doc(snapshot)
                live = is_live(current, write.now)
                if write.expect is Expect.ABSENT and live:
                    raise AlreadyExistsError(f"{key.collection}/{key.id} exists")
                if write.expect is Expect.VERSION:
                    if current is None or not live:
                        raise NotFoundError(f"{key.collection}/{key.id} not found")
                    if current.version != write.if_version:
                        raise PreconditionFailedError(f"{key.collection}/{key.id} has changed")
                version = (current.version if current else 0) + 1
                if self._swap(ref, snapshot, _fields(key, write.data, version, write.expires_at)):
                    return Doc(key.id, write.data, version, write.expires_at)
        raise StoreUnavailableError(f"firestore: {key.collection}/{key.id} kept changing")

    def _put_many(self, writes: Sequence[Write]) -> None:
        # A WriteBatch (one Commit, atomic) of the same merges as ``put``. Not the BulkWriter:
        # its BatchWrite calls are not atomic, and retrying the ones it reports failed is what
        # the SDK's commit retry already does for a whole batch.
        for batch in batches(writes, _BATCH_MAX_ITEMS, _BATCH_MAX_BYTES):
            commit = self.client.batch()
            for write in batch:
                commit.set(self._ref(write.key), _put_fields(write), merge=_FIELDS)  # type: ignore[arg-type]
            with _errors():
                commit.commit(**self._commit)

    def _delete(self, key: Key, if_version: int | None) -> bool:
        from google.api_core.exceptions import FailedPrecondition

        ref = self._ref(key)
        with _errors():
            for _ in range(_MAX_ATTEMPTS):
                snapshot = ref.get(**self._read)
                current = _doc(snapshot)
                if current is None:
                    return False
                live = is_live(current, time.time())
                # A missing or expired document is not a conflict: there is nothing to keep.
                if if_version is not None and live and current.version != if_version:
                    raise PreconditionFailedError(f"{key.collection}/{key.id} has changed")
                unchanged = self.client.write_option(last_update_time=snapshot.update_time)
                try:
                    ref.delete(option=unchanged, **self._commit)
                except FailedPrecondition:
                    continue
                return live
        raise StoreUnavailableError(f"firestore: {key.collection}/{key.id} kept changing")

    def _query(self, spec: QuerySpec) -> list[Doc]:
        from google.cloud.firestore import FieldFilter, Query

        collection = self._collection(spec.shop, spec.collection)
        query: Query | CollectionReference = collection
        for field, value in spec.where.items():
            # Typed as stored: true never equals 1, while 1 equals 1.0, as in the other backends.
            query = query.where(filter=FieldFilter(f"d.{field}", "==", value))
        direction = Query.DESCENDING if spec.descending else Query.ASCENDING
        order = f"d.{spec.order_by}" if spec.order_by else None
        if order is not None:
            if spec.order_by not in spec.where:  # an equality already excludes null
                query = query.where(filter=FieldFilter(order, "!=", None))
            query = query.order_by(order, direction=direction)
        # The id is also stored as the field ``k``: ordering on it works both ways, where
        # descending scans of document names do not (the emulator refuses them).
        query = query.order_by("k", direction=direction)

        def cursor(value: Any, doc_id: str) -> dict[str, Any]:
            position: dict[str, Any] = {"k": doc_id}
            if order is not None:
                position[order] = value
            return position

        after = cursor(*spec.after) if spec.after else None
        docs: list[Doc] = []
        with _errors():
            while True:
                wanted = spec.limit - len(docs)
                page = query.start_after(after) if after else query
                read = [d for d in map(_doc, page.limit(wanted).stream(**self._read)) if d]
                docs += [d for d in read if is_live(d, spec.now)]
                if len(read) < wanted or len(docs) == spec.limit:
                    return docs
                last = read[-1]
                after = cursor(last.data.get(spec.order_by) if spec.order_by else None, last.id)

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        from google.cloud.firestore import Increment

        ref = self._ref(key)
        with _errors():
            for _ in range(_MAX_ATTEMPTS):
                snapshot = ref.get(**self._read)
                current = _doc(snapshot)
                if is_live(current, now):
                    # Server-side increments never conflict; ``update`` requires the document
                    # to exist, and a deleted one is simply read again.
                    from google.api_core.exceptions import NotFound

                    try:
                        result = ref.update(
                            {f"d.{field}": Increment(amount), "v": Increment(1)},
                            **self._commit,
                        )
                    except NotFound:
                        continue
                    # Transform results come in field path order: ``d.…`` before ``v``.
                    return int(_number(result.transform_results[0]))
                # Missing or expired: restart the counter, unless somebody else just did.
                version = (current.version if current else 0) + 1
                if self._swap(ref, snapshot, _fields(key, {field: amount}, version, expires_at)):
                    return amount
        raise StoreUnavailableError(f"firestore: counter {key.collection}/{key.id} kept racing")

    # --- helpers -----------------------------------------------------------------------------

    def _collection(self, shop: str, collection: str) -> CollectionReference:
        return self.client.collection("shops", shop, *collection.split("/"))

    def _ref(self, key: Key) -> DocumentReference:
        return self._collection(key.shop, key.collection).document(key.id)

    def _swap(
        self,
        ref: DocumentReference,
        snapshot: DocumentSnapshot[DocumentReference] | None,
        fields: dict[str, Any],
    ) -> bool:
        """Write ``fields`` only if the document is still as ``snapshot`` saw it, or still
        absent when there is no snapshot; False when another write came first."""
        from google.api_core.exceptions import AlreadyExists, FailedPrecondition
        from google.cloud.firestore import DELETE_FIELD

        try:
            if snapshot is None or not snapshot.exists:
                ref.create(fields, **self._commit)
            else:
                ref.update(
                    {"exp": DELETE_FIELD, "ttl": DELETE_FIELD, **fields},  # unless expiring
                    option=self.client.write_option(last_update_time=snapshot.update_time),
                    **self._commit,
                )
        except (AlreadyExists, FailedPrecondition):
            return False
        return True


def _doc(snapshot: DocumentSnapshot[DocumentReference]) -> Doc | None:
    fields = snapshot.to_dict()
    if fields is None:  # the document does not exist
        return None
    return Doc(
        id=snapshot.id,
        data=fields.get("d", {}),
        version=int(fields.get("v", 0)),
        expires_at=fields.get("exp"),
    )


def _put_fields(write: Write) -> dict[str, Any]:
    """What a put sets: merging exactly ``_FIELDS`` replaces ``d`` whole, raises ``v`` in place
    (1 on a new document) and sets or clears the expiry."""
    from google.cloud.firestore import DELETE_FIELD, Increment

    fields: dict[str, Any] = {"d": write.data, "k": write.key.id, "v": Increment(1)}
    fields.update(_expiry(write.expires_at) or {"exp": DELETE_FIELD, "ttl": DELETE_FIELD})
    return fields


def _fields(
    key: Key, data: dict[str, Any], version: int, expires_at: float | None
) -> dict[str, Any]:
    return {"d": data, "k": key.id, "v": version, **(_expiry(expires_at) or {})}


def _expiry(expires_at: float | None) -> dict[str, Any] | None:
    if expires_at is None:
        return None
    # ``ttl`` is for Firestore's sweeper; ``exp`` keeps the exact value for reads.
    return {"exp": float(expires_at), "ttl": datetime.fromtimestamp(expires_at, tz=UTC)}


def _number(value: Any) -> int | float:
    """A transform result (a Firestore ``Value``): integer, or double when the field was one."""
    number: int | float = value.integer_value if "integer_value" in value else value.double_value
    return number


@contextmanager
def _errors() -> Iterator[None]:
    """Translate the SDK's errors: the one place vendor errors cross."""
    from google.api_core import exceptions as api
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except api.AlreadyExists as exc:
        raise AlreadyExistsError(f"firestore: {exc.message}") from exc
    except api.InvalidArgument as exc:
        if _TOO_LARGE_RE.search(exc.message):
            raise DocumentTooLargeError(f"firestore: {exc.message}") from exc
        raise StoreError(f"firestore: {exc.message}") from exc  # never accepted: not retryable
    except api.FailedPrecondition as exc:
        # Write preconditions are handled where they are set; this is a query whose composite
        # index is missing, and the message says how to create it.
        raise StoreError(f"firestore: {exc.message}") from exc
    except (
        api.Aborted,
        api.ServiceUnavailable,
        api.DeadlineExceeded,
        api.InternalServerError,
        api.TooManyRequests,
        api.Unknown,
        api.RetryError,
        GoogleAuthError,  # credentials that could not be refreshed
    ) as exc:
        raise StoreUnavailableError(f"firestore: {exc}") from exc
    except api.GoogleAPIError as exc:  # permission denied, unauthenticated, ...
        raise StoreError(f"firestore: {exc}") from exc
    except ValueError as exc:  # the SDK refusing a value before sending it
        raise StoreError(f"firestore cannot hold this value: {exc}") from exc
