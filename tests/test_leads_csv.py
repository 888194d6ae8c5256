"""``python -m shared leads --format csv`` opened in a spreadsheet: no cell runs as a formula."""

from __future__ import annotations

import csv
import io

from shared.app import App
from tests.test_crm import SHOP_ID, make_lead, run_cli


def test_no_text_cell_starts_a_formula(app: App) -> None:
    lead = make_lead(
        app,
        '=HYPERLINK("http://x","clic")',
        "sac-raphia",
        address="@SUM(A1:A9)",
        product_title="+cmd|' /C calc'!A0",
        variant_title="-2+3",
        notes="=1+1",  # not exported
    )
    make_lead(app, "\tTab", "boubou-brode", address=" =1+1", variant_title="\rM")
    result = run_cli(app, "leads", "--format", "csv", "--shop", SHOP_ID)
    assert result.returncode == 0, result.stderr
    second, first = csv.DictReader(io.StringIO(result.stdout))  # a CR in a cell ends no row

    assert first["id"] == lead.id  # plain values stay as they are
    assert first["name"] == '\'=HYPERLINK("http://x","clic")'
    assert first["address"] == "'@SUM(A1:A9)"
    assert first["product_title"] == "'+cmd|' /C calc'!A0"
    assert first["variant"] == "'-2+3"
    # An E.164 phone is text too: a spreadsheet keeps its "+" instead of reading a number.
    assert first["phone"] == "'+221771234567"
    assert (first["quantity"], first["total"], first["currency"]) == ("2", "45000", "XOF")

    assert second["name"] == "'\tTab"
    assert second["address"] == "' =1+1"
    assert second["variant"] == "'\nM"  # the CR quoted, then read as a newline by text mode
    assert second["product_title"] == "Boubou Brode"
