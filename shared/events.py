"""The shop's event log: what happened, as it happens (the console's live view reads it).

Each event is created once (never replaced) in the per-shop collection ``events`` under a
time-sortable id, which is also its cursor: reading after a cursor, in id order, is reading what
happened since. Events expire after ``KEEP_SECONDS`` (the store's own expiry). Their data are
ids, channels, statuses and counts: never a message's text nor a phone number.

Recording never fails what it records: a store error becomes a log line naming the kind only.

Ids are made on each writer's clock and written a few milliseconds later, so an event may land
just behind one a reader has already passed. A reader therefore stops ``SETTLE_SECONDS`` short
of now: what it has passed is written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.ids import new_sortable_id, sortable_at
from shared.log import log_warning
from shared.store import Store
from shared.store.base import Doc, cursor_after

if TYPE_CHECKING:
    from shared.models import Channel, Message

COLLECTION = "events"
KEEP_SECONDS = 30 * 86400.0
SETTLE_SECONDS = 1.0
PAGE_SIZE = 100
# A chat turn's tool calls travel in its message_out event (data.tools): one write per reply.
Kind = Literal[
    "message_in",
    "message_out",
    "handoff",
    "operator_reply",
    "takeover",
    "release",
    "order_status",
    "payment",
    "campaign_send",
    "error",
]


@dataclass(frozen=True)
class Event:
    id: str  # also the cursor of what comes after it
    at: float
    kind: Kind
    conversation_id: str | None
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "conversation_id": self.conversation_id,
            "data": self.data,
        }

    @classmethod
    def from_doc(cls, doc: Doc) -> Event:
        data = doc.data
        return cls(doc.id, data["at"], data["kind"], data.get("conversation_id"), data["data"])


def record(
    store: Store,
    shop: str,
    kind: Kind,
    *,
    conversation_id: str | None = None,
    at: float | None = None,
    **data: Any,
) -> None:
    """Append an event of ``kind`` (``data``: ids, channel, status; no text, no phone)."""
    at = time.time() if at is None else at
    event = {"at": at, "kind": kind, "conversation_id": conversation_id, "data": data}
    try:
        store.create(shop, COLLECTION, new_sortable_id(), event, expires_at=at + KEEP_SECONDS)
    except Exception as exc:  # noqa: BLE001 - what happened did happen; its trace is optional
        log_warning("event_not_recorded", shop=shop, kind=kind, error_type=type(exc).__name__)


def message(
    store: Store,
    shop: str,
    conversation_id: str,
    stored: Message,
    channel: Channel | None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> None:
    """A message stored in a conversation: a customer's (message_in) or a reply
    (message_out, with the tools the model called for it: ``{"name", "ok"}`` each)."""
    kind: Kind = "message_in" if stored.role == "user" else "message_out"
    # A customer's message calls no tool; a reply says which it called (none is news too).
    more = {} if kind == "message_in" else {"tools": list(tools)}
    record(store, shop, kind, conversation_id=conversation_id, at=stored.at,
           message_id=stored.id, channel=channel, **more)  # fmt: skip


def without_phones(text: str) -> str:
    """``text`` with every phone number in it blanked (a handoff's reason is the model's
    sentence and may quote one)."""
    from shared.catalog.retrieval import PHONE  # loaded by the turn that hands off

    return re.sub(PHONE, "…", text)


def read(
    store: Store, shop: str, after: str | None, now: float, limit: int = PAGE_SIZE
) -> list[Event]:
    """The shop's events after the cursor ``after`` (from the oldest kept when None), oldest
    first, up to ``SETTLE_SECONDS`` before ``now``."""
    cursor = cursor_after(Doc(after, {}, 0), None) if after else None
    page = store.query(shop, COLLECTION, limit=limit, cursor=cursor)
    settled = sortable_at(now - SETTLE_SECONDS)
    return [Event.from_doc(doc) for doc in page.items if doc.id < settled]


def start(now: float) -> str:
    """The cursor of a reader starting at ``now``: what happens from then on."""
    return sortable_at(now - SETTLE_SECONDS)


def erase_conversation(store: Store, shop: str, conversation_id: str) -> int:
    """Delete the events of a conversation (retention); how many there were."""
    found = store.scan(shop, COLLECTION, where={"conversation_id": conversation_id})
    return sum(store.delete(shop, COLLECTION, doc.id) for doc in found)
