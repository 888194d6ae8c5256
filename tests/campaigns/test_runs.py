"""Campaign runs against the loopback Graph API and Telegram: who is reached, on which channel,
with what; exactly once, whatever the retries, the duplicate triggers and the crashes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from shared import events, marketing, schedules
from shared.app import App
from shared.campaigns import runner
from shared.campaigns.definitions import load_campaign
from shared.campaigns.report import report
from shared.exceptions import StoreUnavailableError
from tests.campaigns.conftest import (
    SHOP,
    TEMPLATE,
    campaign,
    order,
    show,
    telegram_customer,
    whatsapp_customer,
)
from tests.channels.conftest import Faults, FaultyStore, RecordingQueue
from tests.fixtures.graph_server import Fail, GraphServer
from tests.fixtures.telegram_server import TelegramServer

HOURS = 3600.0
ABANDONED = {
    "id": "relance",
    "recipe": "abandoned_order",
    "options": {"hours": 2},
    "message": {"template": TEMPLATE},
}


def run(app: App, campaign_id: str, **options: bool) -> tuple[str, Counter[str]]:
    shop = app.shops.get(SHOP)
    done, statuses = runner.run_by_hand(
        app, shop, load_campaign(app.store, SHOP, campaign_id), time.time(), **options
    )
    return done.status, statuses


def recipients(graph_server: GraphServer) -> list[str]:
    return [m["to"] for m in graph_server.sent]


@pytest.fixture(autouse=True)
def daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours are tested on their own: elsewhere the shop is never in them."""
    monkeypatch.setattr(schedules, "quiet_until", lambda quiet, zone, at: None)


def test_an_abandoned_order_campaign_reaches_each_unpaid_order_once(
    app: App, graph_server: GraphServer
) -> None:
    three_hours_ago = time.time() - 3 * HOURS
    awa, awa_chat = whatsapp_customer(app, "221770000001", "Awa Ndiaye")
    order(app, awa, awa_chat, at=three_hours_ago)
    fatou, fatou_chat = whatsapp_customer(app, "221770000002", "Fatou Sow")
    order(app, fatou, fatou_chat, "confirmed", at=three_hours_ago)
    paid, paid_chat = whatsapp_customer(app, "221770000003", "Moussa Fall")
    order(app, paid, paid_chat, "paid", at=three_hours_ago)
    recent, recent_chat = whatsapp_customer(app, "221770000004", "Khady Diallo")
    order(app, recent, recent_chat, at=time.time() - 600)  # not yet abandoned
    campaign(app, ABANDONED)

    assert run(app, "relance") == ("done", Counter(sent=2))
    # The console's event log has the batch's outcome (one event a batch, not one a message).
    logged = [e.data for e in events.read(app.store, SHOP, None, time.time() + 60)]
    [batch] = [data for data in logged if "campaign" in data]
    assert (batch["campaign"], batch["statuses"]) == ("relance", {"sent": 2})

    assert sorted(recipients(graph_server)) == ["221770000001", "221770000002"]
    # They wrote within the day: the brief goes as text, personalised (offline: as written),
    # with the shop's opt-out hint.
    first = next(m for m in graph_server.sent if m["to"] == "221770000001")
    assert first["type"] == "text"
    body = first["text"]["body"]
    assert body.startswith(
        "Bonjour Awa, votre commande Boubou brodé (45\u202f000 FCFA) vous attend"
    )
    assert body.endswith("Répondez STOP pour ne plus recevoir nos offres.")
    # A second run: each order was reminded once already.
    assert run(app, "relance") == ("done", Counter())
    assert len(graph_server.sent) == 2


def test_outside_the_window_the_campaigns_template_goes_with_its_variables(
    app: App, graph_server: GraphServer
) -> None:
    customer, chat = whatsapp_customer(
        app, "221770000005", "Awa Ndiaye", wrote_at=time.time() - 3 * 24 * HOURS
    )
    order(app, customer, chat, at=time.time() - 3 * 24 * HOURS)
    campaign(app, ABANDONED)

    assert run(app, "relance")[1] == Counter(sent=1)

    [sent] = graph_server.sent
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "order_reminder",
        "language": {"code": "fr"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Awa"},
                    {"type": "text", "text": "Boubou brodé"},
                ],
            }
        ],
    }


