"""Who a campaign's segment selects: each condition on its own, the run's maximum, and who is
left out (one address twice, opted out by flag or by address, unreachable), with where each
customer is reached."""

from __future__ import annotations

import time
from typing import Any

from shared import conversations, crm, marketing
from shared.app import App
from shared.campaigns import audience, definitions
from shared.campaigns.audience import Audience
from shared.catalog import RESTOCKS
from shared.ids import new_sortable_id
from shared.models import Conversation, Customer, Message, mutate
from tests.campaigns.conftest import (
    SHOP,
    TEMPLATE,
    order,
    show,
    telegram_customer,
    whatsapp_customer,
)

HOURS = 3600.0
DAYS = 86400.0
BRIEF = {"brief": "Bonjour {{ customer.first_name }}"}


def select(app: App, segment: dict[str, Any], **description: Any) -> Audience:
    shop = app.shops.get(SHOP)
    built = definitions.build(
        shop, {"id": "test", "message": BRIEF, "segment": segment, **description}, time.time()
    )
    return audience.select(app.store, shop, built)


def reached(found: Audience) -> list[str]:
    return [r.name for r in found.recipients]


def changed(app: App, customer: Customer, **update: Any) -> Customer:
    return mutate(
        app.store, SHOP, crm.CUSTOMERS, customer.id, Customer, lambda c: c.model_copy(update=update)
    )[0]


def answered(app: App, chat: Conversation, lang: str, at: float) -> None:
    """The assistant answered in ``chat`` in ``lang`` at ``at``."""
    message = Message(id=new_sortable_id(), role="assistant", text="…", at=at, lang=lang)
    conversations.update(
        app.store,
        SHOP,
        chat.id,
        lambda c: c.model_copy(update={"recent": [*c.recent, message], "updated_at": at}),
    )


def widget_contact(app: App, phone: str, name: str) -> tuple[Customer, Conversation]:
    """A web chat customer who typed ``phone`` in an order: an unverified contact."""
    now = time.time()
    web = Conversation(
        id=new_sortable_id().ljust(43, "w"), channel="web", created_at=now, updated_at=now
    )
    conversations.create(app.store, SHOP, web)
    return crm.contact_for_order(app.store, SHOP, web, phone, name)


def test_order_status_and_idle_hours(app: App) -> None:
    old, recent = time.time() - 3 * HOURS, time.time() - 600
    awa, awa_chat = whatsapp_customer(app, "221770000101", "Awa")
    awa_order = order(app, awa, awa_chat, "awaiting_payment", at=old)
    fatou, fatou_chat = whatsapp_customer(app, "221770000102", "Fatou")
    order(app, fatou, fatou_chat, "awaiting_payment", at=recent)  # not idle long enough
    moussa, moussa_chat = whatsapp_customer(app, "221770000103", "Moussa")
    order(app, moussa, moussa_chat, "paid", at=old)  # another status

    found = select(app, {"order_status": ["awaiting_payment"], "order_idle_hours": 2})

    assert reached(found) == ["Awa"]
    assert found.recipients[0].order_id == awa_order.id
    assert found.left_out == {}
    # Without the idle hours, the recent order counts too.
    assert reached(select(app, {"order_status": ["awaiting_payment"]})) == ["Awa", "Fatou"]


def test_no_order_days(app: App) -> None:
    old, old_chat = whatsapp_customer(app, "221770000111", "Old")
    order(app, old, old_chat, "fulfilled", at=time.time() - 90 * DAYS)
    fresh, fresh_chat = whatsapp_customer(app, "221770000112", "Fresh")
    order(app, fresh, fresh_chat, "fulfilled", at=time.time() - 90 * DAYS)
    order(app, fresh, fresh_chat, "paid", at=time.time() - 5 * DAYS)
    whatsapp_customer(app, "221770000113", "Never")

    assert reached(select(app, {"no_order_days": 60})) == ["Old"]


def test_products_and_categories_ordered_or_shown(app: App) -> None:
    bought, bought_chat = whatsapp_customer(app, "221770000121", "Bought")
    order(app, bought, bought_chat, "paid", product="sac-raphia")
    _, saw_chat = whatsapp_customer(app, "221770000122", "Saw")
    show(app, saw_chat, "sandales-cuir", time.time() - 600)
    other, other_chat = whatsapp_customer(app, "221770000123", "Other")
    order(app, other, other_chat, "paid", product="boubou-brode")

    by_product = select(app, {"products": ["sac-raphia", "sandales-cuir"]})
    assert reached(by_product) == ["Bought", "Saw"]
    assert [r.product_id for r in by_product.recipients] == ["sac-raphia", "sandales-cuir"]

    by_category = select(app, {"categories": ["Chaussures"]})
    assert reached(by_category) == ["Saw"]
    assert by_category.recipients[0].product_id == "sandales-cuir"


def test_restocked_counts_only_a_product_seen_before_its_restock(app: App) -> None:
    restocked_at = time.time() - HOURS
    _, before_chat = whatsapp_customer(app, "221770000131", "Before")
    show(app, before_chat, "sac-raphia", restocked_at - HOURS)
    _, after_chat = whatsapp_customer(app, "221770000132", "After")
    show(app, after_chat, "sac-raphia", restocked_at + 60)  # saw it in stock already
    _, other_chat = whatsapp_customer(app, "221770000133", "Other")
    show(app, other_chat, "sandales-cuir", restocked_at - HOURS)  # not restocked
    app.store.put(SHOP, RESTOCKS, "sac-raphia", {"at": restocked_at})

    found = select(app, {"restocked": True})

    assert reached(found) == ["Before"]
    [recipient] = found.recipients
    assert recipient.product_id == "sac-raphia"
    assert recipient.subject == f"{recipient.customer_id}~sac-raphia~{int(restocked_at)}"


