"""``once``: run a piece of work at most once per key, safe under concurrent duplicates.

Built on the store's create-only write (never read-then-write), in the manner of Powertools'
idempotency layer: a record is claimed ``in_progress`` with a short expiry, marked ``done`` with
the long one on success, and released on failure so a retry can run. A worker that dies while
holding a claim frees it when ``in_progress_ttl`` runs out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from shared.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
)
from shared.log import log_event
from shared.store.base import Store

COLLECTION = "idempotency"
WEEK = 7 * 24 * 3600  # Meta retries an undelivered webhook for up to seven days


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
        # The work is done: failing to record it must not fail the caller (who would retry and
        # do it again). A few tries; if the store stays down the claim expires and a duplicate
        # may run again after in_progress_ttl, which is logged.
        for attempt in range(3):
            done = time.time()
            try:
                self.store.update(
                    shop,
                    COLLECTION,
                    doc_id,
                    {"status": "done", "at": done},
                    if_version=claim.version,
                    expires_at=done + self.ttl,
                )
                return
            except (PreconditionFailedError, NotFoundError):
                return  # the claim expired during the work; its new holder records the outcome
            except StoreError:
                time.sleep(0.05 * 2**attempt)
        log_event("idempotency_unrecorded", collection=COLLECTION)
