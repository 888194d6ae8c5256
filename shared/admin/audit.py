"""The console's audit log: who did what, when, in one shop.

Entries are append-only (created, never replaced) in the per-shop collection ``admin_audit``
under time-sortable ids, so reading them newest first is reading by id. Recording never fails
the operator's action: a store error becomes a log line naming the action, never its details.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shared.admin.auth import Operator
from shared.ids import new_sortable_id
from shared.log import log_warning
from shared.store import Store

COLLECTION = "admin_audit"
PAGE_SIZE = 50


def record(
    store: Store,
    shop: str,
    operator: Operator,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    at: float | None = None,
) -> None:
    """Append an entry: ``operator`` did ``action`` (``"order.status"``) to ``target`` (an id)."""
    entry = {
        "at": time.time() if at is None else at,
        "operator": operator.email,
        "action": action,
        "target": target,
        "details": dict(details or {}),
    }
    try:
        store.create(shop, COLLECTION, new_sortable_id(), entry)
    except Exception as exc:  # noqa: BLE001 - the action is done; losing its trace must not undo it
        log_warning("audit_not_recorded", shop=shop, action=action, error_type=type(exc).__name__)


def entries(
    store: Store, shop: str, cursor: str | None = None, limit: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the shop's entries, newest first, and the cursor of the next page."""
    page = store.query(shop, COLLECTION, descending=True, limit=limit, cursor=cursor)
    return [{"id": doc.id, **doc.data} for doc in page.items], page.cursor
