"""One campaign message: the fields a brief and a template see, the sandbox, the shop's opt-out
hint, and the model's rewrite (kept only when it states no price the shop does not), on its own
and through a run at the loopback Graph API."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, ClassVar

import pytest

from shared import conversations, schedules
from shared.app import App
from shared.campaigns import render, runner
from shared.campaigns.definitions import load_campaign
from shared.campaigns.models import Campaign, Recipient
from shared.catalog import PRODUCTS
from shared.exceptions import InvalidInputError
from shared.ids import new_sortable_id
from shared.models import Message, Product
from shared.shops import update_shop
from tests.campaigns.conftest import SHOP, campaign, order, whatsapp_customer
from tests.fixtures.graph_server import GraphServer
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Fail, Reply, Script

HOURS = 3600.0
BRIEF = "Bonjour {{ customer.first_name }}, votre {{ order.product }} ({{ order.total }}) attend."


@pytest.fixture(autouse=True)
def daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours are tested on their own: elsewhere the shop is never in them."""
    monkeypatch.setattr(schedules, "quiet_until", lambda quiet, zone, at: None)


def a_campaign(brief: str = BRIEF, **message: Any) -> Campaign:
    description = {"id": "test", "name": "Test", "message": {"brief": brief, **message}}
    return Campaign.model_validate({**description, "created_at": 0.0, "updated_at": 0.0})


def subject(app: App, *, lang: str = "fr", product: str | None = "sac-raphia") -> render.Subject:
    customer, chat = whatsapp_customer(app, "221770000301", "Awa Ndiaye")
    lead = order(app, customer, chat, at=time.time() - 3 * HOURS)
    doc = app.store.get(SHOP, PRODUCTS, product) if product else None
    recipient = Recipient(
        customer_id=customer.id,
        channel="whatsapp",
        address="221770000301",
        name=customer.name,
        lang=lang,
        order_id=lead.id,
        subject=customer.id,
    )
    return render.Subject(
        shop=app.shops.get(SHOP),
        recipient=recipient,
        customer=customer,
        order=lead,
        product=Product.from_doc(doc) if doc else None,
    )


def test_the_fields_of_a_customer_an_order_and_a_product(app: App) -> None:
    who = subject(app)
    fields = render.fields(who)

    assert fields == {
        "customer.name": "Awa Ndiaye",
        "customer.first_name": "Awa",
        "shop.name": "Maison Teranga",
        "shop.url": "https://maison-teranga.example",
        "shop.contact": "WhatsApp +221 77 000 00 00",
        "order.id": fields["order.id"],
        "order.product": "Boubou brodé",
        "order.variant": "",
        "order.quantity": "1",
        "order.total": "45\u202f000 FCFA",
        "product.title": "Sac en raphia",
        "product.url": "https://maison-teranga.example/products/sac-raphia",  # from the shop's
        "product.price": "22\u202f500 FCFA",
    }
    assert fields["order.id"]
    # Without an order or a product, their fields are empty, not an error.
    bare = render.Subject(who.shop, who.recipient, None, None, None)
    assert render.fields(bare)["order.total"] == render.fields(bare)["product.title"] == ""
    assert render.fields(bare)["customer.first_name"] == "Awa"  # the recipient's name


def test_a_template_takes_its_variables_from_the_fields(app: App) -> None:
    from shared.campaigns.models import TemplateMessage

    message = TemplateMessage(name="relance", variables=["customer.first_name", "order.variant"])
    template = render.template_for(message, subject(app))

    assert template.components == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Awa"}, {"type": "text", "text": "-"}],
        }
    ]


def test_the_brief_renders_in_a_sandbox_that_hides_python_internals(app: App) -> None:
    who = subject(app)
    assert render.brief_text(a_campaign(), who) == (
        "Bonjour Awa, votre Boubou brodé (45\u202f000 FCFA) attend."
    )
    # Refused as the project's own error: the runner marks that one message failed.
    for unsafe in ("{{ ''.__class__.__mro__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}"):
        with pytest.raises(InvalidInputError, match="SecurityError"):
            render.brief_text(a_campaign(unsafe), who)
    # An unsafe attribute alone renders as nothing: no class, no object's repr.
    assert render.brief_text(a_campaign("A{{ ''.__class__ }}{{ customer.__dict__ }}B"), who) == "AB"


def test_a_recipes_brief_is_written_in_the_customers_language(app: App) -> None:
    from shared.campaigns.recipes import abandoned_order

    brief = abandoned_order({})["message"]["brief"]
    english = render.brief_text(a_campaign(brief), subject(app, lang="en"))
    assert english.startswith("Hello Awa, your order Boubou brodé (45,000 FCFA)")


def test_the_opt_out_hint_is_the_shops_in_the_customers_language(app: App) -> None:
    update_shop(
        app.store,
        SHOP,
        {"marketing_optout_hint": {"fr": "STOP = plus de pub.", "en": "STOP = no more ads."}},
    )
    shop = app.shops.get(SHOP)

    assert render.with_hint(shop, "en", "Hello") == "Hello\n\nSTOP = no more ads."
    assert render.with_hint(shop, "fr", "Bonjour") == "Bonjour\n\nSTOP = plus de pub."


def test_the_models_rewrite_is_used(app: App) -> None:
    script = Script().then(Reply("Awa, votre Boubou brodé vous attend toujours !"))
    who = subject(app)
    rendered = render.brief_text(a_campaign(), who)

    text = render.personalised(ScriptedLLM(script), a_campaign(), who, rendered)

    assert text == "Awa, votre Boubou brodé vous attend toujours !"
    [request] = script.seen
    system, user = request.messages
    assert user["text"] == rendered
    assert '"Awa Ndiaye"' in system["text"] and "Maison Teranga" in system["text"]


