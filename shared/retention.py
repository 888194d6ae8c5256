"""Retention: a shop's conversations not written to for ``Shop.retention_days`` are erased, with
their messages, their events and the channel's index of them, by the daily ``retention`` task
(``POST /tasks/retention``, or ``python -m shared tick``'s sibling ``retention``).

A query in ``updated_at`` order finds the oldest first and stops at the first one still within
the days kept, so a run reads only what it erases. Messages go before their conversation: a run
stopped half-way (its time budget, a store error) finds the conversation again next time. The
customer records, orders and payments stay (the shop's accounts); a customer's whole erasure is
``python -m shared customer delete`` (``shared/customer_data.py``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shared.channels.receive import SENT
from shared.conversations import CONVERSATIONS, messages_of
from shared.events import erase_conversation as erase_events
from shared.log import log_event
from shared.shops import all_shop_ids
from shared.store import Store

if TYPE_CHECKING:
    from shared.app import App

BUDGET_S = 45.0  # within the tasks function's minute; what is left goes the next day
_PAGE = 100
DAY = 86400.0


@dataclass
class Purged:
    conversations: int = 0
    messages: int = 0
    finished: bool = True  # False: the budget ran out first


def purge(store: Store, shop: str, days: int, now: float, deadline: float) -> Purged:
    """Erase the shop's conversations last written more than ``days`` ago, oldest first."""
    cutoff = now - days * DAY
    purged = Purged()
    while True:
        page = store.query(shop, CONVERSATIONS, order_by="updated_at", limit=_PAGE)
        old = [doc for doc in page.items if float(doc.data["updated_at"]) < cutoff]
        for doc in old:
            if time.monotonic() >= deadline:
                purged.finished = False
                return purged
            for message in store.scan(shop, messages_of(doc.id)):
                purged.messages += store.delete(shop, messages_of(doc.id), message.id)
            for sent in store.scan(shop, SENT, where={"conversation": doc.id}):
                store.delete(shop, SENT, sent.id)
            erase_events(store, shop, doc.id)
            purged.conversations += store.delete(shop, CONVERSATIONS, doc.id)
        if len(old) < len(page.items) or page.cursor is None:
            return purged


def retention_task(app: App, now: float) -> dict[str, Any]:
    """The ``retention`` task: every shop with ``retention_days``, within BUDGET_S."""
    deadline = time.monotonic() + BUDGET_S
    report: dict[str, Any] = {}
    for shop_id in all_shop_ids(app.store, app.settings.default_shop):
        shop = app.shops.get(shop_id)
        if shop.retention_days is None:
            continue
        purged = purge(app.store, shop.id, shop.retention_days, now, deadline)
        report[shop.id] = asdict(purged)
        log_event("retention_purged", shop=shop.id, **asdict(purged))
    return {"shops": report}