def test_without_a_template_a_customer_outside_the_window_is_left_out(
    app: App, graph_server: GraphServer
) -> None:
    customer, chat = whatsapp_customer(
        app, "221770000006", "Awa", wrote_at=time.time() - 2 * 24 * HOURS
    )
    order(app, customer, chat, at=time.time() - 2 * 24 * HOURS)
    campaign(app, {**ABANDONED, "message": {"brief": "Votre commande vous attend."}})

    assert run(app, "relance")[1] == Counter(skipped=1)
    assert graph_server.sent == []
    [send] = report(app.store, SHOP, "relance").sends
    assert (send.status, send.reason) == ("skipped", "outside_window")


def test_opted_out_customers_and_numbers_are_never_reached(
    app: App, graph_server: GraphServer
) -> None:
    old = time.time() - 3 * HOURS
    stopped, stopped_chat = whatsapp_customer(app, "221770000007", "Awa")
    order(app, stopped, stopped_chat, at=old)
    marketing.set_marketing(app.store, SHOP, stopped.id, True, time.time())
    reached, reached_chat = whatsapp_customer(app, "221770000008", "Fatou")
    order(app, reached, reached_chat, at=old)
    campaign(app, ABANDONED)

    preview = runner.preview(
        app, app.shops.get(SHOP), load_campaign(app.store, SHOP, "relance"), time.time(), 20
    )
    assert (preview.audience, preview.left_out) == (1, {"opted_out": 1})
    assert run(app, "relance")[1] == Counter(sent=1)
    assert recipients(graph_server) == ["221770000008"]


def test_a_stop_between_planning_and_sending_is_honoured(
    app: App, graph_server: GraphServer, queue: RecordingQueue
) -> None:
    old = time.time() - 3 * HOURS
    customer, chat = whatsapp_customer(app, "221770000009", "Awa")
    order(app, customer, chat, at=old)
    created = campaign(app, ABANDONED)
    shop = app.shops.get(SHOP)
    run_ = runner.start(app, shop, created, 1_800_000_000.0, time.time())
    assert run_ is not None and run_.audience == 1
    marketing.set_marketing(app.store, SHOP, customer.id, True, time.time())

    [batch] = runner.open_batches(app, SHOP, run_.id)
    result = runner.send_batch(app, shop, batch.id, time.time())

    assert result.statuses == Counter(skipped=1)
    assert graph_server.sent == []
    [send] = report(app.store, SHOP, "relance").sends
    assert send.reason == "opted_out"


def test_a_duplicate_trigger_starts_one_run(
    app: App, graph_server: GraphServer, queue: RecordingQueue
) -> None:
    customer, chat = whatsapp_customer(app, "221770000010", "Awa")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)

    slot = 1_800_000_000.0
    runner.on_schedule(app, SHOP, "relance", slot)
    runner.on_schedule(app, SHOP, "relance", slot)  # the same fire, delivered twice
    # One run; its batch handed over again (the second call resumes what is unfinished).
    assert len(report(app.store, SHOP, "relance").runs) == 1
    assert queue.kinds() == ["campaign_batch", "campaign_batch"]
    queue.run(app)

    assert queue.failures == []
    assert recipients(graph_server) == ["221770000010"]
    assert [r.status for r in report(app.store, SHOP, "relance").runs] == ["done"]


def test_a_batch_delivered_twice_sends_once(
    app: App, graph_server: GraphServer, queue: RecordingQueue
) -> None:
    for number in range(5):
        customer, chat = whatsapp_customer(app, f"22177000002{number}", f"Client {number}")
        order(app, customer, chat, at=time.time() - 3 * HOURS)
    created = campaign(app, ABANDONED)
    shop = app.shops.get(SHOP)
    run_ = runner.start(app, shop, created, 1_800_000_000.0, time.time())
    assert run_ is not None
    [batch] = runner.open_batches(app, SHOP, run_.id)

    first = runner.send_batch(app, shop, batch.id, time.time(), take_over=True)
    again = runner.send_batch(app, shop, batch.id, time.time(), take_over=True)

    assert first.statuses == Counter(sent=5)
    assert again.skipped_batch  # done: nothing to do
    assert len(graph_server.sent) == 5


