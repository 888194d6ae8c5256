"""Plans and daily quotas (seed 000: a tutor sells access plans and limits daily usage).

A shop may sell plans (``Shop.plans``: a price for ``period_days`` days of ``daily_messages`` a
day) and give everyone else ``Shop.free_daily_messages`` a day (None: unlimited, the default).
Every turn the assistant answers counts the customer's messages in a per-day counter (the
store's atomic ``increment``, so concurrent turns lose no count on any backend); the turn that
reaches 80 % of the quota carries a short warning, and past the quota the customer gets the
limit message (the plans, their prices and payment links) instead of a model answer. Their
message is stored before, as every message is.

Who is counted (the *customer key*): the verified customer (a phone the channel proved, one
person across their WhatsApp and other linked conversations) when the conversation belongs to
one, else the conversation itself. An unverified contact is made for one conversation anyway,
and appears only once an order is typed: keying on the conversation keeps the count, and a plan
paid before the contact existed, with the same key all along. The conversation's id is a web
session's bearer secret, so the key holds a digest of it (the key travels to payment providers
with the checkout). A new web session therefore starts a new free quota: the per-address rate
limit, not this, is what bounds a client that keeps opening sessions.

Days are the shop's (``Shop.timezone``): the count starts again at its midnight. Counters expire
after COUNTER_DAYS.

The limit message's payment links are checkouts of the shop's provider, one live per customer
and plan (``plan_checkout_url``, the ``PLAN_PURCHASES`` record). A paid plan activates or extends
the customer's subscription (``activate_subscription``, called by the payment IPN,
``shared/ipn.py`` ``settle_plan``, with the provider's event id: the same event twice extends
once). An active
subscription's quota replaces the free one; it is read, and its expiry checked, on every turn.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import datetime

from shared import hours
from shared.checkout import Payments, is_live, reference
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    UnknownPaymentProviderError,
)
from shared.log import log_event
from shared.models import (
    CheckoutRef,
    Conversation,
    Customer,
    Plan,
    PlanPurchase,
    Shop,
    Subscription,
    mutate,
)
from shared.money import format_price
from shared.payments import CheckoutOrder
from shared.payments.exceptions import PaymentError
from shared.store import Store
from shared.store.idempotency import record_id

USAGE = "usage"
SUBSCRIPTIONS = "subscriptions"
PLAN_PURCHASES = "plan_purchases"  # digest of customer key and plan -> PlanPurchase
PLAN_PREFIX = "plan:"  # a plan purchase's checkout reference, in place of an order id
COUNTER_DAYS = 3  # a day's counter outlives the day, whatever the time zone
WARNING_SHARE = 0.8  # the turn that reaches this share of the quota warns
# Event ids kept on a subscription: the IPN dedupes events itself; this guards the extension.
EVENTS_KEPT = 50
DAY_SECONDS = 86400


@dataclass(frozen=True)
class Usage:
    """The customer's messages today, this turn's included, against their quota."""

    customer_key: str
    conversation_id: str  # the turn's: where a plan bought from its limit message is confirmed
    quota: int
    used: int
    counted: int  # this turn's messages
    subscription: Subscription | None

    @property
    def exceeded(self) -> bool:
        return self.used > self.quota

    @property
    def warning_due(self) -> bool:
        """This turn reached WARNING_SHARE of the quota (once a day), without passing it."""
        threshold = math.ceil(self.quota * WARNING_SHARE)
        return threshold > 0 and self.used - self.counted < threshold <= self.used <= self.quota


def customer_key(conversation: Conversation, customer: Customer | None) -> str:
    """Whom ``conversation``'s usage and subscription belong to (see the module docstring);
    ``customer`` is the conversation's own (``crm.conversation_customer``)."""
    if customer is not None and customer.phone_verified:
        return f"customer:{customer.id}"
    return f"conversation:{hashlib.sha256(conversation.id.encode()).hexdigest()[:32]}"


def day_of(shop: Shop, at: float) -> str:
    """The shop's date at ``at``, ISO: the day a count belongs to."""
    return datetime.fromtimestamp(at, hours.zone(shop.timezone)).date().isoformat()


def count_turn(
    store: Store,
    shop: Shop,
    conversation: Conversation,
    customer: Customer | None,
    messages: int,
    now: float,
) -> Usage | None:
    """Count the ``messages`` a turn answers against the customer's quota today; None when the
    customer has no quota (no store operation then for a shop without plans or free quota)."""
    if not shop.plans and shop.free_daily_messages is None:
        return None
    key = customer_key(conversation, customer)
    subscription = active_subscription(store, shop.id, key, now)
    quota = subscription.daily_messages if subscription else shop.free_daily_messages
    if quota is None:
        return None
    used = store.increment(
        shop.id,
        USAGE,
        f"{key}:{day_of(shop, now)}",
        "messages",
        messages,
        expires_at=now + COUNTER_DAYS * DAY_SECONDS,
    )
    return Usage(key, conversation.id, quota, used, messages, subscription)


