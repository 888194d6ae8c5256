"""Order statuses: the lifecycle's moves, the history, and the operator commands ``orders`` and
``order set-status`` (run as ``python -m shared`` on the test shop's SQLite file)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from shared import crm
from shared.app import App
from shared.models import Lead
from shared.orders import InvalidTransitionError, get_order, move, set_status
from tests.test_crm import SHOP_ID, make_lead, run_cli


def test_move_appends_to_the_history_and_refuses_illegal_moves(app: App) -> None:
    order = make_lead(app, "Awa", status="confirmed")
    waiting = move(order, "awaiting_payment", "customer", 10.0)
    paid = move(waiting, "paid", "payment:test", 20.0)
    assert [(h.status, h.at, h.actor) for h in paid.history] == [
        ("awaiting_payment", 10.0, "customer"),
        ("paid", 20.0, "payment:test"),
    ]
    with pytest.raises(InvalidTransitionError, match="paid: it cannot become draft"):
        move(paid, "draft", "operator", 30.0)
    cancelled = move(paid, "cancelled", "operator", 30.0)
    with pytest.raises(InvalidTransitionError, match="nothing: it is final"):
        move(cancelled, "paid", "payment:test", 40.0)


def test_a_mismatched_payment_is_never_paid_by_a_move_from_draft(app: App) -> None:
    draft = make_lead(app, "Awa", status="draft")
    for status in ("paid", "awaiting_payment", "payment_mismatch", "fulfilled"):
        with pytest.raises(InvalidTransitionError):
            move(draft, status, "operator", 1.0)  # type: ignore[arg-type]


def test_a_lead_stored_with_an_old_status_reads_as_today_s(app: App) -> None:
    lead = make_lead(app, "Awa")
    app.store.put(SHOP_ID, "leads", lead.id, {**lead.to_doc(), "status": "new"})
    assert get_order(app.store, SHOP_ID, lead.id).status == "confirmed"


def test_capture_then_confirm_records_both_steps(app: App) -> None:
    step = {"status": "draft", "at": 1.0, "actor": "customer"}
    draft = make_lead(app, "Awa", status="draft", history=[step])
    confirmed = Lead.model_validate(
        {
            **draft.to_doc(),
            "id": "other",
            "status": "confirmed",
            "history": [{**step, "status": "confirmed", "at": 2.0}],
        }
    )
    saved = crm.save_lead(app.store, SHOP_ID, confirmed)
    assert saved.id == draft.id  # the draft became the order in place
    history = get_order(app.store, SHOP_ID, draft.id).history
    assert [(h.status, h.at) for h in history] == [("draft", 1.0), ("confirmed", 2.0)]


def test_set_status_is_a_conditional_write(app: App) -> None:
    order = make_lead(app, "Awa", status="confirmed")
    moved = set_status(app.store, SHOP_ID, order.id, "fulfilled", "operator", 5.0)
    assert get_order(app.store, SHOP_ID, order.id) == moved
    assert moved.history[-1].actor == "operator"


def test_orders_lists_with_history_and_filters_by_status(app: App) -> None:
    first = make_lead(app, "Awa", "sandales-cuir", status="confirmed")
    make_lead(app, "Bintou", "sac-raphia", status="draft")
    set_status(app.store, SHOP_ID, first.id, "awaiting_payment", "customer", 1_700_000_000.0)
    result = run_cli(app, "orders", "--status", "awaiting_payment")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["id"], row["status"]) == (first.id, "awaiting_payment")
    assert row["history"] == [
        {"status": "awaiting_payment", "at": "2023-11-14T22:13:20+00:00", "actor": "customer"}
    ]
    assert len(json.loads(run_cli(app, "orders").stdout)) == 2
    assert run_cli(app, "leads").returncode == 0  # leads stay listable as they were


def test_orders_as_csv_never_holds_a_formula(app: App) -> None:
    order = make_lead(app, '=HYPERLINK("http://x")', status="confirmed")
    result = run_cli(app, "orders", "--format", "csv")
    assert result.returncode == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["id"], row["status"]) == (order.id, "confirmed")
    assert row["name"] == '\'=HYPERLINK("http://x")'
    assert row["phone"] == "'+221771234567"


def test_order_set_status_moves_it_as_the_operator(app: App) -> None:
    order = make_lead(app, "Awa", status="confirmed")
    result = run_cli(app, "order", "set-status", order.id, "fulfilled")
    assert result.returncode == 0, result.stderr
    stored = get_order(app.store, SHOP_ID, order.id)
    assert (stored.status, stored.history[-1].actor) == ("fulfilled", "operator")
    refused = run_cli(app, "order", "set-status", order.id, "draft")
    assert refused.returncode == 2
    assert "fulfilled: it cannot become draft" in refused.stderr
    unknown = run_cli(app, "order", "set-status", order.id, "shipped")
    assert (unknown.returncode, "is not an order status" in unknown.stderr) == (2, True)