def test_a_run_killed_half_way_resumes_and_reaches_everyone_once(
    app: App, graph_server: GraphServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 250  # three batches
    for number in range(total):
        customer, chat = whatsapp_customer(app, f"2217710{number:05d}", f"Client {number}")
        order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)
    real = app.store
    faults = Faults()
    app.__dict__["store"] = FaultyStore(real, faults)
    sent_before_crash: list[int] = []

    def crash_half_way(handled: int, audience: int) -> None:
        if handled == total // 2 and faults.fail_at is None:
            sent_before_crash.append(len(graph_server.sent))
            faults.fail_at, faults.outage = faults.calls, True  # the process dies

    shop = app.shops.get(SHOP)
    with pytest.raises(StoreUnavailableError):
        runner.run_by_hand(
            app, shop, load_campaign(real, SHOP, "relance"), time.time(), progress=crash_half_way
        )
    assert (
        total // 2 - runner.SEND_THREADS <= sent_before_crash[0] <= total // 2 + runner.SEND_THREADS
    )
    app.__dict__["store"] = real

    status, _ = run(app, "relance")

    addresses = Counter(recipients(graph_server))
    assert status == "done"
    assert max(addresses.values()) == 1  # none twice
    found = report(real, SHOP, "relance")
    # Messages the crash caught between the send record and the provider's answer are not
    # sent again (the provider may have them): they read "sending", then "unknown".
    in_doubt = found.statuses["sending"] + found.statuses["unknown"]
    assert found.statuses["sent"] + in_doubt == total
    assert found.statuses["sent"] <= len(addresses) <= total
    assert in_doubt <= runner.SEND_THREADS


def test_invalid_numbers_are_skipped_and_throttling_is_retried(
    app: App, graph_server: GraphServer, sleeps: list[float]
) -> None:
    old = time.time() - 3 * HOURS
    for number in range(3):
        customer, chat = whatsapp_customer(app, f"22177000003{number}", f"Client {number}")
        order(app, customer, chat, at=old)
    campaign(app, ABANDONED)
    runner_threads = runner.SEND_THREADS
    try:
        runner.SEND_THREADS = 1  # the scripted answers go to the customers in order
        graph_server.fail(Fail(400, 131026), Fail(429, 130429), None)
        assert run(app, "relance")[1] == Counter(sent=2, skipped=1)
    finally:
        runner.SEND_THREADS = runner_threads

    assert sleeps  # the throughput error was waited out
    reasons = Counter(s.reason for s in report(app.store, SHOP, "relance").sends)
    assert reasons == Counter({"unreachable": 1, "": 2})


def test_telegram_customers_get_the_text(
    app: App, graph_server: GraphServer, telegram_server: TelegramServer
) -> None:
    customer, chat = telegram_customer(app, "5550001", "Ibrahima")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)

    assert run(app, "relance")[1] == Counter(sent=1)

    [message] = telegram_server.called("sendMessage")
    assert message["chat_id"] == "5550001"
    assert "Boubou brodé" in message["text"] and "STOP" in message["text"]
    assert graph_server.sent == []


def test_a_widget_order_is_reached_on_whatsapp_by_template_at_the_typed_phone(
    app: App, graph_server: GraphServer
) -> None:
    from shared.models import Conversation

    now = time.time()
    web = Conversation(id="w" * 43, channel="web", created_at=now, updated_at=now)
    from shared import conversations, crm

    conversations.create(app.store, SHOP, web)
    customer, web = crm.contact_for_order(app.store, SHOP, web, "+221765554433", "Awa Diop")
    order(app, customer, web, at=now - 3 * HOURS)
    campaign(app, ABANDONED)

    assert run(app, "relance")[1] == Counter(sent=1)
    [sent] = graph_server.sent
    assert (sent["to"], sent["type"]) == ("221765554433", "template")


def test_replies_orders_and_payments_are_credited_to_the_campaign(
    app: App, graph_server: GraphServer
) -> None:
    from shared import conversations, orders
    from shared.catalog.retrieval import build_index
    from shared.tools import TOOLS
    from shared.tools.base import TurnContext

    customer, chat = whatsapp_customer(app, "221770000040", "Awa Ndiaye")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)
    run(app, "relance")
    stored = conversations.get(app.store, SHOP, chat.id)
    assert stored is not None and stored.campaign is not None
    assert stored.campaign.campaign_id == "relance"
    assert stored.recent[-1].campaign_id == "relance"  # the next turn reads what was sent
    assert report(app.store, SHOP, "relance").replies == 0

    # The customer answers and orders something else in the same conversation.
    answered = conversations.update(
        app.store,
        SHOP,
        chat.id,
        lambda c: c.model_copy(update={"last_inbound_at": time.time() + 1}),
    )
    shop = app.shops.get(SHOP)
    context = TurnContext(shop, app.store, build_index(app.store, SHOP), answered, "whatsapp", "fr")
    capture = TOOLS["capture_lead"]
    arguments = {
        "name": "Awa Ndiaye",
        "address": "Mermoz, Dakar",
        "product_id": "sac-raphia",
        "quantity": 1,
        "confirmed": True,
    }
    capture.run(context, capture.Args.model_validate(arguments))
    assert context.lead is not None and context.lead.campaign_id == "relance"
    orders.set_status(
        app.store, SHOP, context.lead.id, "awaiting_payment", "assistant", time.time()
    )
    orders.set_status(app.store, SHOP, context.lead.id, "paid", "payment:test", time.time())

    found = report(app.store, SHOP, "relance")
    assert (found.replies, found.orders, found.payments) == (1, 1, 1)
    assert found.revenue == {"XOF": 22500}
    # A conversation a week after the message answers no campaign any more.
    assert conversations.answering_campaign(answered, time.time() + 8 * 86400) is None


