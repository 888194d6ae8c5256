"""``python -m shared campaign preview|run|report`` against the loopback Graph API."""

from __future__ import annotations

import time

import pytest

from shared import marketing, schedules
from shared.app import App
from shared.cli import main
from tests.campaigns.conftest import SHOP, TEMPLATE, campaign, order, whatsapp_customer
from tests.fixtures.graph_server import GraphServer
from tests.terminal import on_a_terminal

HOURS = 3600.0


@pytest.fixture(autouse=True)
def daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours are tested on their own: elsewhere the shop is never in them."""
    monkeypatch.setattr(schedules, "quiet_until", lambda quiet, zone, at: None)


@pytest.fixture
def relance(app: App) -> None:
    """Three abandoned orders on WhatsApp, one customer opted out, and the campaign."""
    for number, name in enumerate(("Awa Ndiaye", "Fatou Sow", "Moussa Fall", "Khady Diallo")):
        customer, chat = whatsapp_customer(app, f"22177000040{number}", name)
        order(app, customer, chat, at=time.time() - 3 * HOURS)
        if name == "Khady Diallo":
            marketing.set_marketing(app.store, SHOP, customer.id, True, time.time())
    campaign(
        app,
        {
            "id": "relance",
            "recipe": "abandoned_order",
            "message": {"template": TEMPLATE},
            "schedule": {"quiet_hours": None},
        },
    )


def campaign_cli(*args: str) -> int:
    return main(["campaign", *args, "--shop", SHOP])


@pytest.mark.usefixtures("relance")
def test_preview_prints_the_audience_and_the_first_messages(
    graph_server: GraphServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert campaign_cli("preview", "relance", "--limit", "2") == 0

    out = capsys.readouterr().out
    assert out.startswith("audience: 3 (whatsapp 3)\nleft out: opted_out 1\n")
    assert out.count("--- whatsapp · customer ") == 2  # the limit
    assert out.count("Bonjour Awa, votre commande Boubou brodé") == 1
    assert out.count("Bonjour Fatou, votre commande Boubou brodé") == 1
    assert "Moussa" not in out
    assert out.count("Répondez STOP pour ne plus recevoir nos offres.") == 2
    assert graph_server.sent == []


@pytest.mark.usefixtures("relance")
def test_a_dry_run_sends_nothing_and_prints_the_counts(
    app: App, graph_server: GraphServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.campaigns.report import report

    assert campaign_cli("run", "relance", "--dry-run") == 0

    out = capsys.readouterr().out
    assert "audience: 3 (whatsapp 3)\nleft out: opted_out 1\n" in out
    assert "dry run: 3 messages rendered in " in out and "none sent" in out
    assert graph_server.sent == []
    assert report(app.store, SHOP, "relance").runs == []  # nothing written either


@pytest.mark.usefixtures("relance")
def test_a_run_sends_and_prints_the_summary_then_the_report_lists_each_message(
    graph_server: GraphServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with on_a_terminal() as terminal:
        assert campaign_cli("run", "relance") == 0

    captured = capsys.readouterr()
    assert "audience 3; sent 3" in captured.out and ": done;" in captured.out
    assert terminal.getvalue().endswith("\r3/3 messages (100%)\n")  # the progress
    assert sorted(m["to"] for m in graph_server.sent) == [
        "221770000400",
        "221770000401",
        "221770000402",
    ]

    assert campaign_cli("report", "relance") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run relance~m") and "done, audience 3" in lines[0]
    assert "{'opted_out': 1}" in lines[0]
    assert lines[1] == "messages: sent 3"
    assert lines[2] == "replies 0, orders 0, paid 0 (0)"  # the attribution line
    sends = [line.split("\t") for line in lines[3:]]
    assert len(sends) == 3
    assert all(s[0].strip() == "whatsapp" and s[2] == "sent" for s in sends)
    assert all(s[3].startswith("wamid.OUT") for s in sends)  # the provider's message ids
    assert len({s[1] for s in sends}) == 3  # one per customer


@pytest.mark.parametrize("action", ["preview", "run", "report"])
def test_an_unknown_campaign_exits_2_with_a_clear_message(
    app: App, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert campaign_cli(action, "nope") == 2

    assert capsys.readouterr().err == "error: no campaign 'nope' in shop 'teranga'\n"