def test_channels(app: App) -> None:
    whatsapp_customer(app, "221770000141", "On WhatsApp")
    telegram_customer(app, "5550141", "On Telegram")

    telegram_only = select(app, {"channels": ["telegram"]})
    assert reached(telegram_only) == ["On Telegram"]
    assert telegram_only.recipients[0].address == "5550141"
    both = select(app, {})
    assert both.by_channel == {"whatsapp": 1, "telegram": 1}


def test_inactive_days(app: App) -> None:
    whatsapp_customer(app, "221770000151", "Quiet", wrote_at=time.time() - 10 * DAYS)
    whatsapp_customer(app, "221770000152", "Chatty", wrote_at=time.time() - HOURS)

    assert reached(select(app, {"inactive_days": 7})) == ["Quiet"]


def test_created_after_and_before(app: App) -> None:
    january = time.mktime((2030, 1, 10, 12, 0, 0, 0, 0, 0))
    for name, wa_id, month in (("January", "161", 1), ("March", "162", 3), ("May", "163", 5)):
        customer, _ = whatsapp_customer(app, f"221770000{wa_id}", name)
        changed(app, customer, created_at=january + (month - 1) * 30 * DAYS)

    in_range = {"created_after": "2030-02-01", "created_before": "2030-04-01"}
    assert reached(select(app, in_range)) == ["March"]
    assert reached(select(app, {"created_after": "2030-02-01"})) == ["March", "May"]
    assert reached(select(app, {"created_before": "2030-02-01"})) == ["January"]


def test_tags_must_all_be_there(app: App) -> None:
    both, _ = whatsapp_customer(app, "221770000171", "Both")
    changed(app, both, tags=["vip", "dakar"])
    one, _ = whatsapp_customer(app, "221770000172", "One")
    changed(app, one, tags=["vip"])
    whatsapp_customer(app, "221770000173", "None")

    assert reached(select(app, {"tags": ["vip", "dakar"]})) == ["Both"]
    assert reached(select(app, {"tags": ["vip"]})) == ["Both", "One"]


def test_languages_from_the_last_assistant_message(app: App) -> None:
    now = time.time()
    _, english_chat = whatsapp_customer(app, "221770000181", "Now English")
    answered(app, english_chat, "fr", now - 600)
    answered(app, english_chat, "en", now - 60)  # the last answer says English
    _, french_chat = whatsapp_customer(app, "221770000182", "French")
    answered(app, french_chat, "fr", now - 60)
    whatsapp_customer(app, "221770000183", "Never answered")  # the shop's first language

    english = select(app, {"languages": ["en"]})
    assert reached(english) == ["Now English"]
    assert english.recipients[0].lang == "en"
    assert reached(select(app, {"languages": ["fr"]})) == ["French", "Never answered"]


def test_max_per_run_counts_who_is_left_for_later(app: App) -> None:
    for number in range(5):
        whatsapp_customer(app, f"22177000019{number}", f"Client {number}")

    found = select(app, {}, schedule={"max_per_run": 3})

    assert reached(found) == ["Client 0", "Client 1", "Client 2"]  # customer id order
    assert found.left_out == {"over_max_per_run": 2}


def test_two_customers_at_one_address_are_reached_once(app: App) -> None:
    whatsapp_customer(app, "221770000201", "Awa on WhatsApp")
    widget_contact(app, "+221770000201", "Awa on the site")  # typed the same number

    found = select(app, {}, message={"template": TEMPLATE})

    assert reached(found) == ["Awa on WhatsApp"]
    assert found.left_out == {"same_address": 1}


def test_opted_out_by_the_customers_flag_or_by_the_address_alone(app: App) -> None:
    flagged, _ = whatsapp_customer(app, "221770000211", "Flagged")
    marketing.set_marketing(app.store, SHOP, flagged.id, True, time.time())
    registered, _ = whatsapp_customer(app, "221770000212", "Registered")
    # A STOP known only for the number (say, from Meta's preference webhook): no flag.
    marketing.set_marketing(
        app.store, SHOP, None, True, time.time(), addresses=["whatsapp:+221770000212"]
    )
    stored = crm.get_customer(app.store, SHOP, registered.id)
    assert stored is not None and stored.marketing_opt_out is False
    whatsapp_customer(app, "221770000213", "Reachable")

    found = select(app, {})

    assert reached(found) == ["Reachable"]
    assert found.left_out == {"opted_out": 2}


def test_a_customer_no_channel_reaches_is_unreachable(app: App) -> None:
    now = time.time()
    nowhere = Customer(id=new_sortable_id(), name="Nowhere", created_at=now, updated_at=now)
    app.store.create(SHOP, crm.CUSTOMERS, nowhere.id, nowhere.to_doc())
    whatsapp_customer(app, "221770000221", "Reachable")

    found = select(app, {})

    assert reached(found) == ["Reachable"]
    assert found.left_out == {"unreachable": 1}


def test_a_widget_contact_is_reached_by_phone_only_with_a_whatsapp_template(app: App) -> None:
    contact, _ = widget_contact(app, "+221765554433", "Awa Diop")

    without_template = select(app, {})
    assert without_template.recipients == []
    assert without_template.left_out == {"unreachable": 1}

    with_template = select(app, {}, message={"template": TEMPLATE})
    [recipient] = with_template.recipients
    assert (recipient.customer_id, recipient.channel) == (contact.id, "whatsapp")
    assert recipient.address == "221765554433"
    assert recipient.conversation_id is None  # they never wrote on WhatsApp
    # Not on WhatsApp when the campaign keeps to Telegram.
    telegram = select(app, {"channels": ["telegram"]}, message={"template": TEMPLATE})
    assert telegram.recipients == [] and telegram.left_out == {"unreachable": 1}
