"""The CRM module and the operator commands over it (``leads``, ``release``), the latter run as
``python -m shared`` in a subprocess on the test shop's SQLite file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared import conversations, crm
from shared.app import App
from shared.exceptions import InvalidPhoneError, UnknownSessionError
from shared.ids import new_session_id, new_sortable_id
from shared.models import Conversation, Lead
from tests.fixtures.app import ROOT, SHOP

SHOP_ID = str(SHOP["id"])


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("77 123 45 67", "SN", "+221771234567"),
        ("+221 77 123 45 67", "SN", "+221771234567"),
        ("00221771234567", "SN", "+221771234567"),
        ("00221 77 123 45 67", "FR", "+221771234567"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "SN", "+33612345678"),
        ("07 07 12 34 56", "CI", "+2250707123456"),
    ],
)
def test_normalise_phone(raw: str, region: str, expected: str) -> None:
    assert crm.normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12345", "bonjour", "", "77 123", "+221 12 345 67 89"])
def test_normalise_phone_rejects(raw: str) -> None:
    with pytest.raises(InvalidPhoneError):
        crm.normalise_phone(raw, "SN")


def make_lead(app: App, name: str, product_id: str = "boubou-brode", **changes: object) -> Lead:
    now = time.time()
    customer = crm.find_or_create_customer_by_phone(
        app.store, SHOP_ID, "+221771234567", name, "whatsapp:test"
    )
    lead = Lead.model_validate(
        {
            "id": new_sortable_id(),
            "customer_id": customer.id,
            "conversation_id": "conversation",
            "channel": "web",
            "name": name,
            "phone": "+221771234567",
            "address": "Plateau, Dakar",
            "product_id": product_id,
            "product_title": product_id.replace("-", " ").title(),
            "quantity": 2,
            "unit_price": Decimal("22500"),
            "currency": "XOF",
            "total": Decimal("45000"),
            "created_at": now,
            "updated_at": now,
            **changes,
        }
    )
    return crm.save_lead(app.store, SHOP_ID, lead)


def test_list_leads_newest_first(app: App) -> None:
    made = [make_lead(app, "Awa", f"product-{i}") for i in range(5)]
    made[1] = crm.save_lead(app.store, SHOP_ID, made[1].model_copy(update={"status": "fulfilled"}))
    assert [lead.id for lead in crm.list_leads(app.store, SHOP_ID)] == [
        lead.id for lead in reversed(made)
    ]
    assert [lead.id for lead in crm.list_leads(app.store, SHOP_ID, "fulfilled")] == [made[1].id]


def test_an_order_from_another_conversation_is_a_new_lead(app: App) -> None:
    first = make_lead(app, "Aminata", "sandales-cuir", conversation_id="c1", variant_title="40")
    second = make_lead(app, "Moussa", "sandales-cuir", conversation_id="c2", variant_title="44")
    assert second.id != first.id
    # The same conversation correcting its order updates its lead.
    corrected = make_lead(app, "Aminata", "sandales-cuir", conversation_id="c1", variant_title="44")
    assert corrected.id == first.id
    stored = {lead.id: lead for lead in crm.list_leads(app.store, SHOP_ID)}
    assert len(stored) == 2
    assert (stored[first.id].name, stored[first.id].variant_title) == ("Aminata", "44")
    assert (stored[second.id].name, stored[second.id].variant_title) == ("Moussa", "44")


def test_set_state_on_an_unknown_session(app: App) -> None:
    with pytest.raises(UnknownSessionError):
        conversations.set_state(app.store, SHOP_ID, new_session_id(), "bot")


# --- operator CLI ----------------------------------------------------------------------------


def run_cli(app: App, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STORE_URL": app.settings.store_url,
        "DEFAULT_SHOP": SHOP_ID,
        "PYTHONPATH": str(ROOT),
    }
    # cwd: a directory without a .env file, so only this environment counts.
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(app.settings.store_url.removeprefix("sqlite:///")).parent,
        timeout=60,
        check=False,
    )


def test_leads_as_json(app: App) -> None:
    first = make_lead(app, "Awa Ndiaye", "sandales-cuir", variant_title="44")
    second = make_lead(app, "Awa Ndiaye", "sac-raphia")
    result = run_cli(app, "leads")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["id"] for row in rows] == [second.id, first.id]
    assert rows[1] == {
        "id": first.id,
        "created_at": rows[1]["created_at"],
        "status": "confirmed",
        "name": "Awa Ndiaye",
        "phone": "+221771234567",
        "address": "Plateau, Dakar",
        "product_id": "sandales-cuir",
        "product_title": "Sandales Cuir",
        "variant": "44",
        "quantity": 2,
        "unit_price": 22500,
        "total": 45000,
        "currency": "XOF",
    }
    assert abs(datetime.fromisoformat(rows[1]["created_at"]).timestamp() - first.created_at) < 1


def test_leads_as_csv_filtered_by_status(app: App) -> None:
    make_lead(app, "Fatou", "sandales-cuir")
    won = make_lead(app, '=HYPERLINK("http://x")', "sac-raphia", status="fulfilled")
    result = run_cli(app, "leads", "--status", "fulfilled", "--format", "csv", "--shop", SHOP_ID)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "id,created_at,status,name,phone,address,product_id,product_title,variant,quantity,"
        "unit_price,total,currency"
    )
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["id"], row["status"], row["variant"], row["total"]) == (
        won.id,
        "fulfilled",
        "",
        "45000",
    )
    assert row["name"] == '\'=HYPERLINK("http://x")'  # never a formula in a spreadsheet
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


def test_leads_rejects_an_unknown_status(app: App) -> None:
    result = run_cli(app, "leads", "--status", "lost-ish")
    assert result.returncode == 2
    assert "is not an order status (draft, confirmed" in result.stderr


def test_release_gives_the_conversation_back_to_the_bot(app: App) -> None:
    now = time.time()
    conversation = Conversation(id=new_session_id(), created_at=now, updated_at=now)
    app.store.create(SHOP_ID, "conversations", conversation.id, conversation.to_doc())
    conversations.set_state(app.store, SHOP_ID, conversation.id, "human", "wants a discount")

    result = run_cli(app, "release", conversation.id)
    assert result.returncode == 0, result.stderr
    assert conversation.id in result.stdout
    doc = app.store.get(SHOP_ID, "conversations", conversation.id)
    assert doc is not None
    assert (doc.data["state"], doc.data["handoff_reason"]) == ("bot", "")

    unknown = run_cli(app, "release", new_session_id())
    assert unknown.returncode == 2
    assert "unknown session" in unknown.stderr
