"""``python -m shared customer export|delete`` as an operator runs them, on a widget customer who
ordered: the export holds their conversation and order; after the erasure their chat history
answers 404 and nothing of them is found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.app import App
from shared.cli import main
from shared.crm import list_leads
from tests.fixtures.app import LambdaClient, post_json

SHOP = "teranga"
TYPED = "76 555 44 33"


def order_in_the_widget() -> str:
    client, session = LambdaClient(), None
    for text in (
        "Bonjour, je voudrais commander le boubou brodé",
        f"Awa Diop, {TYPED}, Sacré-Coeur 3, Dakar",
        "oui",
    ):
        result = post_json(client, "/chat", {"message": text, "session_id": session})
        assert result.status == 200, result.body
        session = result.json()["session_id"]
    assert session is not None
    return str(session)


def test_export_then_erase_a_widget_customer(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = order_in_the_widget()
    history = LambdaClient().request("GET", "/chat/history", query={"session_id": session})
    assert history.status == 200
    [order] = list_leads(app.store, SHOP)

    out = tmp_path / "awa.json"
    assert main(["customer", "export", "--shop", SHOP, "--phone", TYPED, "--out", str(out)]) == 0
    exported = json.loads(out.read_text(encoding="utf-8"))
    holdings = exported["holdings"]
    assert [d["id"] for d in holdings["conversations"]] == [session]
    assert [d["id"] for d in holdings["orders"]] == [order.id]
    assert any("boubou" in d["data"]["text"].lower() for d in holdings["messages"])

    assert main(["customer", "delete", "--shop", SHOP, "--phone", TYPED, "--yes"]) == 0
    assert "erased" in capsys.readouterr().out

    history = LambdaClient().request("GET", "/chat/history", query={"session_id": session})
    assert history.status == 404
    assert list_leads(app.store, SHOP) == []
    assert main(["customer", "export", "--shop", SHOP, "--phone", TYPED]) == 2
    assert "no customer" in capsys.readouterr().err


def test_delete_asks_first_and_a_no_keeps_everything(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    order_in_the_widget()
    monkeypatch.setattr("builtins.input", lambda prompt: "n")

    assert main(["customer", "delete", "--shop", SHOP, "--phone", TYPED]) == 1
    assert "nothing erased" in capsys.readouterr().err
    assert len(list_leads(app.store, SHOP)) == 1
