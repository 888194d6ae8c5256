"""What a queued WorkItem does, by kind: one place where work kinds are registered, and what
happens to work that fails for good.

Each handler is imported only when an item of its kind arrives (cold start). Every transport
ends here: the in-process queue, the Lambda SQS adapter and the Pub/Sub push adapter call
``deliver`` once per delivery. An item that fails is delivered again by its transport until its
last attempt (``WORKER_MAX_ATTEMPTS``), or at once when retrying cannot help (an unknown kind,
an error whose ``retryable`` is False); then it becomes a dead letter in the store, with its
reason, and an operator lists and replays it (``python -m shared deadletters``).

A dead letter's reason is an error class name and a fixed description (the error class's own
docstring, a provider's error code, where an unexpected error was raised): never an exception's
message, which may quote a customer's text or phone number.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared import events
from shared.backends import load_target
from shared.exceptions import ComptoirError, InvalidInputError, NotFoundError, QueueError
from shared.log import log_event
from shared.queue import dedup_key
from shared.queue.base import Queue, WorkItem
from shared.store.base import Store, check_shop

if TYPE_CHECKING:
    from shared.app import App

HANDLERS: dict[str, str] = {
    "channel_turn": "shared.channels.turn:handle",  # answer a WhatsApp/Telegram conversation
    "notify_operator": "shared.channels.turn:notify_operator",  # a customer asked for a person
    "channel_reengage": "shared.channels.turn:reengage",  # WhatsApp 131047: send the template
    "payment_notice": "shared.ipn:notify",  # a payment settled: tell the customer or operator
    "campaign_batch": "shared.campaigns.runner:handle_batch",  # send a batch of a campaign run
    "scheduled": "shared.schedules:handle",  # a schedule fired: its kind's function (SCHEDULED)
    "consolidate": "shared.consolidator:handle",  # a dead-lettered memory consolidation, replayed
    "consolidate_shop": "shared.consolidator:handle_shop",  # a shop's memory run, or its rest
}

Handler = Callable[["App", WorkItem], None]
COLLECTION = "deadletters"
REPLAY_SUFFIX = "~r"  # appended to a replayed item's dedup id: see ``replay``
_MAX_STORED_BODY = 64 * 1024  # of an unreadable message, kept for the operator to read
_MAX_REASON = 300


class UnknownWorkKindError(QueueError):
    """No handler is registered for this kind of work."""

    retryable = False


# --- processing ------------------------------------------------------------------------------


def process(item: WorkItem, *, app: App) -> None:
    """Run the handler registered for ``item.kind``."""
    handler_for(item.kind)(app, item)


def handler_for(kind: str) -> Handler:
    target = HANDLERS.get(kind)
    if target is None:
        raise UnknownWorkKindError(f"no handler for work kind {kind!r}")
    handler: Handler = load_target(target)
    return handler


def deliver(item: WorkItem, *, app: App) -> None:
    """One delivery of ``item`` (``item.attempt`` counts them, from 1).

    Returns when the work is done or has become a dead letter, so the transport drops the
    message; raises when the transport should deliver it again.
    """
    started = time.perf_counter()
    try:
        process(item, app=app)
    except Exception as exc:
        final = item.attempt >= app.settings.worker_max_attempts or not _retryable(exc)
        reason = failure_reason(exc)
        log_event(
            "work_failed",
            kind=item.kind,
            shop=item.shop,
            attempt=item.attempt,
            reason=reason,
            will_retry=not final,
        )
        if not final:
            raise
        record_dead_letter(app.store, item, reason)
        return
    log_event(
        "work_done",
        kind=item.kind,
        shop=item.shop,
        attempt=item.attempt,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def parse_item(body: str | bytes) -> WorkItem:
    """The WorkItem in a queue message; raises InvalidInputError, whose message is the reason
    (safe to store and show), if it is not one."""
    try:
        item = WorkItem.model_validate_json(body)
        check_shop(item.shop)
    except (ValidationError, ComptoirError) as exc:
        raise InvalidInputError(failure_reason(exc)) from exc
    return item


def _retryable(exc: BaseException) -> bool:
    # ChannelError and LLMError say whether trying again may help; other errors may be transient.
    return getattr(exc, "retryable", True) is not False


def failure_reason(exc: BaseException) -> str:
    """``ErrorClass: description``, built only from what cannot quote customer data."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{e['type']} at {'.'.join(str(p) for p in e['loc']) or 'body'}" for e in exc.errors()
        ]
        detail = "not a work item: " + ", ".join(problems[:3])
    elif isinstance(exc, ComptoirError):
        doc = " ".join((type(exc).__doc__ or "").split())
        detail = doc.split(". ")[0].rstrip(".") or "failed"
        code = getattr(exc, "code", None)
        if isinstance(code, int):
            detail += f" (code {code})"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
        )
        detail = "unexpected error" + where
    return f"{type(exc).__name__}: {detail}"[:_MAX_REASON]


