"""The test provider's checkout page of ``make dev`` (``/pay/{checkout_id}``): it shows the
amount, and its buttons post a signed event to the IPN function, which settles the order."""

from __future__ import annotations

from shared.app import App
from shared.devpay import respond
from shared.devserver import discover_functions
from shared.http import Request
from shared.orders import get_order
from tests.payments.test_ipn import awaiting
from tests.test_tools import MakeCtx

SHOP_ID = "teranga"


def test_the_page_shows_the_amount_and_pay_settles_the_order(app: App, make_ctx: MakeCtx) -> None:
    order, link = awaiting(app, make_ctx)
    path = "/pay/" + link.url.rsplit("/", 1)[1]
    functions = discover_functions()
    page = respond(Request("GET", path), functions)
    assert page.status == 200
    assert "45\u202f000 FCFA" in page.body_bytes().decode()
    done = respond(Request("POST", path, body=b"outcome=paid"), functions)
    assert (done.status, "Paiement accepté." in done.body_bytes().decode()) == (200, True)
    assert get_order(app.store, SHOP_ID, order.id).status == "paid"


def test_fail_marks_the_payment_failed_and_an_unknown_checkout_is_404(
    app: App, make_ctx: MakeCtx
) -> None:
    order, link = awaiting(app, make_ctx)
    path = "/pay/" + link.url.rsplit("/", 1)[1]
    functions = discover_functions()
    assert respond(Request("POST", path, body=b"outcome=failed"), functions).status == 200
    assert get_order(app.store, SHOP_ID, order.id).status == "payment_failed"
    assert respond(Request("GET", "/pay/chk_unknown"), functions).status == 404
    assert respond(Request("POST", path, body=b"outcome=free"), functions).status == 400
