"""Plans and daily quotas (seed 000): the turn reaching 80 % of the quota warns, past it the
customer gets the limit message with the plans and one live checkout per plan (their message
still stored), a plan paid through the IPN raises the quota once per event, days turn in the
shop's time zone, concurrent turns count exactly, a paid plan activates or extends a subscription
once per payment event and stops counting when it expires, operators list subscriptions, and
the plans are checked as settings."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

import pytest

from shared import conversations, crm, quotas
from shared.app import App
from shared.chat import ChatService, TurnResult, result_of
from shared.checkout import CHECKOUT_ROUTES, checkout_route, reference
from shared.cli import main
from shared.exceptions import InvalidInputError
from shared.ids import new_session_id, new_sortable_id
from shared.ipn import PAYMENTS
from shared.models import Conversation, Customer, Message, Shop
from shared.money import format_price
from shared.payments.test import TestProvider
from shared.shops import load_shop
from tests.fixtures.app import SHOP, Client
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script
from tests.payments.test_ipn import drained, post

SHOP_ID = SHOP["id"]
ANSWER = "Voici ma réponse."
PLANS = [
    {
        "id": "semaine",
        "name": "Semaine",
        "price": 1500,
        "currency": "XOF",
        "period_days": 7,
        "daily_messages": 50,
    },
    {
        "id": "mois",
        "name": "Mois",
        "price": "5000",
        "currency": "XOF",
        "period_days": 30,
        "daily_messages": 200,
    },
]
# Tomorrow, not a fixed date: the store expires counters by the real time, so a day long past
# would find its counters gone.
TOMORROW = datetime.now(UTC).date() + timedelta(days=1)
MORNING = datetime.combine(TOMORROW, dt_time(9, 0), UTC).timestamp()  # 09:00 in Dakar (UTC)
DAY = 86400.0
CHECKOUT = re.compile(r"(?<=/pay/)chk_[\w-]+")  # the test provider's checkout ids in a link


@dataclass
class Clock:
    """The ChatService's clock, moved by the test."""

    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def script(app: App) -> Script:
    """Every model call answers ANSWER, and is recorded."""
    played = Script(responder=lambda request: Reply(ANSWER))
    app.llm_override = ScriptedLLM(played)
    return played


def chat_at(app: App, clock: Clock, **shop_settings: Any) -> tuple[ChatService, Shop]:
    """A chat service on ``app``'s store whose time is ``clock``, and the shop with
    ``shop_settings``."""
    app.store.put(SHOP_ID, "shops", SHOP_ID, {**SHOP, "catalog_version": 1, **shop_settings})
    chat = ChatService(app.settings, app.store, app.llm_for, enqueue=app.queue.send, clock=clock)
    return chat, load_shop(app.store, SHOP_ID)


def turns(chat: ChatService, shop: Shop, texts: list[str]) -> list[TurnResult]:
    """One conversation's turns, one per text."""
    results: list[TurnResult] = []
    session_id = None
    for text in texts:
        results.append(chat.turn(shop, session_id, text))
        session_id = results[-1].session_id
    return results


def stored_messages(app: App, session_id: str) -> list[Message]:
    return conversations.latest_messages(app.store, SHOP_ID, session_id, 100)


def conversation(app: App, session_id: str) -> Conversation:
    found = conversations.get(app.store, SHOP_ID, session_id)
    assert found is not None
    return found


# --- the warning and the limit ---------------------------------------------------------------


def test_the_turn_reaching_80_percent_of_the_quota_warns_once(app: App, script: Script) -> None:
    chat, shop = chat_at(app, Clock(MORNING), free_daily_messages=5)
    replies = [r.reply for r in turns(chat, shop, ["Bonjour, une question ?"] * 5)]
    warning = "(Vous avez utilisé 4 de vos 5 messages du jour.)"
    assert replies[3] == f"{warning}\n\n{ANSWER}"
    assert [r for i, r in enumerate(replies) if i != 3] == [ANSWER] * 4
    assert len(script.seen) == 5  # every turn within the quota is the model's


def test_the_warning_speaks_the_customers_language(app: App, script: Script) -> None:
    chat, shop = chat_at(app, Clock(MORNING), free_daily_messages=1)
    (result,) = turns(chat, shop, ["Hello, how much is the delivery?"])
    assert result.reply == f"(You have used 1 of your 1 messages for today.)\n\n{ANSWER}"