# --- dead letters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    id: str
    at: float
    status: str  # pending, replayed, or unreadable (a message that was not a work item)
    kind: str
    reason: str
    attempts: int
    replayed_at: float | None = None
    replayed_as: str | None = None  # the dead letter the replay would become if it failed too


def dead_letter_id(item: WorkItem) -> str:
    return dedup_key(item)[:24]


def record_dead_letter(store: Store, item: WorkItem, reason: str) -> str:
    """Keep ``item`` with the reason it failed; returns the dead letter's id. Recording the same
    item again (a redelivered last attempt) replaces the record."""
    doc_id = dead_letter_id(item)
    store.put(
        item.shop,
        COLLECTION,
        doc_id,
        {
            "status": "pending",
            "at": time.time(),
            "kind": item.kind,
            "reason": reason,
            "attempts": item.attempt,
            "item": item.model_dump(mode="json"),
        },
    )
    events.record(store, item.shop, "error", work=item.kind, dead_letter_id=doc_id)
    log_event(
        "work_dead_lettered",
        kind=item.kind,
        shop=item.shop,
        attempts=item.attempt,
        dead_letter_id=doc_id,
    )
    return doc_id


def record_unreadable(store: Store, shop: str, message_id: str, body: str, reason: str) -> str:
    """Keep a queue message that is not a work item (under ``shop``, as it names none that can
    be trusted); it cannot be replayed, but nothing is lost."""
    doc_id = hashlib.sha256(f"unreadable\n{message_id}".encode()).hexdigest()[:24]
    store.put(
        shop,
        COLLECTION,
        doc_id,
        {
            "status": "unreadable",
            "at": time.time(),
            "kind": "",
            "reason": reason,
            "attempts": 1,
            "message_id": message_id,
            "body": body[:_MAX_STORED_BODY],
        },
    )
    log_event("work_unreadable", shop=shop, dead_letter_id=doc_id)
    return doc_id


def list_dead_letters(store: Store, shop: str) -> list[DeadLetter]:
    """The shop's dead letters, newest first."""
    letters: list[DeadLetter] = []
    cursor: str | None = None
    while True:
        page = store.query(
            shop, COLLECTION, order_by="at", descending=True, limit=500, cursor=cursor
        )
        letters.extend(_dead_letter(doc.id, doc.data) for doc in page.items)
        if page.cursor is None:
            return letters
        cursor = page.cursor


def replay(store: Store, queue: Queue, shop: str, doc_id: str) -> WorkItem:
    """Send a pending dead letter's item again, as a first attempt, and mark it replayed.

    The item goes out with ``REPLAY_SUFFIX`` added to its dedup id: the original id may still
    be within the queue's deduplication window (5 minutes on SQS), which would drop the replay
    without a word. Handlers therefore read provider ids from the payload, not the dedup id.
    """
    doc = store.get(shop, COLLECTION, doc_id)
    if doc is None:
        raise NotFoundError(f"no dead letter {doc_id!r} in shop {shop!r}")
    status = doc.data.get("status")
    if status != "pending":
        raise InvalidInputError(f"dead letter {doc_id} is {status}: only pending ones replay")
    item = WorkItem.model_validate(doc.data["item"])
    again = item.model_copy(update={"attempt": 1, "dedup_id": item.dedup_id + REPLAY_SUFFIX})
    # Marked first, with the version read: of two operators replaying at once, one wins.
    marked = store.update(
        shop,
        COLLECTION,
        doc_id,
        {
            **doc.data,
            "status": "replayed",
            "replayed_at": time.time(),
            "replayed_as": dead_letter_id(again),
        },
        if_version=doc.version,
    )
    try:
        queue.send(again)
    except BaseException:
        store.update(shop, COLLECTION, doc_id, doc.data, if_version=marked.version)
        raise
    log_event("work_replayed", kind=item.kind, shop=shop, dead_letter_id=doc_id)
    return again


def _dead_letter(doc_id: str, data: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=doc_id,
        at=float(data["at"]),
        status=str(data["status"]),
        kind=str(data.get("kind", "")),
        reason=str(data.get("reason", "")),
        attempts=int(data.get("attempts", 0)),
        replayed_at=data.get("replayed_at"),
        replayed_as=data.get("replayed_as"),
    )
