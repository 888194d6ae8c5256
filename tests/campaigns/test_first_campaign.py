"""The issue's "done when", as a new user would try it: orders captured in the widget and on
WhatsApp through the real functions, one customer saying STOP, then an abandoned-order campaign
created, previewed, run and reported with the operator CLI; exactly the expected messages reach
the (loopback) Graph API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from shared import schedules
from shared.app import App
from shared.cli import main
from shared.crm import list_leads
from tests.campaigns.conftest import SHOP, TEMPLATE
from tests.channels.conftest import RecordingQueue, arrive, whatsapp_text
from tests.fixtures.app import LambdaClient, post_json
from tests.fixtures.graph_server import GraphServer

AWA, MOUSSA = "221770001111", "221770002222"


def from_number(wa_id: str, text: str, wamid: str, at: int) -> dict[str, Any]:
    event = whatsapp_text(text, wamid, at)
    value = event["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    value["messages"][0]["from"] = wa_id
    return event


def whatsapp_chat(app: App, queue: RecordingQueue, wa_id: str, *texts: str) -> None:
    for text in texts:
        wamid = f"wamid.{wa_id}.{len(queue.items)}.{time.monotonic_ns()}"
        assert arrive(from_number(wa_id, text, wamid, int(time.time()))) == 200
        queue.run(app)
        assert queue.failures == []


def widget_chat(*texts: str) -> None:
    client, session = LambdaClient(), None
    for text in texts:
        result = post_json(client, "/chat", {"message": text, "session_id": session, "shop": SHOP})
        assert result.status == 200, result.body
        session = result.json()["session_id"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main([*argv, "--shop", SHOP])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_three_orders_one_stop_two_reminders(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schedules, "quiet_until", lambda quiet, zone, at: None)  # any hour
    widget_chat(
        "Bonjour, je voudrais commander le boubou brodé",
        "Awa Diop, 76 555 44 33, Sacré-Coeur 3, Dakar",
        "oui",
    )
    wants = "Bonjour, je voudrais commander le boubou brodé"
    whatsapp_chat(app, queue, AWA, wants, "Awa Ndiaye", "Mermoz, rue 10, Dakar", "oui")
    whatsapp_chat(app, queue, MOUSSA, wants, "Moussa Fall", "Plateau, Dakar", "oui")
    whatsapp_chat(app, queue, MOUSSA, "STOP")
    leads = list_leads(app.store, SHOP)
    assert sorted((o.channel, o.status) for o in leads) == [
        ("web", "awaiting_payment"),
        ("whatsapp", "awaiting_payment"),
        ("whatsapp", "awaiting_payment"),
    ]
    before = len(graph_server.sent)

    description = {
        "id": "relance",
        "name": "Commandes non payées",
        "recipe": "abandoned_order",
        "options": {"hours": 0.0003},  # a second: these orders are fresh
        "message": {"template": TEMPLATE},
    }
    campaign_file = tmp_path / "campaign.json"
    campaign_file.write_text(json.dumps(description), encoding="utf-8")
    created = cli(capsys, "campaign", "create", "--file", str(campaign_file))
    assert "campaign relance saved" in created
    time.sleep(1.2)

    preview = cli(capsys, "campaign", "preview", "relance")
    assert "audience: 2 (whatsapp 2)" in preview
    assert "left out: opted_out 1" in preview
    assert len(graph_server.sent) == before  # a preview sends nothing

    ran = cli(capsys, "campaign", "run", "relance")
    assert "audience 2; sent 2" in ran

    sent = graph_server.sent[before:]
    assert sorted(m["to"] for m in sent) == ["221765554433", AWA]
    by_number = {m["to"]: m for m in sent}
    assert by_number[AWA]["type"] == "text"  # Awa wrote a minute ago: free text
    assert "Boubou brodé" in by_number[AWA]["text"]["body"]
    assert by_number["221765554433"]["type"] == "template"  # never wrote on WhatsApp

    report = cli(capsys, "campaign", "report", "relance")
    assert "messages: sent 2" in report
    assert report.count("\tsent\twamid.") == 2
    assert MOUSSA not in json.dumps(sent)
