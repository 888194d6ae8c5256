"""Payment links: one live checkout per order, for the amount the catalogue says.

``Payments.link`` is what ``create_payment_link`` calls. The amount is the order's total
recomputed from today's catalogue (never a number a model wrote); the order is stored with it.
An order already paid gets no link; one with a live checkout gets that checkout back.

Two calls at once make one checkout: the order's next checkout is claimed create-only
(``Idempotency.begin``, keyed by the order and its count of checkouts), the claim records the
idempotency key the provider receives, and the first to record the checkout on the order (a
conditional write) wins. A caller that finds the claim taken waits for the order to show the
checkout; if its maker died, it resumes with the same idempotency key, which a provider that
takes one (Stripe, Wave) answers with the same checkout.

Where a checkout leads back: the provider echoes ``reference`` ("<shop>:<order id>") in its
events, which is how the IPN finds the shop; the dev server's checkout page reads the
``checkout_routes`` document (in DEFAULT_SHOP's scope, like the channels' routes).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from shared.catalog.retrieval import CatalogIndex
from shared.crm import LEADS
from shared.exceptions import InvalidInputError, NotFoundError, UnknownPaymentProviderError
from shared.log import log_event
from shared.models import CheckoutRef, Lead, Shop, mutate
from shared.orders import PAYABLE, SETTLED, get_order, move
from shared.payments import (
    PROVIDERS,
    Checkout,
    CheckoutOrder,
    PaymentProvider,
    open_provider,
)
from shared.payments.exceptions import PaymentNotConfiguredError
from shared.settings import DEV_PAYMENT_TEST_SECRET, deployed
from shared.store import Store
from shared.store.idempotency import Claim, Idempotency, record_id

if TYPE_CHECKING:
    from shared.settings import Settings

CHECKOUT_ROUTES = "checkout_routes"  # "<provider>\n<checkout id>" digest -> {shop, order, ...}
LIVE_MARGIN = 120.0  # seconds a checkout must still have to be handed out again
WAIT_SECONDS = 10.0  # for a concurrent caller's checkout before resuming its work
_POLL = 0.05
T = TypeVar("T")


@dataclass(frozen=True)
class PaymentLink:
    """What the customer is asked to pay, and where."""

    order_id: str
    url: str
    amount: Decimal
    currency: str
    provider: str


def reference(shop: str, order_id: str) -> str:
    return f"{shop}:{order_id}"


def parse_reference(value: str) -> tuple[str, str] | None:
    """(shop, order id) of a reference ``reference`` made; None for anything else."""
    shop, sep, order_id = value.partition(":")
    return (shop, order_id) if sep and shop and order_id else None


def checkout_route(store: Store, routes_shop: str, provider: str, checkout_id: str) -> Any:
    doc = store.get(routes_shop, CHECKOUT_ROUTES, record_id(f"{provider}\n{checkout_id}"))
    return doc.data if doc is not None else None


def catalogue_total(order: Lead, catalog: CatalogIndex) -> tuple[Decimal, Decimal, str]:
    """(unit price, total, currency) of ``order`` at today's catalogue prices."""
    product = catalog.products.get(order.product_id)
    if product is None:
        raise InvalidInputError(f"{order.product_title} is no longer sold: the shop will call")
    variant = next((v for v in product.variants if v.id == order.variant_id), None)
    if variant is None and order.variant_id is not None:
        raise InvalidInputError(f"this version of {product.title} is no longer sold")
    if variant is None:  # no variant chosen: priced at the lowest available, as capture_lead
        unit = min((v.price for v in product.variants if v.available), default=None)
        if unit is None:
            raise InvalidInputError(f"{product.title} is out of stock")
    else:
        unit = variant.price
    return unit, unit * order.quantity, product.currency