def test_the_limit_message_keeps_the_conversations_language(app: App, script: Script) -> None:
    chat, shop = chat_at(app, Clock(MORNING), free_daily_messages=1)
    first, second = turns(chat, shop, ["Hello, how much is the delivery?", "ok"])
    assert first.lang == "en"  # "ok" alone would be the shop's first language, French
    assert second.reply.startswith("You have reached today's limit of 1 messages.")
    assert second.lang == "en"


def test_past_the_quota_the_limit_message_lists_the_plans_and_the_message_is_stored(
    app: App, script: Script
) -> None:
    chat, shop = chat_at(app, Clock(MORNING), free_daily_messages=2, plans=PLANS)
    first, _, third = turns(
        chat, shop, ["Bonjour", "Une question ?", "Combien coûte la livraison ?"]
    )
    assert (first.reply, len(script.seen)) == (ANSWER, 2)  # the third never reached the model
    assert CHECKOUT.sub("{chk}", third.reply) == "\n".join(
        [
            "Vous avez atteint la limite de 2 messages pour aujourd'hui. Votre message est bien "
            "enregistré ; vous pourrez reprendre la conversation demain.",
            "Pour continuer dès maintenant, choisissez une formule :",
            f"- Semaine : {format_price(Decimal(1500), 'XOF', 'fr')} pour 7 jours, "
            "50 messages par jour — payer : http://127.0.0.1:8080/pay/{chk}",
            f"- Mois : {format_price(Decimal(5000), 'XOF', 'fr')} pour 30 jours, "
            "200 messages par jour — payer : http://127.0.0.1:8080/pay/{chk}",
        ]
    )
    assert "5\u202f000 FCFA" in third.reply and third.lang == "fr" and third.products == []
    # The customer's message is stored with the answer it got, in the history and on the
    # conversation's recent list (what the next turn's model would read).
    messages = stored_messages(app, third.session_id)
    assert [(m.role, m.text) for m in messages[-2:]] == [
        ("user", "Combien coûte la livraison ?"),
        ("assistant", third.reply),
    ]
    assert messages[-1].id == third.reply_id and messages[-1].lang == "fr"
    recent = conversation(app, third.session_id).recent
    assert [m.text for m in recent] == [m.text for m in messages]


def test_the_limit_message_fits_the_tutor_persona_in_english(
    app: App, script: Script
) -> None:
    eur = {**PLANS[0], "id": "month", "name": "Monthly", "price": "9.90", "currency": "EUR"}
    chat, shop = chat_at(app, Clock(MORNING), persona="tutor", free_daily_messages=0, plans=[eur])
    result = chat.turn(shop, None, "Hello, can you explain fractions to me?")
    assert CHECKOUT.sub("{chk}", result.reply) == (
        "This assistant is for subscribers. Your message is saved.\n"
        "To continue now, choose a plan:\n"
        "- Monthly: 9.90 € for 7 days, 50 messages a day — pay: "
        "http://127.0.0.1:8080/pay/{chk}"
    )
    assert script.seen == []


def test_the_limit_streams_like_an_answer(app: App, script: Script) -> None:
    chat, shop = chat_at(app, Clock(MORNING), free_daily_messages=0)
    events = list(chat.stream(shop, None, "Bonjour"))
    *deltas, result = events
    assert isinstance(result, TurnResult)
    assert "".join(e.text for e in deltas if not isinstance(e, TurnResult)) == result.reply
    assert result.reply.startswith("Cet assistant est réservé aux abonnés.")


def test_a_sales_shop_without_quota_counts_nothing(app: App, script: Script) -> None:
    chat, shop = chat_at(app, Clock(MORNING))
    assert shop.free_daily_messages is None and shop.plans == []
    turns(chat, shop, ["Bonjour"] * 3)
    assert list(app.store.scan(SHOP_ID, quotas.USAGE)) == []


def test_the_day_turns_at_midnight_in_the_shops_time_zone(app: App, script: Script) -> None:
    # 23:30 in Tokyo is 14:30 UTC: the UTC day goes on after Tokyo's midnight.
    late = datetime.combine(TOMORROW, dt_time(14, 30), UTC).timestamp()
    clock = Clock(late)
    chat, shop = chat_at(app, clock, free_daily_messages=1, timezone="Asia/Tokyo")
    first = chat.turn(shop, None, "Bonjour")
    assert first.reply.endswith(ANSWER)
    clock.now = late + 20 * 60  # 23:50 in Tokyo: the same day
    assert chat.turn(shop, first.session_id, "Encore ?").reply.startswith("Vous avez atteint")
    clock.now = late + 40 * 60  # 00:10 in Tokyo, still the same day in UTC
    assert chat.turn(shop, first.session_id, "Et maintenant ?").reply.endswith(ANSWER)
    assert quotas.day_of(shop, clock.now) == (TOMORROW + timedelta(days=1)).isoformat()
    # Each day's counter expires by itself a few days later.
    counters = list(app.store.scan(SHOP_ID, quotas.USAGE))
    assert sorted(d.data["messages"] for d in counters) == [1, 2]
    assert all(d.expires_at is not None and d.expires_at > clock.now + DAY for d in counters)


