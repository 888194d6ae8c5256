"""``once``: run a piece of work at most once per key, safe under concurrent duplicates.

Built on the store's create-only write (never read-then-write), in the manner of Powertools'
idempotency layer: a record is claimed ``in_progress`` with a short expiry, marked ``done`` with
the long one on success, and released on failure so a retry can run. A worker that dies while
holding a claim frees it when ``in_progress_ttl`` runs out.

``begin`` and ``complete`` are the resumable form, for work made of idempotent steps (store a
message, queue it): a claim is never released, it says where the work stands. Only a ``done``
record stops a later caller; one that finds the work ``in_progress``, whatever its age, does it
again to the end, with the data the first caller recorded in its claim (the id it writes
under). Releasing on failure is what this avoids: when the store fails, the release may fail
too, and the provider's next delivery would be taken for a duplicate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from shared.backoff import Backoff
from shared.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    StoreUnavailableError,
)
from shared.log import log_event
from shared.store.base import Store

COLLECTION = "idempotency"
WEEK = 7 * 24 * 3600  # Meta retries an undelivered webhook for up to seven days
_RECORD_BACKOFF = Backoff(attempts=3, base_delay=0.05, max_delay=0.2)


@dataclass(frozen=True)
class Claim:
    """A resumable claim (see ``Idempotency.begin``)."""

    shop: str
    doc_id: str
    done: bool  # the work was completed: nothing is left to do
    data: dict[str, Any]  # what the first caller recorded with its claim
    version: int


def record_id(key: str) -> str:
    # Keys are caller data (message ids, phone-derived ids): stored as digests, any characters.
    return hashlib.sha256(key.encode()).hexdigest()[:48]


class Idempotency:
    def __init__(self, store: Store, *, ttl: float = WEEK, in_progress_ttl: float = 300) -> None:
        self.store = store
        self.ttl = ttl
        self.in_progress_ttl = in_progress_ttl

    def claim(self, shop: str, key: str) -> bool:
        """Mark ``key`` done now; True for the first caller only (one write)."""
        now = time.time()
        try:
            self.store.create(
                shop,
                COLLECTION,
                record_id(key),
                {"status": "done", "at": now},
                expires_at=now + self.ttl,
            )
        except AlreadyExistsError:
            return False
        return True

    def begin(self, shop: str, key: str, data: Mapping[str, Any] | None = None) -> Claim:
        """Claim ``key`` for resumable work, or find where an earlier caller left it.

        A new claim is ``in_progress`` and records ``data``; it lives as long as a done record
        (``ttl``), so that whoever finds it unfinished resumes with the same ``data``. Callers do
        the work unless ``done``, then call ``complete``.
        """
        doc_id = record_id(key)
        for _ in range(3):  # a record that expires between the create and the read: again
            now = time.time()
            try:
                doc = self.store.create(
                    shop,
                    COLLECTION,
                    doc_id,
                    {"status": "in_progress", "at": now, "data": dict(data or {})},
                    expires_at=now + self.ttl,
                )
            except AlreadyExistsError:
                found = self.store.get(shop, COLLECTION, doc_id)
                if found is None:
                    continue
                doc = found
            return Claim(
                shop=shop,
                doc_id=doc_id,
                done=doc.data.get("status") == "done",
                data=dict(doc.data.get("data") or {}),
                version=doc.version,
            )
        raise StoreUnavailableError("the idempotency record kept changing")

    def complete(self, claim: Claim) -> None:
        """Record that ``claim``'s work is done. Best effort: the work is done whether or not
        this is recorded, so failing to record it must not fail the caller (who would do it
        again). A few tries; if the store stays down, a later caller only does the same steps
        again (``once``: after ``in_progress_ttl``), which is logged."""
        for _ in _RECORD_BACKOFF:
            now = time.time()
            try:
                self.store.update(
                    claim.shop,
                    COLLECTION,
                    claim.doc_id,
                    {"status": "done", "at": now, "data": claim.data},
                    if_version=claim.version,
                    expires_at=now + self.ttl,
                )
                return
            except (PreconditionFailedError, NotFoundError):
                return  # the claim expired or another caller resumed and recorded the work
            except StoreError:
                continue
        log_event("idempotency_unrecorded", collection=COLLECTION)

    @contextmanager
    def once(self, shop: str, key: str) -> Iterator[bool]:
        """Yields True to the one caller that should do the work, False to duplicates.

        If the work raises, the claim is released and the error propagates.
        """
        now = time.time()
        doc_id = record_id(key)
        try:
            claim = self.store.create(
                shop,
                COLLECTION,
                doc_id,
                {"status": "in_progress", "at": now},
                expires_at=now + self.in_progress_ttl,
            )
        except AlreadyExistsError:
            yield False
            return
        try:
            yield True
        except BaseException:
            # If our claim expired meanwhile, another worker holds the key now: leave it.
            with suppress(PreconditionFailedError):
                self.store.delete(shop, COLLECTION, doc_id, if_version=claim.version)
            raise
        self.complete(Claim(shop, doc_id, done=False, data={}, version=claim.version))
