"""Orders: their statuses, the moves between them, and their history.

An order is the CRM's lead (``shared.models.Lead``, collection ``leads``): ``capture_lead``
makes it a "draft" and then "confirmed"; a payment link makes it "awaiting_payment"
(``shared/checkout.py``); the provider's IPN makes it "paid", "payment_failed" or
"payment_mismatch" (``shared/ipn.py``); the operator marks it "fulfilled" or "cancelled"
(``python -m shared order set-status``). Every move goes through ``move``, which refuses one the
lifecycle does not allow and appends ``(status, at, actor)`` to the order's history; stored
orders change through ``set_status`` (``models.mutate``: a conditional write).
"""

from __future__ import annotations

from typing import Any, get_args

from shared import events
from shared.crm import LEADS, lead_json
from shared.exceptions import InvalidInputError, InvalidKeyError, NotFoundError
from shared.models import Lead, OrderStatus, StatusChange, mutate
from shared.store import Store

STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
# Where each status may go. A paid order is delivered or (refunded by hand) cancelled; a failed
# or mismatched payment can still be settled by a new link or a later event.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    "draft": frozenset({"confirmed", "cancelled"}),
    # Back to "draft": the customer corrects a confirmed order, which is read back again.
    "confirmed": frozenset({"draft", "awaiting_payment", "paid", "fulfilled", "cancelled"}),
    "awaiting_payment": frozenset(
        {"paid", "payment_failed", "payment_mismatch", "fulfilled", "cancelled"}
    ),
    "payment_failed": frozenset({"awaiting_payment", "paid", "payment_mismatch", "cancelled"}),
    "payment_mismatch": frozenset({"paid", "fulfilled", "cancelled"}),
    "paid": frozenset({"fulfilled", "cancelled"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
}
PAYABLE = frozenset({"confirmed", "awaiting_payment", "payment_failed"})  # a link may be made
SETTLED = frozenset({"paid", "fulfilled"})  # the customer has paid


class InvalidTransitionError(InvalidInputError):
    """The order cannot move to that status from the one it is in."""


def parse_status(value: str) -> OrderStatus:
    """``value`` as a status; InvalidInputError listing the statuses otherwise."""
    status = next((s for s in STATUSES if s == value.strip().lower()), None)
    if status is None:
        raise InvalidInputError(f"{value!r} is not an order status ({', '.join(STATUSES)})")
    return status


def can_move(current: OrderStatus, to: OrderStatus) -> bool:
    return to in TRANSITIONS[current]


def move(order: Lead, to: OrderStatus, actor: str, at: float, **changes: Any) -> Lead:
    """``order`` in status ``to``, its history one step longer, with ``changes`` applied;
    InvalidTransitionError when the lifecycle does not allow the move."""
    if not can_move(order.status, to):
        allowed = ", ".join(sorted(TRANSITIONS[order.status])) or "nothing: it is final"
        raise InvalidTransitionError(
            f"order {order.id} is {order.status}: it cannot become {to} (allowed: {allowed})"
        )
    history = [*order.history, StatusChange(status=to, at=at, actor=actor)]
    return order.model_copy(update={**changes, "status": to, "history": history})


def get_order(store: Store, shop: str, order_id: str) -> Lead:
    """The order; NotFoundError when there is none (or ``order_id`` cannot be one)."""
    try:
        doc = store.get(shop, LEADS, order_id)
    except InvalidKeyError:
        doc = None
    if doc is None:
        raise NotFoundError(f"no order {order_id!r} in shop {shop!r}")
    return Lead.from_doc(doc)


def set_status(
    store: Store, shop: str, order_id: str, to: OrderStatus, actor: str, at: float
) -> Lead:
    """Move the stored order to ``to`` (a conditional write, re-read on conflict)."""
    try:
        moved = mutate(store, shop, LEADS, order_id, Lead, lambda o: move(o, to, actor, at))[0]
    except NotFoundError:
        raise NotFoundError(f"no order {order_id!r} in shop {shop!r}") from None
    before = moved.history[-2].status if len(moved.history) > 1 else None
    events.record(store, shop, "order_status", conversation_id=moved.conversation_id, at=at,
                  order=order_id, to=to, actor=actor, **{"from": before})  # fmt: skip
    return moved


def order_json(order: Lead) -> dict[str, Any]:
    """An order as the operator's listing shows it: the lead, its history and its payment."""
    checkout = order.checkout
    return {
        **lead_json(order),
        "channel": order.channel,
        "history": [
            {"status": change.status, "at": change.at, "actor": change.actor}
            for change in order.history
        ],
        "payment_provider": checkout.provider if checkout is not None else None,
        "payment_url": checkout.url if checkout is not None else None,
        "payment_id": order.payment_id,
    }