# --- concurrent turns --------------------------------------------------------------------------


def key_of(app: App, sid: str) -> str:
    """The usage key of conversation ``sid``, as a turn works it out."""
    started = conversation(app, sid)
    return quotas.customer_key(started, crm.conversation_customer(app.store, SHOP_ID, started))


Opened = list[tuple[Conversation, int, Message]]


def verified_customer_in_conversations(app: App, count: int, at: float) -> tuple[Customer, Opened]:
    """One verified WhatsApp customer with ``count`` conversations, each holding one unanswered
    message: the conversation, its stored version and the message."""
    ids = [new_session_id() for _ in range(count)]
    customer = Customer(
        id=new_sortable_id(),
        phone="+221771234567",
        phone_verified=True,
        identities=[f"whatsapp:{cid}" for cid in ids],
        created_at=MORNING,
        updated_at=MORNING,
    )
    app.store.create(SHOP_ID, "customers", customer.id, customer.to_doc())
    opened: Opened = []
    for cid in ids:
        message = Message(id=new_sortable_id(), role="user", text="Bonjour", at=at)
        started = Conversation(
            id=cid,
            channel="whatsapp",
            customer_id=customer.id,
            recent=[message],
            created_at=MORNING,
            updated_at=MORNING,
        )
        opened.append((started, conversations.create(app.store, SHOP_ID, started), message))
    return customer, opened


def answered_at_once(chat: ChatService, shop: Shop, opened: Opened) -> list[TurnResult]:
    """Every conversation's message answered at the same moment, one thread each."""
    start = threading.Barrier(len(opened))

    def answer(started: Conversation, version: int, message: Message) -> TurnResult:
        start.wait()
        return result_of(chat.respond(shop, started, version, [message], stored_in_recent=True))

    with ThreadPoolExecutor(len(opened)) as pool:
        return list(pool.map(lambda o: answer(*o), opened))

TURNS = 20


def test_twenty_concurrent_turns_of_one_customer_count_exactly(app: App, script: Script) -> None:
    """One verified WhatsApp customer writing from 20 conversations at once: with a quota of 15,
    exactly 15 turns reach the model and 5 get the limit message."""
    clock = Clock(MORNING)
    chat, shop = chat_at(app, clock, free_daily_messages=15)
    customer, opened = verified_customer_in_conversations(app, TURNS, MORNING)
    replies = [r.reply for r in answered_at_once(chat, shop, opened)]
    limited = [r for r in replies if r.startswith("Vous avez atteint la limite de 15 messages")]
    assert len(limited) == TURNS - 15
    assert len(script.seen) == 15
    (counter,) = app.store.scan(SHOP_ID, quotas.USAGE)
    assert counter.id == f"customer:{customer.id}:{TOMORROW.isoformat()}"
    assert counter.data["messages"] == TURNS


# --- subscriptions -----------------------------------------------------------------------------


def test_a_paid_plan_activates_once_per_event_and_extends(app: App) -> None:
    shop = Shop.model_validate({**SHOP, "plans": PLANS})
    key = "customer:awa"
    first = quotas.activate_subscription(app.store, shop, key, "semaine", "evt-1", MORNING)
    assert (first.plan_id, first.daily_messages) == ("semaine", 50)
    assert (first.started_at, first.expires_at) == (MORNING, MORNING + 7 * DAY)
    # The same payment event again (a provider's retry, a replay): nothing changes.
    doc = app.store.get(SHOP_ID, quotas.SUBSCRIPTIONS, key)
    again = quotas.activate_subscription(app.store, shop, key, "semaine", "evt-1", MORNING + 60)
    assert again.expires_at == MORNING + 7 * DAY
    assert app.store.get(SHOP_ID, quotas.SUBSCRIPTIONS, key) == doc
    # Another payment while it runs: extended from its end; a new plan takes over.
    extended = quotas.activate_subscription(app.store, shop, key, "mois", "evt-2", MORNING + DAY)
    assert (extended.plan_id, extended.daily_messages) == ("mois", 200)
    assert (extended.started_at, extended.expires_at) == (MORNING, MORNING + 37 * DAY)
    # After it ended, a payment starts a new period from the payment.
    later = MORNING + 40 * DAY
    renewed = quotas.activate_subscription(app.store, shop, key, "semaine", "evt-3", later)
    assert (renewed.started_at, renewed.expires_at) == (later, later + 7 * DAY)
    assert renewed.payment_events == ["evt-1", "evt-2", "evt-3"]