def test_quiet_hours_put_the_batch_back_and_wake_the_campaign_when_they_end(
    app: App, graph_server: GraphServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    morning = time.time() + 5 * HOURS
    monkeypatch.setattr(schedules, "quiet_until", lambda quiet, zone, at: morning)
    customer, chat = whatsapp_customer(app, "221770000050", "Awa")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)

    assert run(app, "relance")[1] == Counter(deferred=1)
    assert graph_server.sent == []
    assert graph_server.sent == []  # run by hand, it waits for its operator

    # A scheduled campaign's batch is put back and the schedule wakes it when they end.
    created = load_campaign(app.store, SHOP, "relance")
    with_cron = created.model_copy(
        update={"schedule": created.schedule.model_copy(update={"cron": "0 10 * * *"})}
    )
    from shared.campaigns import definitions

    definitions.save(app.store, app.shops.get(SHOP), with_cron, time.time(), replace=True)
    runner.on_schedule(app, SHOP, "relance", None)
    [batch] = runner.open_batches(app, SHOP, report(app.store, SHOP, "relance").runs[0].id)
    assert (
        runner.send_batch(app, app.shops.get(SHOP), batch.id, time.time()).deferred_until == morning
    )
    assert [b.status for b in runner.open_batches(app, SHOP, batch.run_id)] == ["pending"]
    doc = app.store.get(
        schedules.PLATFORM, schedules.ENTRIES, schedules.entry_id(SHOP, "campaign", "relance")
    )
    assert doc is not None and doc.data["wake_at"] <= morning  # the earliest wake asked for
    assert graph_server.sent == []

    assert run(app, "relance", ignore_quiet_hours=True)[1] == Counter(sent=1)


def test_back_in_stock_reaches_who_saw_the_product_while_it_was_out(
    app: App, graph_server: GraphServer, tmp_path: object
) -> None:
    from shared.catalog import RESTOCKS

    _, saw_chat = whatsapp_customer(app, "221770000060", "Awa")
    show(app, saw_chat, "sac-raphia", time.time() - 600)
    _, other_chat = whatsapp_customer(app, "221770000061", "Fatou")
    show(app, other_chat, "sandales-cuir", time.time() - 600)
    campaign(app, {"id": "retour", "recipe": "back_in_stock"})
    assert run(app, "retour")[1] == Counter()  # nothing restocked yet

    app.store.put(SHOP, RESTOCKS, "sac-raphia", {"at": time.time()})
    assert run(app, "retour")[1] == Counter(sent=1)
    assert recipients(graph_server) == ["221770000060"]
    assert (
        "Sac en raphia est de nouveau disponible (22\u202f500 FCFA)"
        in graph_server.sent[0]["text"]["body"]
    )
    assert run(app, "retour")[1] == Counter()  # once per restock


def test_win_back_reaches_customers_whose_last_order_is_old(
    app: App, graph_server: GraphServer
) -> None:
    old, old_chat = whatsapp_customer(app, "221770000070", "Awa")
    order(app, old, old_chat, "fulfilled", at=time.time() - 90 * 86400)
    fresh, fresh_chat = whatsapp_customer(app, "221770000071", "Fatou")
    order(app, fresh, fresh_chat, "fulfilled", at=time.time() - 90 * 86400)
    order(app, fresh, fresh_chat, "paid", at=time.time() - 5 * 86400, product="sac-raphia")
    whatsapp_customer(app, "221770000072", "Never ordered")
    campaign(app, {"id": "retrouvailles", "recipe": "win_back", "options": {"days": 60}})

    assert run(app, "retrouvailles")[1] == Counter(sent=1)
    assert recipients(graph_server) == ["221770000070"]


def test_a_run_costs_at_most_four_store_operations_per_message(
    app: App, graph_server: GraphServer
) -> None:
    total = 300
    for number in range(total):
        customer, chat = whatsapp_customer(app, f"2217720{number:05d}", f"Client {number}")
        order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)
    real = app.store
    counted = Faults()  # never fails: counts every store call
    app.__dict__["store"] = FaultyStore(real, counted)
    try:
        status, statuses = run(app, "relance")
    finally:
        app.__dict__["store"] = real

    assert (status, statuses) == ("done", Counter(sent=total))
    per_message = counted.calls / total
    print(f"store operations per message: {per_message:.2f}")
    assert 3 <= per_message <= 4, per_message