class Payments:
    """The payment providers a warm instance has opened, and the links made with them."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._providers: dict[str, PaymentProvider] = {}
        self._lock = threading.Lock()

    def provider(self, name: str) -> PaymentProvider:
        """Provider ``name``, opened once; UnknownPaymentProviderError for a name that is none."""
        if name not in PROVIDERS:
            raise UnknownPaymentProviderError(f"no payment provider {name!r}")
        secret = self.settings.payment_test_secret.get_secret_value()
        if name == "test" and secret == DEV_PAYMENT_TEST_SECRET and deployed():
            # Anyone can sign with the public default: a deployed shop would be "paid" for free.
            raise PaymentNotConfiguredError(
                "the test provider is for the dev server: set PAYMENT_TEST_SECRET to a secret "
                "of your own, or give the shop a real payment_provider (wave, stripe)"
            )
        with self._lock:
            provider = self._providers.get(name)
            if provider is None:
                provider = self._providers[name] = open_provider(name, self.settings)
            return provider

    def link(
        self,
        shop: Shop,
        order_id: str,
        catalog: CatalogIndex,
        now: float,
        conversation_id: str | None = None,
    ) -> PaymentLink:
        """The order's live payment link, made if it has none. Raises ``AlreadyPaidError``
        for a paid order, InvalidInputError for one that cannot be paid (not confirmed,
        cancelled, no longer sold), NotFoundError for no order (or, with ``conversation_id``,
        none of that conversation's: a customer never gets another's link)."""
        order = get_order(self.store, shop.id, order_id)
        if conversation_id is not None and order.conversation_id != conversation_id:
            raise NotFoundError(f"no order {order_id!r} in this conversation")
        if order.status in SETTLED:
            raise AlreadyPaidError(f"order {order.id} is already {order.status}")
        if order.status not in PAYABLE:
            raise InvalidInputError(f"order {order.id} is {order.status}: it cannot be paid")
        live = _live(order, now)
        if live is not None:
            return live
        unit, amount, currency = catalogue_total(order, catalog)
        generation = order.checkouts

        def recorded() -> Lead | None:
            try:
                current = get_order(self.store, shop.id, order.id)
            except NotFoundError:
                return None
            return current if current.checkouts > generation else None

        made = self.one_checkout(
            shop,
            order.id,
            generation,
            CheckoutOrder(
                reference=reference(shop.id, order.id),
                amount=amount,
                currency=currency,
                description=_description(order, shop),
            ),
            lambda checkout: self._record(shop.id, order.id, generation, checkout, unit, now),
            recorded,
        )
        link = _as_link(made)
        assert link is not None  # _record raises unless the order has a checkout
        return link

    def one_checkout(
        self,
        shop: Shop,
        subject: str,
        generation: int,
        order: CheckoutOrder,
        record: Callable[[CheckoutRef], T],
        recorded: Callable[[], T | None],
    ) -> T:
        """Checkout number ``generation`` of ``subject`` (an order id, a plan purchase's
        reference) made once whatever the number of concurrent callers: claimed create-only,
        asked of the shop's provider with the claim's idempotency key, routed back to the shop
        (``CHECKOUT_ROUTES``) and recorded by ``record`` (a conditional write that keeps the
        first recorded). A caller that finds the claim taken waits for ``recorded`` (the
        subject once it shows a later generation), and resumes the work if its maker died."""
        idempotency = Idempotency(self.store)
        token = secrets.token_urlsafe(18)
        claim = idempotency.begin(
            shop.id, f"checkout:{subject}:{generation}", {"idempotency_key": token}
        )
        if claim.data.get("idempotency_key") != token and not claim.done:
            waited = _wait(recorded)
            if waited is not None:
                return waited
            # Its maker died before recording it: the same idempotency key carries on.
        provider = self.provider(shop.payment_provider)
        if claim.done:
            made = Checkout(**claim.data["checkout"])
        else:
            made = provider.create_checkout(
                replace(order, idempotency_key=str(claim.data["idempotency_key"]))
            )
        checkout = CheckoutRef(
            provider=provider.name,
            id=made.id,
            url=made.url,
            expires_at=made.expires_at,
            amount=order.amount,
            currency=order.currency,
        )
        self.store.put(
            self.settings.default_shop,
            CHECKOUT_ROUTES,
            record_id(f"{provider.name}\n{made.id}"),
            {
                "shop": shop.id,
                "order": subject,
                "amount": str(order.amount),
                "currency": order.currency,
            },
            expires_at=None if made.expires_at is None else made.expires_at + 7 * 86400,
        )
        result = record(checkout)
        idempotency.complete(
            Claim(
                claim.shop,
                claim.doc_id,
                done=True,
                data={**claim.data, "checkout": asdict(made)},
                version=claim.version,
            )
        )
        log_event("payment_link_made", shop=shop.id, provider=provider.name)
        return result

    def _record(
        self,
        shop: str,
        order_id: str,
        generation: int,
        checkout: CheckoutRef,
        unit: Decimal,
        now: float,
    ) -> Lead:
        """Put ``checkout`` on the order unless a concurrent caller recorded this generation's
        (or the order moved on meanwhile: paid, cancelled)."""

        def record(order: Lead) -> Lead:
            if order.checkouts != generation or order.status not in PAYABLE:
                return order
            changes: dict[str, Any] = {
                "checkout": checkout,
                "checkouts": generation + 1,
                "unit_price": unit,
                "total": checkout.amount,
                "currency": checkout.currency,
            }
            if order.status == "awaiting_payment":  # a new link for an expired one
                return order.model_copy(update=changes)
            return move(order, "awaiting_payment", "assistant", now, **changes)

        recorded, _ = mutate(self.store, shop, LEADS, order_id, Lead, record)
        if recorded.status in SETTLED:
            raise AlreadyPaidError(f"order {order_id} is already {recorded.status}")
        if recorded.checkout is None:
            raise InvalidInputError(f"order {order_id} is {recorded.status}: it cannot be paid")
        return recorded


class AlreadyPaidError(InvalidInputError):
    """The order is paid: there is nothing left to pay."""


def _live(order: Lead, now: float) -> PaymentLink | None:
    """The order's checkout while it is out and has ``LIVE_MARGIN`` left at ``now``."""
    if order.status != "awaiting_payment" or not is_live(order.checkout, now):
        return None
    return _as_link(order)


def is_live(checkout: CheckoutRef | None, now: float) -> bool:
    """``checkout`` still has ``LIVE_MARGIN`` to be paid at ``now``."""
    if checkout is None:
        return False
    return checkout.expires_at is None or checkout.expires_at >= now + LIVE_MARGIN


def _wait(recorded: Callable[[], T | None]) -> T | None:
    """``recorded()`` once it is something, within WAIT_SECONDS; None after."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        found = recorded()
        if found is not None:
            return found
    return None


def _as_link(order: Lead) -> PaymentLink | None:
    checkout = order.checkout
    if checkout is None:
        return None
    return PaymentLink(
        order.id, checkout.url, checkout.amount, checkout.currency, checkout.provider
    )


def _description(order: Lead, shop: Shop) -> str:
    variant = f" ({order.variant_title})" if order.variant_title else ""
    return f"{shop.name}: {order.quantity} × {order.product_title}{variant}"[:200]