def test_an_unknown_plan_is_refused(app: App) -> None:
    shop = Shop.model_validate({**SHOP, "plans": PLANS})
    with pytest.raises(InvalidInputError, match="'annee' is not a plan"):
        quotas.activate_subscription(app.store, shop, "customer:awa", "annee", "evt-1", MORNING)
    assert list(app.store.scan(SHOP_ID, quotas.SUBSCRIPTIONS)) == []


def test_a_subscription_raises_the_quota_until_it_expires(app: App, script: Script) -> None:
    clock = Clock(MORNING)
    one_day = {**PLANS[0], "id": "jour", "period_days": 1, "daily_messages": 3}
    chat, shop = chat_at(app, clock, free_daily_messages=1, plans=[one_day])
    first = chat.turn(shop, None, "Bonjour")
    sid = first.session_id
    assert chat.turn(shop, sid, "Encore ?").reply.startswith("Vous avez atteint la limite de 1")
    key = key_of(app, sid)
    assert key.startswith("conversation:") and sid not in key  # no bearer secret in the key
    quotas.activate_subscription(app.store, shop, key, "jour", "evt-1", clock.now)
    # The plan's quota replaces the free one at once: 3 today, 2 of them used.
    assert chat.turn(shop, sid, "Et là ?").reply.endswith(ANSWER)
    assert chat.turn(shop, sid, "Et encore ?").reply.startswith("Vous avez atteint la limite de 3")
    clock.now = MORNING + DAY - 3600  # the next day, an hour before the plan ends
    assert chat.turn(shop, sid, "Bonjour").reply.endswith(ANSWER)
    assert chat.turn(shop, sid, "Deuxième ?").reply.endswith(ANSWER)
    clock.now = MORNING + DAY + 60  # it ended: the free quota again, already used today
    assert chat.turn(shop, sid, "Troisième ?").reply.startswith("Vous avez atteint la limite de 1")


# --- the operator's list -------------------------------------------------------------------------