def test_a_disabled_campaign_sends_nothing_more_until_enabled(
    app: App, graph_server: GraphServer, queue: RecordingQueue
) -> None:
    from shared.campaigns import definitions

    for number in range(3):
        customer, chat = whatsapp_customer(app, f"22177300000{number}", f"Client {number}")
        order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, {**ABANDONED, "schedule": {"cron": "0 10 * * *"}})
    shop = app.shops.get(SHOP)
    runner.on_schedule(app, SHOP, "relance", 1_800_000_000.0)
    definitions.set_enabled(app.store, shop, "relance", False, time.time())
    queue.run(app)
    assert graph_server.sent == []
    assert app.store.get(
        schedules.PLATFORM, schedules.ENTRIES, schedules.entry_id(SHOP, "campaign", "relance")
    ) is None

    definitions.set_enabled(app.store, shop, "relance", True, time.time())
    runner.on_schedule(app, SHOP, "relance", None)  # the schedule's next wake
    queue.run(app)
    assert len(graph_server.sent) == 3


def test_a_real_model_personalises_from_what_the_shop_remembers(
    app: App, graph_server: GraphServer
) -> None:
    from shared import memory
    from tests.llm.fakes import ScriptedLLM
    from tests.llm.script import Reply, Script

    customer, chat = whatsapp_customer(app, "221770000080", "Awa Ndiaye")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    memory.save(
        app.store,
        SHOP,
        customer,
        [memory.Note("taille M, aime le bleu", "preference", "size")],
        source=chat.id,
        at=time.time(),
    )
    rewrite = "Awa, votre boubou brodé en bleu vous attend : répondez pour finaliser."
    script = Script().then(Reply(rewrite))
    app.llm_override = ScriptedLLM(script)
    campaign(app, ABANDONED)

    assert run(app, "relance")[1] == Counter(sent=1)

    [sent] = graph_server.sent
    assert sent["text"]["body"].startswith(rewrite)
    [request] = script.seen
    system = request.messages[0]["text"]
    assert "taille M, aime le bleu" in system  # the memory, as data
    assert "Boubou brodé" in system and "45" in system  # the order's fields


def test_a_brief_that_fails_for_one_customer_fails_that_message_only(
    app: App, graph_server: GraphServer
) -> None:
    for wa_id, name in (("221770000090", "Awa"), ("221770000091", "Fatou")):
        customer, chat = whatsapp_customer(app, wa_id, name)
        order(app, customer, chat, at=time.time() - 3 * HOURS)
    # Divides by zero for a three-letter first name only (the check at creation passes).
    brief = "Bonjour {{ 10 // (customer.first_name | length - 3) }}"
    campaign(app, {**ABANDONED, "message": {"brief": brief}})

    assert run(app, "relance")[1] == Counter(sent=1, failed=1)
    assert recipients(graph_server) == ["221770000091"]
    reasons = {s.status: s.reason for s in report(app.store, SHOP, "relance").sends}
    assert reasons["failed"] == "InvalidInputError"


def test_an_erased_customers_number_is_never_added_again(
    app: App, graph_server: GraphServer
) -> None:
    # The customer was erased; the same number later writes again and orders.
    marketing.bury(app.store, SHOP, ["whatsapp:+221770000100"], time.time() - 86400)
    customer, chat = whatsapp_customer(app, "221770000100", "Awa")
    order(app, customer, chat, at=time.time() - 3 * HOURS)
    campaign(app, ABANDONED)

    shown = runner.preview(
        app, app.shops.get(SHOP), load_campaign(app.store, SHOP, "relance"), time.time(), 20
    )
    assert (shown.audience, shown.left_out) == (0, {"erased": 1})
    assert run(app, "relance")[1] == Counter()
    assert graph_server.sent == []


def test_an_unconfigured_channel_stops_the_run_without_using_up_anyone(
    make_app: Callable[..., App], graph_server: GraphServer
) -> None:
    from shared.exceptions import ConfigError

    bare = make_app()  # no WhatsApp settings at all
    customer, chat = whatsapp_customer(bare, "221770000110", "Awa")
    order(bare, customer, chat, at=time.time() - 3 * HOURS)
    campaign(bare, ABANDONED)

    with pytest.raises(ConfigError):
        run(bare, "relance")
    assert report(bare.store, SHOP, "relance").sends == []  # nobody marked failed for good
