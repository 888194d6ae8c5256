"""Issue 14's "done when", as a new user would try it, through the real functions and the
operator CLI on the offline assistant: a widget chat (name, size, a product), the widget linked
to the customer's WhatsApp by a code, ``python -m shared consolidate``, the customer welcomed
back on WhatsApp with what was remembered, a reminder asked for in two minutes and received
once, then the customer exported and erased, nothing of them left."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from shared import schedules
from shared.app import App
from shared.cli import main
from shared.customer_data import HOLDINGS
from tests.channels import conftest as channels
from tests.channels.conftest import RecordingQueue, arrive, whatsapp_text
from tests.fixtures.app import LambdaClient, post_json
from tests.fixtures.graph_server import GraphServer

SHOP = "teranga"
# The channels' fixtures: an App on the loopback Graph API, a recording queue.
app, queue, sleeps = channels.app, channels.queue, channels.sleeps
WA_ID = "221771234567"  # the customer of tests/events/whatsapp_text.json


def widget(text: str, session: str | None) -> tuple[str, str]:
    result = post_json(LambdaClient(), "/chat", {"message": text, "session_id": session})
    assert result.status == 200, result.body
    body = result.json()
    return str(body["session_id"]), str(body["reply"])


def on_whatsapp(app: App, queue: RecordingQueue, graph: GraphServer, text: str) -> str:
    before = len(graph.sent)
    wamid = f"wamid.R{time.monotonic_ns()}"
    assert arrive(whatsapp_text(text, wamid, int(time.time()))) == 200
    queue.run(app)
    assert queue.failures == []
    return "\n".join(m["text"]["body"] for m in graph.sent[before:] if m["type"] == "text")


def test_remembered_across_channels_reminded_then_erased(
    app: App,
    queue: RecordingQueue,
    graph_server: GraphServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The widget: who they are, their size, what they look for.
    session, _ = widget("Bonjour, je m'appelle Awa Diop", None)
    widget("Je cherche des Sandales en cuir, taille 40", session)
    widget("Je préfère en noir", session)

    # The same person links the widget to their WhatsApp with the code sent there.
    _, asked = widget("Je veux lier mon compte WhatsApp +221 77 123 45 67", session)
    assert "code à 6 chiffres" in asked
    code = re.search(r"\b\d{6}\b", graph_server.sent[-1]["text"]["body"])
    assert code is not None and graph_server.sent[-1]["to"] == WA_ID
    _, linked = widget(code.group(), session)
    assert "reliée à votre compte WhatsApp" in linked

    assert main(["consolidate", "--shop", SHOP]) == 0
    capsys.readouterr()

    # A new conversation, on WhatsApp: the assistant remembers them.
    welcome = on_whatsapp(app, queue, graph_server, "Bonjour")
    assert welcome.startswith("Re-bonjour Awa")
    assert "taille 40" in welcome and "noir" in welcome

    # A reminder in two minutes, received once.
    set_reply = on_whatsapp(app, queue, graph_server, "Rappelle-moi dans 2 minutes de payer")
    assert "rappellerai" in set_reply
    before = len(graph_server.sent)
    schedules.tick(app, time.time() + 150)
    queue.run(app)
    schedules.tick(app, time.time() + 300)  # a later tick sends nothing more
    queue.run(app)
    reminders = graph_server.sent[before:]
    assert [m["to"] for m in reminders] == [WA_ID]
    assert "payer" in json.dumps(reminders, ensure_ascii=False)

    # Export, then erase: nothing of them is left.
    out = tmp_path / "awa.json"
    assert main(["customer", "export", "--shop", SHOP, "--phone", WA_ID, "--out", str(out)]) == 0
    exported = json.loads(out.read_text(encoding="utf-8"))
    everything = [exported] if isinstance(exported, dict) else exported
    held = {name for one in everything for name, docs in one["holdings"].items() if docs}
    assert {"messages", "conversations", "memory", "reminders", "customer"} <= held
    assert held <= set(HOLDINGS)
    assert main(["customer", "delete", "--shop", SHOP, "--phone", WA_ID, "--yes"]) == 0
    history = LambdaClient().request("GET", "/chat/history", query={"session_id": session})
    assert history.status == 404
    assert main(["customer", "export", "--shop", SHOP, "--phone", WA_ID]) == 2
    for collection in ("customers", "conversations", "memory", "jobs", "leads"):
        left = [json.dumps(d.data, ensure_ascii=False) for d in app.store.scan(SHOP, collection)]
        assert not [doc for doc in left if "Awa" in doc or WA_ID in doc], collection
