"""What a payment provider's IPN (``POST /webhooks/payments/{provider}``) does, once per event.

``receive`` checks the signature on the raw body (the provider's ``verify_and_parse``: nothing
is parsed before), then settles the event exactly once, whatever the number of deliveries and
processes, in idempotent steps recorded in one resumable claim (``Idempotency.begin``, keyed by
the provider's event id):

1. The payment record (``payments/<digest of provider and event id>``: provider, reference,
   order, amount, currency, event id, status, times) is created create-only: every delivery of
   the event names the same document, so there is one.
2. The order moves, in one conditional write (``models.mutate``), to "paid" when the amount and
   currency are the order's, "payment_mismatch" when they are not (never "paid"), or
   "payment_failed"; it records the payment's id, which is how a delivery that resumes after a
   crash finds the move already made and changes nothing. The store has no multi-document
   transaction: the record first, then the conditional move, and a retry completes what a crash
   left half-done.
3. The customer's confirmation ("Paiement reçu, merci !", in the conversation's language), or
   the operator's alert (a mismatch, a second payment, a payment for a cancelled order), is
   queued as a ``payment_notice`` with a dedup id derived from the payment; its handler
   (``notify``) writes it once (a resumable claim of its own).
4. The hooks of ``ON_PAID`` run for a paid order (the plans' subscriptions register there).
5. The claim is marked done: a later delivery, or the same event signed again a day later, is
   acknowledged and changes nothing.

The IPN answers as soon as this is stored and queued; the messages go through the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from shared import conversations
from shared.checkout import parse_reference
from shared.crm import LEADS
from shared.exceptions import AlreadyExistsError, NotFoundError, UnknownShopError
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.models import Conversation, Lead, Message, OrderStatus, Shop, mutate
from shared.money import format_price
from shared.orders import can_move, get_order, move
from shared.payments import PaymentEvent
from shared.queue.base import WorkItem
from shared.store.idempotency import Idempotency, record_id

if TYPE_CHECKING:
    from shared.app import App

PAYMENTS = "payments"
NOTICE = "payment_notice"  # the WorkItem kind (shared/worker.py HANDLERS)
Outcome = Literal[
    "paid",  # the order is paid
    "mismatch",  # another amount or currency: the order is flagged, the operator told
    "failed",  # the order's payment failed (or its checkout expired)
    "unexpected",  # a payment the order cannot take (paid twice, cancelled): operator told
    "recorded",  # kept, nothing to change (a refund, a failure after the payment)
    "ignored",  # an authentic event the port does not act on
    "unknown_order",  # its reference names no order of ours
    "duplicate",  # settled by an earlier delivery
]
_TOLD: dict[Outcome, Literal["customer", "operator"]] = {
    "paid": "customer",
    "mismatch": "operator",
    "unexpected": "operator",
}

# Called once the order is paid (at least once per payment: a hook must be idempotent, keyed
# by ``payment_id``), before the IPN answers. The plans' work registers here to activate a
# subscription bought with the order.
PaidHook = Callable[["App", Shop, Lead, PaymentEvent, str], None]
ON_PAID: list[PaidHook] = []

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "paid": "Paiement reçu, merci ! Commande : {quantity} × {title}{variant}, {total}.",
        "alert": (
            "{shop} : paiement à vérifier pour la commande {order} ({status}) : reçu {paid}, "
            "attendu {expected}. Voir : python -m shared orders --shop {shop_id}"
        ),
    },
    "en": {
        "paid": "Payment received, thank you! Order: {quantity} × {title}{variant}, {total}.",
        "alert": (
            "{shop}: a payment to check for order {order} ({status}): received {paid}, "
            "expected {expected}. See: python -m shared orders --shop {shop_id}"
        ),
    },
}


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    shop: str = ""  # for the access log


def payment_id(provider: str, event_id: str) -> str:
    return record_id(f"{provider}\n{event_id}")


def receive(
    app: App, provider_name: str, raw_body: bytes, headers: Mapping[str, str], now: float
) -> Received:
    """Verify and settle one delivery (see the module docstring). Raises the payment port's
    signature and event errors, UnknownPaymentProviderError for a provider that is none."""
    provider = app.payments.provider(provider_name)
    event = provider.verify_and_parse(raw_body, headers, now)
    if event is None:
        return Received("ignored")
    found = parse_reference(event.order_reference)
    shop = _shop(app, found[0]) if found is not None else None
    if found is None or shop is None:
        log_event("payment_unknown_order", provider=provider.name)
        return Received("unknown_order")
    order_id = found[1]
    idempotency = Idempotency(app.store)
    claim = idempotency.begin(shop.id, f"payment:{provider.name}:{event.event_id}")
    if claim.done:
        return Received("duplicate", shop.id)
    paid_id = payment_id(provider.name, event.event_id)
    try:
        outcome, order = settle(app, shop.id, order_id, provider.name, event, paid_id, now)
    except NotFoundError:
        log_event("payment_unknown_order", provider=provider.name, shop=shop.id)
        idempotency.complete(claim)
        return Received("unknown_order", shop.id)
    if outcome in _TOLD:
        app.queue.send(
            WorkItem(
                kind=NOTICE,
                shop=shop.id,
                group=order.conversation_id,
                dedup_id=f"payment:{paid_id}",
                payload={"order": order.id, "payment": paid_id, "outcome": outcome},
            )
        )
    if outcome == "paid":
        for hook in ON_PAID:
            hook(app, shop, order, event, paid_id)
    idempotency.complete(claim)
    log_event("payment_settled", provider=provider.name, shop=shop.id, outcome=outcome)
    return Received(outcome, shop.id)


def settle(
    app: App,
    shop: str,
    order_id: str,
    provider: str,
    event: PaymentEvent,
    paid_id: str,
    now: float,
) -> tuple[Outcome, Lead]:
    """Store the payment record (create-only), then move the order (a conditional write);
    either step already done by an earlier delivery is left as it is. NotFoundError when the
    order does not exist."""
    order = get_order(app.store, shop, order_id)
    record = {
        "provider": provider,
        "event_id": event.event_id,
        "reference": event.provider_reference,
        "order": order_id,
        "amount": str(event.amount),
        "currency": event.currency,
        "status": event.status,
        "occurred_at": event.occurred_at,
        "at": now,
    }
    # An earlier delivery may have stored it, then failed before the end: carry on.
    with suppress(AlreadyExistsError):
        app.store.create(shop, PAYMENTS, paid_id, record)
    actor = f"payment:{provider}"
    outcome: Outcome = "recorded"

    def apply(current: Lead) -> Lead:
        nonlocal outcome
        if current.payment_id == paid_id:  # moved by an earlier delivery of this event
            outcome = "mismatch" if current.status == "payment_mismatch" else _APPLIED[event.status]
            return current
        outcome = _outcome_of(current, event)
        status = _STATUS_OF.get(outcome)
        if status is None:
            return current
        return move(current, status, actor, now, payment_id=paid_id)

    moved, _ = mutate(app.store, shop, LEADS, order.id, Lead, apply)
    return outcome, moved


_STATUS_OF: dict[Outcome, OrderStatus] = {
    "paid": "paid",
    "mismatch": "payment_mismatch",
    "failed": "payment_failed",
}
_APPLIED: dict[str, Outcome] = {"paid": "paid", "failed": "failed", "expired": "failed"}


def _outcome_of(order: Lead, event: PaymentEvent) -> Outcome:
    """What ``event`` does to ``order`` as it stands."""
    if event.status in ("failed", "expired"):
        return "failed" if order.status == "awaiting_payment" else "recorded"
    if event.status != "paid":
        return "recorded"  # a refund: the operator's, by hand
    if _matches(order, event.amount, event.currency):
        return "paid" if can_move(order.status, "paid") else "unexpected"
    return "mismatch" if can_move(order.status, "payment_mismatch") else "unexpected"


def _matches(order: Lead, amount: Decimal, currency: str) -> bool:
    expected = order.checkout.amount if order.checkout is not None else order.total
    expected_currency = order.checkout.currency if order.checkout is not None else order.currency
    return amount == expected and currency.upper() == expected_currency.upper()


def _shop(app: App, shop_id: str) -> Shop | None:
    try:
        return app.shops.get(shop_id)
    except UnknownShopError:
        return None


# --- the queued notices ----------------------------------------------------------------------


def notify(app: App, item: WorkItem) -> None:
    """Kind ``payment_notice``: the customer's confirmation of a paid order, in their
    conversation (and on their channel), or the operator's alert; written once whatever the
    number of deliveries."""
    shop = app.shops.get(item.shop)
    order = get_order(app.store, shop.id, str(item.payload["order"]))
    paid_id = str(item.payload["payment"])
    if _TOLD.get(item.payload["outcome"]) == "customer":
        _tell_customer(app, shop, order, paid_id)
    else:
        _tell_operator(app, shop, order, paid_id)


def _tell_customer(app: App, shop: Shop, order: Lead, paid_id: str) -> None:
    store = app.store
    conversation = conversations.get(store, shop.id, order.conversation_id)
    if conversation is None:
        log_event("payment_not_told", shop=shop.id, reason="no_conversation")
        return
    idempotency = Idempotency(store)
    claim = idempotency.begin(shop.id, f"payment_notice:{paid_id}", {"message": new_sortable_id()})
    if claim.done:
        return
    lang = _language(conversation, shop)
    channel = conversation.channel != "web" and conversation.channel_user is not None
    message = Message(
        id=str(claim.data["message"]),
        role="assistant",
        text=TEXTS[lang]["paid"].format(
            quantity=order.quantity,
            title=order.product_title,
            variant=f" ({order.variant_title})" if order.variant_title else "",
            total=format_price(order.total, order.currency, lang),
        ),
        at=time.time(),
        lang=lang,
        delivery="pending" if channel else None,
    )
    conversations.add_message_once(store, shop.id, conversation.id, message)

    def add(current: Conversation) -> Conversation:
        if any(m.id == message.id for m in current.recent):
            return current
        return current.model_copy(
            update={"recent": conversations.appended(current.recent, [message])}
        )

    conversation = conversations.update(store, shop.id, conversation.id, add)
    if channel:
        from shared.channels import open_channel
        from shared.channels.turn import send_reply

        sender = open_channel(app, shop, conversation.channel)
        send_reply(app, shop, conversation, sender, message.id)  # only while still pending
    idempotency.complete(claim)
    log_event("payment_told", shop=shop.id, channel=conversation.channel)


def _tell_operator(app: App, shop: Shop, order: Lead, paid_id: str) -> None:
    from shared.channels import open_channel, operators

    payment = app.store.get(shop.id, PAYMENTS, paid_id)
    targets = operators(app.settings, shop)
    if payment is None or not targets:
        log_event("payment_alert_not_sent", shop=shop.id, operators=len(targets))
        return
    lang = shop.languages[0] if shop.languages and shop.languages[0] in TEXTS else "en"
    paid = Decimal(str(payment.data["amount"]))
    text = TEXTS[lang]["alert"].format(
        shop=shop.name,
        shop_id=shop.id,
        order=order.id,
        status=order.status,
        paid=f"{paid} {payment.data['currency']}",
        expected=f"{order.total} {order.currency}",
    )
    for name, address in targets:
        with Idempotency(app.store).once(shop.id, f"payment_alert:{paid_id}:{name}") as first:
            if first:
                open_channel(app, shop, name).send(address, text)
                log_event("payment_alert_sent", shop=shop.id, channel=name)


def _language(conversation: Conversation, shop: Shop) -> str:
    """The language the conversation was last answered in, else the shop's first."""
    spoken = next((m.lang for m in reversed(conversation.recent) if m.lang), None)
    lang = spoken or (shop.languages[0] if shop.languages else "fr")
    return lang if lang in TEXTS else "en"