# --- what the customer reads -----------------------------------------------------------------

_TEXTS = {
    "fr": {
        "warning": "(Vous avez utilisé {used} de vos {quota} messages du jour.)",
        "limit": "Vous avez atteint la limite de {quota} messages pour aujourd'hui. Votre message "
        "est bien enregistré ; vous pourrez reprendre la conversation demain.",
        "subscribers": "Cet assistant est réservé aux abonnés. Votre message est bien enregistré.",
        "plans": "Pour continuer dès maintenant, choisissez une formule :",
        "plan": "- {name} : {price} pour {days} jours, {messages} messages par jour",
        "pay": " — payer : {url}",
        "contact": "Pour vous abonner : {contact}",
    },
    "en": {
        "warning": "(You have used {used} of your {quota} messages for today.)",
        "limit": "You have reached today's limit of {quota} messages. Your message is saved; you "
        "can continue the conversation tomorrow.",
        "subscribers": "This assistant is for subscribers. Your message is saved.",
        "plans": "To continue now, choose a plan:",
        "plan": "- {name}: {price} for {days} days, {messages} messages a day",
        "pay": " — pay: {url}",
        "contact": "To subscribe: {contact}",
    },
}


def warning(usage: Usage, lang: str) -> str:
    """The short note the turn reaching WARNING_SHARE of the quota starts with."""
    return _texts(lang)["warning"].format(used=usage.used, quota=usage.quota)


def limit_message(payments: Payments, shop: Shop, usage: Usage, lang: str, now: float) -> str:
    """The polite answer past the quota: when the customer can go on, and the plans on sale with
    their payment links (or the shop's contact while no link can be made). It names no product
    and is written by us, so it needs no price guard; its prices are the shop's own plans."""
    texts = _texts(lang)
    lines = [
        texts["limit"].format(quota=usage.quota) if usage.quota else texts["subscribers"]
    ]
    if shop.plans:
        lines.append(texts["plans"])
        links = []
        for plan in shop.plans:
            url = plan_checkout_url(payments, shop, plan, usage, now)
            links.append(url)
            price = format_price(plan.price, plan.currency, lang)
            line = texts["plan"].format(
                name=plan.name, price=price, days=plan.period_days, messages=plan.daily_messages
            )
            lines.append(line + (texts["pay"].format(url=url) if url else ""))
        if not any(links) and shop.contact:
            lines.append(texts["contact"].format(contact=shop.contact))
    return "\n".join(lines)


def plan_checkout_url(
    payments: Payments, shop: Shop, plan: Plan, usage: Usage, now: float
) -> str | None:
    """The payment link for ``usage``'s customer buying ``plan``, or None while none can be made
    (the provider is down or refuses: the limit message then gives the shop's contact).

    One live checkout per customer and plan: the purchase record (``PLAN_PURCHASES``, created
    create-only) holds it, and ``Payments.one_checkout`` makes each next one once however many
    turns past the quota ask at the same time; it is handed out again until it has less than
    ``LIVE_MARGIN`` left or a payment settled it. Its reference (``plan_reference``) is how the
    IPN finds the purchase, then the customer and the plan to activate."""
    purchase_id = record_id(f"{usage.customer_key}\n{plan.id}")
    try:
        purchase = _purchase(payments.store, shop.id, purchase_id, plan, usage, now)
        out = purchase.checkout
        if out is not None and purchase.settled_by is None and is_live(out, now):
            return out.url
        generation = purchase.checkouts

        def record(checkout: CheckoutRef) -> PlanPurchase:
            def put(current: PlanPurchase) -> PlanPurchase:
                if current.checkouts != generation:  # a concurrent caller's is out
                    return current
                return current.model_copy(
                    update={
                        "checkout": checkout,
                        "checkouts": generation + 1,
                        "settled_by": None,
                        "settlement": None,
                        "conversation_id": usage.conversation_id,
                    }
                )

            store = payments.store
            return mutate(store, shop.id, PLAN_PURCHASES, purchase_id, PlanPurchase, put)[0]

        def recorded() -> PlanPurchase | None:
            current = get_purchase(payments.store, shop.id, purchase_id)
            return current if current.checkouts > generation else None

        made = payments.one_checkout(
            shop,
            f"{PLAN_PREFIX}{purchase_id}",
            generation,
            CheckoutOrder(
                reference=plan_reference(shop.id, purchase_id),
                amount=plan.price,
                currency=plan.currency,
                description=f"{shop.name}: {plan.name}"[:200],
            ),
            record,
            recorded,
        )
    except (PaymentError, UnknownPaymentProviderError):
        log_event("plan_link_unavailable", shop=shop.id, provider=shop.payment_provider)
        return None
    return made.checkout.url if made.checkout is not None else None


