"""Scheduled jobs and reminders on the channels' test app (loopback Graph API and Telegram, a
recording queue): a reminder asked in chat, fired by the schedule's tick, sent once; the 24-hour
window; opt-outs; the reminder tools; run-now and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from shared import conversations, jobs, marketing, schedules
from shared.app import App
from shared.catalog.retrieval import build_index
from shared.cli import main
from shared.exceptions import ToolError
from shared.models import Conversation
from shared.schedules import ScheduleSpec
from shared.shops import update_shop
from shared.tools import TOOLS
from shared.tools.base import TurnContext
from tests.campaigns.conftest import SHOP, telegram_customer, whatsapp_customer
from tests.channels import conftest as channels
from tests.channels.conftest import WA_ID, RecordingQueue, arrive, whatsapp_text
from tests.eventlib import delivered_at
from tests.fixtures.graph_server import GraphServer
from tests.fixtures.telegram_server import TelegramServer

DAY = 86400.0
# The channels' fixtures: an App on the loopback Graph API and Telegram, a recording queue.
app, queue, sleeps = channels.app, channels.queue, channels.sleeps


def ask(app: App, queue: RecordingQueue, graph_server: GraphServer, text: str, n: int) -> str:
    """The customer of the recorded events writes ``text`` on WhatsApp; the reply."""
    before = len(graph_server.sent)
    assert arrive(whatsapp_text(text, f"wamid.R{n}", delivered_at(1760000000 + n))) == 200
    queue.run(app)
    assert queue.failures == []
    return "\n".join(m["text"]["body"] for m in graph_server.sent[before:])


def job(customer_id: str | None = None, **fields: Any) -> jobs.Job:
    now = time.time()
    values: dict[str, Any] = {
        "shop": SHOP,
        "schedule": ScheduleSpec(at=now + 60, timezone="Africa/Dakar"),
        "customer_id": customer_id,
        "text": "Votre rendez-vous est demain.",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    return jobs.Job(**values)


def fire(app: App, queue: RecordingQueue, at: float) -> schedules.TickReport:
    report = schedules.tick(app, at)
    queue.run(app)
    assert queue.failures == []
    return report


def test_a_reminder_asked_on_whatsapp_is_sent_once_when_due(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    asked_at = time.time()
    reply = ask(app, queue, graph_server, "rappelle-moi dans 2 minutes de payer", 1)

    assert reply.startswith("C'est noté : je vous le rappellerai ici aujourd'hui à")
    [reminder] = jobs.list_jobs(app.store, SHOP)
    assert (reminder.created_by, reminder.channel, reminder.text) == (
        "customer",
        "whatsapp",
        "Rappel : payer",
    )
    assert reminder.schedule.at == pytest.approx(asked_at + 120, abs=5)
    sent_before = len(graph_server.sent)

    assert fire(app, queue, asked_at + 60).queued == 0  # not yet
    assert fire(app, queue, asked_at + 130).queued == 1

    [message] = graph_server.sent[sent_before:]
    assert (message["to"], message["type"], message["text"]["body"]) == (
        WA_ID,
        "text",
        "Rappel : payer",
    )
    assert fire(app, queue, asked_at + 200).queued == 0  # a second tick: nothing
    assert len(graph_server.sent) == sent_before + 1
    conversation = conversations.get(app.store, SHOP, reminder.conversation_id or "")
    assert conversation is not None and conversation.recent[-1].text == "Rappel : payer"
    assert jobs.load_job(app.store, SHOP, reminder.id).last_run_at is not None


def test_the_same_fire_delivered_twice_sends_once(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    customer, _ = whatsapp_customer(app, "221770000031", "Awa")
    saved = jobs.save_job(app.store, job(customer.id, created_by="customer"), time.time())
    slot = saved.schedule.at or 0.0
    jobs.on_schedule(app, SHOP, saved.id, slot)
    jobs.on_schedule(app, SHOP, saved.id, slot)  # a redelivered work item

    assert [m["to"] for m in graph_server.sent] == ["221770000031"]


def test_outside_the_24_hour_window_the_shops_template_goes(
    app: App, queue: RecordingQueue, graph_server: GraphServer
) -> None:
    update_shop(
        app.store, SHOP, {"whatsapp_template": {"name": "rappel_client", "language": "fr"}}
    )
    customer, _ = whatsapp_customer(
        app, "221770000032", "Awa", wrote_at=time.time() - 2 * DAY
    )
    saved = jobs.save_job(app.store, job(customer.id, created_by="customer"), time.time())

    fire(app, queue, (saved.schedule.at or 0.0) + 1)

    [message] = graph_server.sent
    assert message["type"] == "template"
    assert message["template"]["name"] == "rappel_client"


def test_an_operator_job_to_a_segment_skips_the_opted_out_a_reminder_does_not(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    telegram_server: TelegramServer,
) -> None:
    whatsapp_customer(app, "221770000033", "Awa")
    stopped, _ = whatsapp_customer(app, "221770000034", "Moussa")
    telegram_customer(app, "500600700", "Fatou")
    marketing.set_marketing(app.store, SHOP, stopped.id, True, time.time())
    news = jobs.save_job(
        app.store,
        job(None, segment={}, text="La nouvelle collection est arrivée."),
        time.time(),
    )

    run = jobs.run(app, app.shops.get(SHOP), news, 1_800_000_000.0, time.time())

    assert run.statuses == {"sent": 2}
    assert [m["to"] for m in graph_server.sent] == ["221770000033"]
    body = graph_server.sent[0]["text"]["body"]
    assert body.endswith("Répondez STOP pour ne plus recevoir nos offres.")
    assert [str(m["chat_id"]) for m in telegram_server.called("sendMessage")] == ["500600700"]

    # The opted-out customer's own reminder is not marketing: it goes, without the hint.
    reminder = jobs.save_job(app.store, job(stopped.id, created_by="customer"), time.time())
    jobs.run(app, app.shops.get(SHOP), reminder, None, time.time())
    assert graph_server.sent[-1]["to"] == "221770000034"
    assert graph_server.sent[-1]["text"]["body"] == "Votre rendez-vous est demain."


def test_reminder_tools_list_and_cancel(app: App, queue: RecordingQueue) -> None:
    _, talk = whatsapp_customer(app, "221770000035", "Awa")
    shop = app.shops.get(SHOP)
    ctx = TurnContext(shop, app.store, build_index(app.store, SHOP), talk, "whatsapp", "fr")

    def call(name: str, **arguments: Any) -> dict[str, Any]:
        tool = TOOLS[name]
        return tool.run(ctx, tool.Args(**arguments))

    first = call("schedule_reminder", when="demain à 9h", text="payer")
    call("schedule_reminder", when="vendredi", text="passer en boutique")
    with pytest.raises(ToolError, match="when not understood"):
        call("schedule_reminder", when="un de ces jours", text="payer")

    listed = call("list_reminders")["reminders"]
    assert [r["text"] for r in listed] == ["Rappel : payer", "Rappel : passer en boutique"]
    assert listed[0]["when"] == "demain à 9 h"
    assert call("cancel_reminder", id=first["id"]) == {"cancelled": True, "id": first["id"]}
    assert [r["text"] for r in call("list_reminders")["reminders"]] == [
        "Rappel : passer en boutique"
    ]
    with pytest.raises(ToolError):
        call("cancel_reminder", id=first["id"])  # already cancelled
    # Its schedule is gone: nothing fires for it.
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, f"{SHOP}~job~{first['id']}") is None

    web = Conversation(id="w" * 32, channel="web", created_at=ctx.now, updated_at=ctx.now)
    ctx.conversation = web
    with pytest.raises(ToolError, match="WhatsApp or Telegram"):
        call("schedule_reminder", when="demain à 9h", text="payer")


def test_the_cli_adds_lists_runs_now_and_disables_a_job(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    customer, _ = whatsapp_customer(app, "221770000036", "Awa")
    description = {
        "schedule": {"cron": "0 9 * * mon"},
        "customer_id": customer.id,
        "text": "Bonne semaine de la part de la boutique !",
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(description), encoding="utf-8")

    def cli(*argv: str) -> str:
        code = main([*argv, "--shop", SHOP])
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    added = cli("jobs", "add", "--file", str(path))
    job_id = added.split()[1]
    listed = cli("jobs", "list")
    assert job_id in listed and "cron 0 9 * * mon" in listed and "next " in listed

    assert "sent 1" in cli("jobs", "run-now", job_id)
    [message] = graph_server.sent
    assert message["text"]["body"].startswith("Bonne semaine de la part de la boutique !")

    assert "disabled" in cli("jobs", "disable", job_id)
    assert "disabled" in cli("jobs", "list")
    assert app.store.get(schedules.PLATFORM, schedules.ENTRIES, f"{SHOP}~job~{job_id}") is None
