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
4. The hooks of ``ON_PAID`` run for a paid order.
5. The claim is marked done: a later delivery, or the same event signed again a day later, is
   acknowledged and changes nothing.

A plan purchase's checkout (its reference names ``plan:<purchase>``, ``quotas.plan_reference``)
takes the same steps with the purchase in place of the order (``settle_plan``): the payment
recorded, the purchase's checkout settled ("paid", or "mismatch" for another amount or currency:
no activation, the operator told), the subscription activated or extended once per event id, and
"Abonnement activé…" queued for the customer's conversation.

The IPN answers as soon as this is stored and queued; the messages go through the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Literal

from shared import conversations, events, hours, quotas
from shared.checkout import parse_reference
from shared.crm import LEADS
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    UnknownShopError,
)
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.models import (
    Conversation,
    Lead,
    Message,
    OrderStatus,
    PlanPurchase,
    Shop,
    mutate,
)
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
# by ``payment_id``), before the IPN answers. A plan's payment is no order: it activates its
# subscription in ``settle_plan``, not through these.
PaidHook = Callable[["App", Shop, Lead, PaymentEvent, str], None]
ON_PAID: list[PaidHook] = []

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "paid": "Paiement reçu, merci ! Commande : {quantity} × {title}{variant}, {total}.",
        "subscribed": "Abonnement activé, merci ! {plan} : {messages} messages par jour "
        "jusqu'au {until}.",
        "until": "%d/%m/%Y à %H:%M",
        "alert": (
            "{shop} : paiement à vérifier pour la commande {order} ({status}) : reçu {paid}, "
            "attendu {expected}. Voir : python -m shared orders --shop {shop_id}"
        ),
        "plan_alert": (
            "{shop} : paiement d'abonnement à vérifier ({plan}, {customer}) : reçu {paid}, "
            "attendu {expected} ; aucun abonnement activé. "
            "Voir : python -m shared subscriptions --shop {shop_id}"
        ),
    },
    "en": {
        "paid": "Payment received, thank you! Order: {quantity} × {title}{variant}, {total}.",
        "subscribed": "Subscription active, thank you! {plan}: {messages} messages a day until "
        "{until}.",
        "until": "%Y-%m-%d %H:%M",
        "alert": (
            "{shop}: a payment to check for order {order} ({status}): received {paid}, "
            "expected {expected}. See: python -m shared orders --shop {shop_id}"
        ),
        "plan_alert": (
            "{shop}: a plan payment to check ({plan}, {customer}): received {paid}, "
            "expected {expected}; no subscription was activated. "
            "See: python -m shared subscriptions --shop {shop_id}"
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
    purchase_id = quotas.purchase_of(order_id)
    idempotency = Idempotency(app.store)
    claim = idempotency.begin(shop.id, f"payment:{provider.name}:{event.event_id}")
    if claim.done:
        return Received("duplicate", shop.id)
    paid_id = payment_id(provider.name, event.event_id)
    try:
        if purchase_id is not None:
            outcome, purchase = settle_plan(
                app, shop, purchase_id, provider.name, event, paid_id, now
            )
            conversation_id, subject = purchase.conversation_id, {"purchase": purchase.id}
        else:
            outcome, order = settle(app, shop.id, order_id, provider.name, event, paid_id, now)
            conversation_id, subject = order.conversation_id, {"order": order.id}
    except NotFoundError:
        log_event("payment_unknown_order", provider=provider.name, shop=shop.id)
        idempotency.complete(claim)
        return Received("unknown_order", shop.id)
    if outcome in _TOLD:
        app.queue.send(
            WorkItem(
                kind=NOTICE,
                shop=shop.id,
                group=conversation_id,
                dedup_id=f"payment:{paid_id}",
                payload={**subject, "payment": paid_id, "outcome": outcome},
            )
        )
    if outcome == "paid" and purchase_id is None:
        for hook in ON_PAID:
            hook(app, shop, order, event, paid_id)
    events.record(app.store, shop.id, "payment", conversation_id=conversation_id, at=now,
                  **subject, status=outcome, provider=provider.name)  # fmt: skip
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
    _record_payment(app, shop, order_id, provider, event, paid_id, now)
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


def _record_payment(
    app: App, shop: str, paid_for: str, provider: str, event: PaymentEvent, paid_id: str, now: float
) -> None:
    """The payment record, created once (``paid_for``: the order id, or ``plan:<purchase>``)."""
    record = {
        "provider": provider,
        "event_id": event.event_id,
        "reference": event.provider_reference,
        "order": paid_for,
        "amount": str(event.amount),
        "currency": event.currency,
        "status": event.status,
        "occurred_at": event.occurred_at,
        "at": now,
    }
    # An earlier delivery may have stored it, then failed before the end: carry on.
    with suppress(AlreadyExistsError):
        app.store.create(shop, PAYMENTS, paid_id, record)


def settle_plan(
    app: App,
    shop: Shop,
    purchase_id: str,
    provider: str,
    event: PaymentEvent,
    paid_id: str,
    now: float,
) -> tuple[Outcome, PlanPurchase]:
    """A plan purchase's payment: recorded (create-only), then the purchase's checkout settled
    in one conditional write ("paid" when the amount and currency are the checkout's,
    "mismatch" when not: never activated), then for "paid" the subscription activated or
    extended (``quotas.activate_subscription``, keyed by the event id: a delivery resuming
    after a crash, or five at once, extend once). NotFoundError when there is no purchase."""
    purchase = quotas.get_purchase(app.store, shop.id, purchase_id)
    paid_for = f"{quotas.PLAN_PREFIX}{purchase_id}"
    _record_payment(app, shop.id, paid_for, provider, event, paid_id, now)
    if event.status != "paid":
        return "recorded", purchase  # a failed or refunded plan payment changes nothing
    outcome: Outcome = "recorded"

    def apply(current: PlanPurchase) -> PlanPurchase:
        nonlocal outcome
        if current.settled_by == paid_id:  # settled by an earlier delivery of this event
            outcome = current.settlement or "paid"
            return current
        checkout = current.checkout
        if checkout is None or current.settled_by is not None:
            outcome = "unexpected"  # its checkout was paid already: the operator sees to it
            return current
        matches = event.amount == checkout.amount
        outcome = "paid" if matches and event.currency == checkout.currency.upper() else "mismatch"
        return current.model_copy(update={"settled_by": paid_id, "settlement": outcome})

    settled, _ = mutate(app.store, shop.id, quotas.PLAN_PURCHASES, purchase_id, PlanPurchase, apply)
    if outcome == "paid":
        try:
            quotas.activate_subscription(
                app.store, shop, settled.customer_key, settled.plan_id, event.event_id, now
            )
        except InvalidInputError:  # the shop stopped selling the plan meanwhile
            outcome = "unexpected"
    return outcome, settled


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
    """Kind ``payment_notice``: the customer's confirmation of a paid order or plan, in their
    conversation (and on their channel), or the operator's alert; written once whatever the
    number of deliveries."""
    shop = app.shops.get(item.shop)
    paid_id = str(item.payload["payment"])
    to_customer = _TOLD.get(item.payload["outcome"]) == "customer"
    if "purchase" in item.payload:
        purchase = quotas.get_purchase(app.store, shop.id, str(item.payload["purchase"]))
        if to_customer:
            _tell_plan_customer(app, shop, purchase, paid_id)
        else:
            _tell_operator(app, shop, paid_id, partial(_plan_alert, shop, purchase))
        return
    order = get_order(app.store, shop.id, str(item.payload["order"]))
    if to_customer:
        _tell_customer(app, shop, order.conversation_id, paid_id, partial(_paid_text, order))
    else:
        _tell_operator(app, shop, paid_id, partial(_order_alert, shop, order))


def _paid_text(order: Lead, lang: str) -> str:
    return TEXTS[lang]["paid"].format(
        quantity=order.quantity,
        title=order.product_title,
        variant=f" ({order.variant_title})" if order.variant_title else "",
        total=format_price(order.total, order.currency, lang),
    )


def _tell_plan_customer(app: App, shop: Shop, purchase: PlanPurchase, paid_id: str) -> None:
    key = purchase.customer_key
    subscription = quotas.active_subscription(app.store, shop.id, key, time.time())
    if subscription is None:  # it ended before the notice went out: nothing true to say
        log_event("payment_not_told", shop=shop.id, reason="no_subscription")
        return

    def text(lang: str) -> str:
        until = datetime.fromtimestamp(subscription.expires_at, hours.zone(shop.timezone))
        return TEXTS[lang]["subscribed"].format(
            plan=subscription.plan_name,
            messages=subscription.daily_messages,
            until=until.strftime(TEXTS[lang]["until"]),
        )

    _tell_customer(app, shop, purchase.conversation_id, paid_id, text)


def _tell_customer(
    app: App, shop: Shop, conversation_id: str, paid_id: str, text: Callable[[str], str]
) -> None:
    store = app.store
    conversation = conversations.get(store, shop.id, conversation_id)
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
        text=text(lang),
        at=time.time(),
        lang=lang,
        delivery="pending" if channel else None,
    )
    conversations.add_message_once(
        store, shop.id, conversation.id, message, channel=conversation.channel
    )

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


def _order_alert(shop: Shop, order: Lead, lang: str, paid: str) -> str:
    return TEXTS[lang]["alert"].format(
        shop=shop.name,
        shop_id=shop.id,
        order=order.id,
        status=order.status,
        paid=paid,
        expected=f"{order.total} {order.currency}",
    )


def _plan_alert(shop: Shop, purchase: PlanPurchase, lang: str, paid: str) -> str:
    checkout = purchase.checkout
    return TEXTS[lang]["plan_alert"].format(
        shop=shop.name,
        shop_id=shop.id,
        plan=purchase.plan_id,
        customer=purchase.customer_key,
        paid=paid,
        expected=f"{checkout.amount} {checkout.currency}" if checkout is not None else "-",
    )


def _tell_operator(
    app: App, shop: Shop, paid_id: str, alert: Callable[[str, str], str]
) -> None:
    """``alert(lang, what was paid)``, sent once to each of the shop's operators."""
    from shared.channels import open_channel, operators

    payment = app.store.get(shop.id, PAYMENTS, paid_id)
    targets = operators(app.settings, shop)
    if payment is None or not targets:
        log_event("payment_alert_not_sent", shop=shop.id, operators=len(targets))
        return
    lang = shop.languages[0] if shop.languages and shop.languages[0] in TEXTS else "en"
    paid = Decimal(str(payment.data["amount"]))
    text = alert(lang, f"{paid} {payment.data['currency']}")
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