def plan_reference(shop_id: str, purchase_id: str) -> str:
    """The order reference of a plan purchase's checkouts: the checkout module's
    "<shop>:<order id>" with ``plan:<purchase id>`` for the order, which no order id is."""
    return reference(shop_id, f"{PLAN_PREFIX}{purchase_id}")


def purchase_of(order_id: str) -> str | None:
    """The plan purchase an order reference's id part names (``plan_reference``); None for an
    order's."""
    purchase_id = order_id.removeprefix(PLAN_PREFIX)
    return purchase_id if purchase_id and purchase_id != order_id else None


def get_purchase(store: Store, shop_id: str, purchase_id: str) -> PlanPurchase:
    """Raises NotFoundError when there is none."""
    doc = store.get(shop_id, PLAN_PURCHASES, purchase_id)
    if doc is None:
        raise NotFoundError(f"no plan purchase {purchase_id!r}")
    return PlanPurchase.from_doc(doc)


def _purchase(
    store: Store, shop_id: str, purchase_id: str, plan: Plan, usage: Usage, now: float
) -> PlanPurchase:
    """The customer's purchase record for ``plan``, created (create-only) the first time. Read
    first: every later turn past the quota finds it, and a refused conditional write costs."""
    doc = store.get(shop_id, PLAN_PURCHASES, purchase_id)
    if doc is not None:
        return PlanPurchase.from_doc(doc)
    created = PlanPurchase(
        id=purchase_id,
        customer_key=usage.customer_key,
        plan_id=plan.id,
        conversation_id=usage.conversation_id,
        created_at=now,
        updated_at=now,
    )
    try:
        store.create(shop_id, PLAN_PURCHASES, purchase_id, created.to_doc())
    except AlreadyExistsError:
        return get_purchase(store, shop_id, purchase_id)
    return created


def _texts(lang: str) -> dict[str, str]:
    return _TEXTS.get(lang, _TEXTS["en"])


# --- subscriptions ---------------------------------------------------------------------------


def active_subscription(
    store: Store, shop_id: str, customer_key: str, now: float
) -> Subscription | None:
    """The customer's subscription while it has not expired at ``now``."""
    doc = store.get(shop_id, SUBSCRIPTIONS, customer_key)
    subscription = Subscription.from_doc(doc) if doc is not None else None
    return subscription if subscription is not None and subscription.expires_at > now else None


def activate_subscription(
    store: Store, shop: Shop, customer_key: str, plan_id: str, paid_event_id: str, now: float
) -> Subscription:
    """Start or extend ``customer_key``'s subscription to ``plan_id`` for the plan's period, paid
    by the payment event ``paid_event_id``: the same event again changes nothing. A running
    subscription is extended from its end (a new plan takes over with the time left); an expired
    one starts again at ``now``. Raises InvalidInputError for a plan the shop does not sell."""
    plan = next((p for p in shop.plans if p.id == plan_id), None)
    if plan is None:
        raise InvalidInputError(f"{plan_id!r} is not a plan of shop {shop.id!r}")
    period = plan.period_days * DAY_SECONDS

    def extend(current: Subscription) -> Subscription:
        if paid_event_id in current.payment_events:
            return current
        running = current.expires_at > now
        return current.model_copy(
            update={
                "plan_id": plan.id,
                "plan_name": plan.name,
                "daily_messages": plan.daily_messages,
                "started_at": current.started_at if running else now,
                "expires_at": (current.expires_at if running else now) + period,
                "payment_events": [*current.payment_events, paid_event_id][-EVENTS_KEPT:],
            }
        )

    created = Subscription(
        id=customer_key,
        plan_id=plan.id,
        plan_name=plan.name,
        daily_messages=plan.daily_messages,
        started_at=now,
        expires_at=now + period,
        payment_events=[paid_event_id],
        created_at=time.time(),
        updated_at=time.time(),
    )
    try:
        store.create(shop.id, SUBSCRIPTIONS, customer_key, created.to_doc())
    except AlreadyExistsError:
        return mutate(store, shop.id, SUBSCRIPTIONS, customer_key, Subscription, extend)[0]
    return created


def list_subscriptions(store: Store, shop_id: str) -> list[Subscription]:
    """Every subscription of the shop, expired ones included, the latest to end first."""
    found = [Subscription.from_doc(doc) for doc in store.scan(shop_id, SUBSCRIPTIONS)]
    return sorted(found, key=lambda s: s.expires_at, reverse=True)