@pytest.mark.parametrize(
    "step",
    [
        Reply("Awa, votre Boubou brodé est à 30 000 FCFA aujourd'hui seulement !"),  # not a price
        Fail(500),
        Reply(""),
        Reply("Bonjour " * 200),  # far too long for a marketing message
    ],
    ids=["price_not_in_the_catalogue", "model_error", "empty", "too_long"],
)
def test_a_rewrite_that_cannot_be_used_falls_back_to_the_brief(
    app: App, step: Reply | Fail
) -> None:
    script = Script().then(step)
    who = subject(app)
    rendered = render.brief_text(a_campaign(), who)

    assert render.personalised(ScriptedLLM(script), a_campaign(), who, rendered) == rendered
    assert len(script.seen) == 1


def test_a_rewrite_may_state_the_prices_the_shop_does(app: App) -> None:
    rewrite = "Awa, votre Boubou brodé (45 000 FCFA) et le sac en raphia (22 500 FCFA) attendent."
    script = Script().then(Reply(rewrite))
    who = subject(app)
    rendered = render.brief_text(a_campaign(), who)

    assert render.personalised(ScriptedLLM(script), a_campaign(), who, rendered) == rewrite


def test_personalise_false_never_calls_the_model(app: App) -> None:
    script = Script()  # no step: a call would fail
    who = subject(app)
    plain = a_campaign(personalise=False)
    rendered = render.brief_text(plain, who)

    assert render.personalised(ScriptedLLM(script), plain, who, rendered) == rendered
    assert script.seen == []


# --- through a run, at the loopback Graph API --------------------------------------------------


class OfflineScripted(ScriptedLLM):
    """A provider named like the offline responder: it writes no prose, so it is never asked."""

    name: ClassVar[str] = "offline"


def a_customer_with_an_abandoned_order(app: App, *, lang: str = "fr") -> None:
    customer, chat = whatsapp_customer(app, "221770000311", "Awa Ndiaye")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    answer = Message(id=new_sortable_id(), role="assistant", text="…", at=time.time(), lang=lang)
    conversations.update(
        app.store, SHOP, chat.id, lambda c: c.model_copy(update={"recent": [answer]})
    )


def run(app: App, campaign_id: str) -> Counter[str]:
    shop = app.shops.get(SHOP)
    _, statuses = runner.run_by_hand(
        app, shop, load_campaign(app.store, SHOP, campaign_id), time.time()
    )
    return statuses


def body(graph_server: GraphServer) -> str:
    [sent] = graph_server.sent
    assert sent["type"] == "text"
    return str(sent["text"]["body"])


def test_a_run_sends_the_rewrite_with_the_shops_hint(app: App, graph_server: GraphServer) -> None:
    update_shop(app.store, SHOP, {"marketing_optout_hint": {"en": "Text STOP to opt out."}})
    a_customer_with_an_abandoned_order(app, lang="en")
    script = Script().then(Reply("Awa, your embroidered boubou is still waiting!"))
    app.llm_override = ScriptedLLM(script)
    campaign(app, {"id": "relance", "recipe": "abandoned_order"})

    assert run(app, "relance") == Counter(sent=1)

    assert body(graph_server) == (
        "Awa, your embroidered boubou is still waiting!\n\nText STOP to opt out."
    )
    # The model was given the recipe's English brief to rewrite.
    assert script.seen[0].messages[1]["text"].startswith("Hello Awa, your order Boubou brodé")


def test_a_run_falls_back_to_the_brief_when_the_rewrite_invents_a_price(
    app: App, graph_server: GraphServer
) -> None:
    a_customer_with_an_abandoned_order(app)
    script = Script().then(Reply("Awa, votre boubou est à 9 900 FCFA ce soir seulement !"))
    app.llm_override = ScriptedLLM(script)
    campaign(app, {"id": "relance", "recipe": "abandoned_order"})

    assert run(app, "relance") == Counter(sent=1)

    text = body(graph_server)
    assert "9 900" not in text
    assert text.startswith("Bonjour Awa, votre commande Boubou brodé (45\u202f000 FCFA)")
    assert text.endswith("Répondez STOP pour ne plus recevoir nos offres.")


def test_a_run_with_the_offline_provider_sends_the_brief_without_asking_it(
    app: App, graph_server: GraphServer
) -> None:
    a_customer_with_an_abandoned_order(app)
    script = Script()  # no step: a call would fail, and fall back unseen
    app.llm_override = OfflineScripted(script)
    campaign(app, {"id": "relance", "recipe": "abandoned_order"})

    assert run(app, "relance") == Counter(sent=1)

    assert script.seen == []
    assert body(graph_server).startswith("Bonjour Awa, votre commande Boubou brodé")


def test_a_run_without_personalisation_never_asks_the_model(
    app: App, graph_server: GraphServer
) -> None:
    a_customer_with_an_abandoned_order(app)
    script = Script()
    app.llm_override = ScriptedLLM(script)
    campaign(
        app, {"id": "relance", "recipe": "abandoned_order", "message": {"personalise": False}}
    )

    assert run(app, "relance") == Counter(sent=1)

    assert script.seen == []
    assert body(graph_server).startswith("Bonjour Awa, votre commande Boubou brodé")
