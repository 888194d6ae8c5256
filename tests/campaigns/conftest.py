"""Campaigns on the channels' test app (loopback Graph API and Telegram servers, a recording
queue), with customers, conversations and orders written the way the channels and the tools
write them."""

from __future__ import annotations

import time
from typing import Any

from shared import conversations, crm
from shared.app import App
from shared.campaigns import definitions
from shared.campaigns.models import Campaign
from shared.channels.receive import conversation_id
from shared.ids import new_sortable_id
from shared.models import Conversation, Customer, Lead, OrderStatus, ShownProduct, StatusChange
from tests.channels import conftest as channels
from tests.channels.conftest import APP_SECRET

SHOP = "teranga"
# The channels' fixtures: an App on the loopback Graph API and Telegram, a recording queue.
app, queue, sleeps = channels.app, channels.queue, channels.sleeps


def whatsapp_customer(
    app: App, wa_id: str, name: str, *, wrote_at: float | None = None
) -> tuple[Customer, Conversation]:
    """A customer who wrote on WhatsApp from ``wa_id`` (``wrote_at``: when, now by default)."""
    cid = conversation_id(APP_SECRET, SHOP, "whatsapp", wa_id)
    customer = crm.find_or_create_customer_by_phone(
        app.store, SHOP, f"+{wa_id}", name, f"whatsapp:{cid}"
    )
    return customer, _conversation(app, cid, "whatsapp", wa_id, customer, wrote_at)


def telegram_customer(app: App, chat_id: str, name: str) -> tuple[Customer, Conversation]:
    cid = conversation_id(APP_SECRET, SHOP, "telegram", chat_id)
    now = time.time()
    customer = Customer(
        id=new_sortable_id(),
        name=name,
        identities=[f"telegram:{cid}"],
        created_at=now,
        updated_at=now,
    )
    app.store.create(SHOP, crm.CUSTOMERS, customer.id, customer.to_doc())
    return customer, _conversation(app, cid, "telegram", chat_id, customer, now)


def _conversation(
    app: App, cid: str, channel: Any, user: str, customer: Customer, wrote_at: float | None
) -> Conversation:
    now = time.time()
    conversation = Conversation(
        id=cid,
        channel=channel,
        customer_id=customer.id,
        channel_user=user,
        last_inbound_at=now if wrote_at is None else wrote_at,
        created_at=now,
        updated_at=now,
    )
    conversations.create(app.store, SHOP, conversation)
    return conversation


def show(app: App, conversation: Conversation, product_id: str, at: float) -> None:
    """The assistant showed ``product_id``'s card in the conversation at ``at``."""
    from shared.models import Message

    message = Message(
        id=new_sortable_id(),
        role="assistant",
        text="Voici",
        at=at,
        lang="fr",
        products=[ShownProduct(id=product_id, variant_id=f"{product_id}:1")],
    )
    conversations.update(
        app.store,
        SHOP,
        conversation.id,
        lambda c: c.model_copy(update={"recent": [*c.recent, message]}),
    )


def order(
    app: App,
    customer: Customer,
    conversation: Conversation,
    status: OrderStatus = "awaiting_payment",
    *,
    at: float | None = None,
    product: str = "boubou-brode",
) -> Lead:
    at = time.time() if at is None else at
    lead = Lead(
        id=new_sortable_id(),
        customer_id=customer.id,
        conversation_id=conversation.id,
        channel=conversation.channel,
        name=customer.name,
        phone=customer.phone or "+221770000000",
        address="Mermoz, Dakar",
        product_id=product,
        product_title="Boubou brodé",
        quantity=1,
        unit_price=45000,
        currency="XOF",
        total=45000,
        status=status,
        history=[StatusChange(status=status, at=at, actor="customer")],
        created_at=at,
        updated_at=at,
    )
    return crm.save_lead(app.store, SHOP, lead)


def campaign(app: App, description: dict[str, Any], *, replace: bool = False) -> Campaign:
    shop = app.shops.get(SHOP)
    now = time.time()
    return definitions.save(
        app.store, shop, definitions.build(shop, description, now), now, replace=replace
    )


TEMPLATE = {
    "name": "order_reminder",
    "language": "fr",
    "variables": ["customer.first_name", "order.product"],
}