def test_subscriptions_are_listed_as_json_and_csv_without_formulas(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    formula = {**PLANS[1], "name": '=HYPERLINK("http://x","clic")'}
    shop = Shop.model_validate({**SHOP, "plans": [PLANS[0], formula]})
    quotas.activate_subscription(app.store, shop, "customer:old", "semaine", "e1", now - 30 * DAY)
    quotas.activate_subscription(app.store, shop, "customer:awa", "mois", "e2", now)

    assert main(["subscriptions", "--shop", SHOP_ID]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["customer"], r["plan_id"], r["status"]) for r in listed] == [
        ("customer:awa", "mois", "active"),
        ("customer:old", "semaine", "expired"),
    ]
    started = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    assert listed[0]["started_at"] == started and listed[0]["daily_messages"] == 200

    assert main(["subscriptions", "--shop", SHOP_ID, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["plan_name"] == '\'=HYPERLINK("http://x","clic")'
    assert (rows[0]["customer"], rows[0]["daily_messages"]) == ("customer:awa", "200")
    assert rows[1]["plan_name"] == "Semaine"


# --- the plans as settings -----------------------------------------------------------------------


def test_plans_and_free_quota_are_set_through_the_cli(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["shop", "set", SHOP_ID, f"plans={json.dumps(PLANS)}", "free_daily_messages=20"]
    )
    assert code == 0, capsys.readouterr().err
    shown = json.loads(capsys.readouterr().out)
    assert shown["free_daily_messages"] == 20
    assert [(p["id"], p["price"], p["currency"]) for p in shown["plans"]] == [
        ("semaine", "1500", "XOF"),
        ("mois", "5000", "XOF"),
    ]
    shop = load_shop(app.store, SHOP_ID)
    assert shop.plans[1].price == Decimal(5000) and shop.free_daily_messages == 20
    # key= clears both: no plans, unlimited.
    assert main(["shop", "set", SHOP_ID, "plans=", "free_daily_messages="]) == 0
    shop = load_shop(app.store, SHOP_ID)
    assert (shop.plans, shop.free_daily_messages) == ([], None)


def _plans(**change: Any) -> str:
    return "plans=" + json.dumps([{**PLANS[0], **change}])


@pytest.mark.parametrize(
    ("assignment", "key", "says"),
    [
        (_plans(price=0), "plans.0.price", "greater than 0"),
        (_plans(price="12.345"), "plans.0.price", "no more than 2 decimal places"),
        (_plans(price="abc"), "plans.0.price", "valid decimal"),
        (_plans(currency="EURO"), "plans.0.currency", "not an ISO 4217 code"),
        (_plans(period_days=0), "plans.0.period_days", "greater than or equal to 1"),
        (_plans(daily_messages=0), "plans.0.daily_messages", "greater than or equal to 1"),
        (_plans(id="Mon Plan"), "plans.0.id", "should match pattern"),
        (_plans(name=""), "plans.0.name", "at least 1 character"),
        ("plans=" + json.dumps([PLANS[0], PLANS[0]]), "plans", "two plans have the same id"),
        ("plans=" + json.dumps([PLANS[0]] * 7), "plans", "at most 6 items"),
        ("plans=[{id: 1}]", "plans", "expected JSON"),
        ('plans={"id": "x"}', "plans", "valid list"),
        ("free_daily_messages=-1", "free_daily_messages", "greater than or equal to 0"),
        ("free_daily_messages=twenty", "free_daily_messages", "valid integer"),
    ],
)
def test_a_bad_plan_names_its_key_and_changes_nothing(
    app: App, capsys: pytest.CaptureFixture[str], assignment: str, key: str, says: str
) -> None:
    before = app.store.get(SHOP_ID, "shops", SHOP_ID)
    assert main(["shop", "set", SHOP_ID, assignment]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {key}: ") and says in err, err
    assert out == ""
    assert app.store.get(SHOP_ID, "shops", SHOP_ID) == before



# --- buying a plan from the limit message ------------------------------------------------------


def links(reply: str) -> list[str]:
    return CHECKOUT.findall(reply)


def past_the_quota(app: App, clock: Clock, **shop_settings: Any) -> tuple[ChatService, Shop, str]:
    """A conversation whose free quota (1) is used up: its second turn got the limit message."""
    chat, shop = chat_at(app, clock, free_daily_messages=1, plans=PLANS, **shop_settings)
    first = chat.turn(shop, None, "Bonjour")
    assert first.reply.endswith(ANSWER)
    return chat, shop, first.session_id


def signed_plan_event(app: App, checkout_id: str, amount: Decimal) -> tuple[bytes, dict[str, str]]:
    """The test provider's signed "paid" event for ``checkout_id``, with the reference its
    checkout was made with (as the dev server's checkout page builds it)."""
    route = checkout_route(app.store, SHOP_ID, "test", checkout_id)
    provider = app.payments.provider("test")
    assert isinstance(provider, TestProvider) and route is not None
    now = time.time()
    body = provider.event_body(
        checkout_id, reference(SHOP_ID, route["order"]), amount, "XOF", "paid", now
    )
    return body, provider.sign(body, now)


def told(app: App, session_id: str) -> list[str]:
    return [m.text for m in stored_messages(app, session_id) if m.text.startswith("Abonnement")]


def test_each_plan_of_the_limit_message_links_to_a_checkout_of_its_price(
    app: App, script: Script
) -> None:
    chat, shop, sid = past_the_quota(app, Clock(time.time()))
    reply = chat.turn(shop, sid, "Encore une question").reply
    week, month = links(reply)
    assert f"— payer : http://127.0.0.1:8080/pay/{week}" in reply.splitlines()[2]
    routes = [checkout_route(app.store, SHOP_ID, "test", c) for c in (week, month)]
    assert [(r["amount"], r["currency"], r["shop"]) for r in routes] == [
        ("1500", "XOF", SHOP_ID),
        ("5000", "XOF", SHOP_ID),
    ]
    # The reference names a plan purchase of this customer, never their conversation.
    assert all(r["order"].startswith("plan:") and sid not in r["order"] for r in routes)


def test_turns_past_the_quota_reuse_one_checkout_per_plan_even_at_once(
    app: App, script: Script
) -> None:
    chat, shop, sid = past_the_quota(app, Clock(time.time()))
    first = links(chat.turn(shop, sid, "Encore ?").reply)
    assert links(chat.turn(shop, sid, "Et maintenant ?").reply) == first
    # Five turns at once past the quota, in five conversations of one verified customer.
    customer, opened = verified_customer_in_conversations(app, 5, time.time())
    key = f"customer:{customer.id}:{quotas.day_of(shop, time.time())}"
    app.store.increment(SHOP_ID, quotas.USAGE, key, "messages", 1)  # the free message used
    replies = [links(r.reply) for r in answered_at_once(chat, shop, opened)]
    assert len({tuple(r) for r in replies}) == 1 and len(replies[0]) == 2
    assert replies[0] != first  # another customer, other checkouts
    assert len(list(app.store.scan(SHOP_ID, CHECKOUT_ROUTES))) == 4


def test_a_paid_plan_checkout_activates_the_subscription_and_the_model_answers_again(
    client: Client, app: App, script: Script
) -> None:
    chat, shop, sid = past_the_quota(app, Clock(time.time()))
    week, _ = links(chat.turn(shop, sid, "Encore ?").reply)
    body, headers = signed_plan_event(app, week, Decimal(1500))
    answered = post(client, "test", body, headers)
    assert (answered.status, answered.json()) == (200, {"ok": True, "outcome": "paid"})
    key = key_of(app, sid)
    subscription = quotas.active_subscription(app.store, SHOP_ID, key, time.time())
    assert subscription is not None and subscription.plan_id == "semaine"
    [payment] = [doc.data for doc in app.store.scan(SHOP_ID, PAYMENTS)]
    assert (payment["amount"], payment["currency"], payment["reference"]) == ("1500", "XOF", week)
    drained(app)
    until = datetime.fromtimestamp(subscription.expires_at, UTC).strftime("%d/%m/%Y à %H:%M")
    assert told(app, sid) == [
        f"Abonnement activé, merci ! Semaine : 50 messages par jour jusqu'au {until}."
    ]
    # The plan's quota now: the model answers.
    assert chat.turn(shop, sid, "Et maintenant ?").reply.endswith(ANSWER)
    assert len(script.seen) == 2


def test_one_plan_payment_delivered_five_times_at_once_extends_once(
    client: Client, app: App, script: Script
) -> None:
    chat, shop, sid = past_the_quota(app, Clock(time.time()))
    _, month = links(chat.turn(shop, sid, "Encore ?").reply)
    body, headers = signed_plan_event(app, month, Decimal(5000))
    barrier = threading.Barrier(5)

    def deliver(_: int) -> int:
        barrier.wait()
        return post(client, "test", body, headers).status

    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(deliver, range(5))) == [200] * 5
    key = key_of(app, sid)
    (subscription,) = quotas.list_subscriptions(app.store, SHOP_ID)
    assert subscription.id == key and len(subscription.payment_events) == 1
    assert subscription.expires_at - subscription.started_at == 30 * DAY
    assert len(list(app.store.scan(SHOP_ID, PAYMENTS))) == 1
    drained(app)
    assert len(told(app, sid)) == 1
    # The next limit message (past the plan's 200) offers a new checkout, not the paid one.
    app.store.increment(SHOP_ID, quotas.USAGE, f"{key}:{quotas.day_of(shop, time.time())}",
                        "messages", 200)  # fmt: skip
    again = chat.turn(shop, sid, "Encore ?").reply
    assert again.startswith("Vous avez atteint la limite de 200") and month not in links(again)


def test_a_plan_payment_of_another_amount_activates_nothing(
    client: Client, app: App, script: Script
) -> None:
    chat, shop, sid = past_the_quota(app, Clock(time.time()))
    week, _ = links(chat.turn(shop, sid, "Encore ?").reply)
    body, headers = signed_plan_event(app, week, Decimal(150))
    assert post(client, "test", body, headers).json()["outcome"] == "mismatch"
    assert list(app.store.scan(SHOP_ID, quotas.SUBSCRIPTIONS)) == []
    drained(app)
    assert told(app, sid) == []
    assert chat.turn(shop, sid, "Et là ?").reply.startswith("Vous avez atteint la limite de 1")
    assert len(script.seen) == 1


def test_without_a_payment_service_the_limit_message_gives_the_contact(
    app: App, script: Script
) -> None:
    # Wave without its API key: no link can be made, the shop's contact is given instead.
    chat, shop, sid = past_the_quota(app, Clock(time.time()), payment_provider="wave")
    reply = chat.turn(shop, sid, "Encore ?").reply
    assert links(reply) == [] and reply.endswith(f"Pour vous abonner : {SHOP['contact']}")
