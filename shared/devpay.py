"""The test provider's checkout page, served by ``make dev`` at ``/pay/{checkout_id}``.

``GET`` shows what the checkout collects with "Payer" and "Échec" buttons; ``POST`` (the
buttons' form) builds the event the test provider would send, signs it with
``PAYMENT_TEST_SECRET`` (``TestProvider.sign``) and posts it to the IPN function, exactly as a
real provider posts to ``/webhooks/payments/{provider}``; the page then says what the IPN
answered and leads back to the shop. A development tool: deployed stages have no such page.
"""

from __future__ import annotations

import html
import time
from decimal import Decimal
from urllib.parse import parse_qsl

from shared.app import get_app
from shared.checkout import checkout_route, reference
from shared.http import HTTPFunction, Request, Response
from shared.money import format_price
from shared.payments.test import TestProvider

PREFIX = "/pay/"
_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Paiement test</title>
<style>body{{font:16px system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}}
button{{font:inherit;padding:.6rem 1.4rem;margin-right:.5rem;border-radius:.4rem;border:0}}
.pay{{background:#1a7f37;color:#fff}}.fail{{background:#ddd}}</style></head>
<body><h1>Paiement test</h1>{content}</body></html>"""


def serves(path: str) -> bool:
    return path.startswith(PREFIX)


def respond(request: Request, functions: list[HTTPFunction]) -> Response:
    checkout_id = request.path[len(PREFIX) :].strip("/")
    app = get_app()
    route = checkout_route(app.store, app.settings.default_shop, "test", checkout_id)
    if not checkout_id or "/" in checkout_id or route is None:
        return _page(404, "<p>Ce paiement n'existe pas.</p>")
    amount, currency = Decimal(str(route["amount"])), str(route["currency"])
    if request.method != "POST":
        price = html.escape(format_price(amount, currency, "fr"))
        form = (
            f'<p>Montant : <strong id="amount">{price}</strong></p>'
            '<form method="post"><button class="pay" name="outcome" value="paid">Payer</button>'
            '<button class="fail" name="outcome" value="failed">Échec</button></form>'
        )
        return _page(200, form)
    outcome = dict(parse_qsl(request.body.decode(errors="replace"))).get("outcome")
    if outcome not in ("paid", "failed"):
        return _page(400, "<p>Choisissez Payer ou Échec.</p>")
    provider = app.payments.provider("test")
    assert isinstance(provider, TestProvider)
    now = time.time()
    body = provider.event_body(
        checkout_id,
        reference(str(route["shop"]), str(route["order"])),
        amount,
        currency,
        "paid" if outcome == "paid" else "failed",
        now,
    )
    ipn = next(f for f in functions if f.mount == "/webhooks/payments")
    headers = {k.lower(): v for k, v in provider.sign(body, now).items()}
    answer = ipn(
        Request(
            method="POST",
            path="/webhooks/payments/test",
            headers={"content-type": "application/json", **headers},
            body=body,
        )
    )
    said = "Paiement accepté." if outcome == "paid" else "Paiement refusé."
    if answer.status != 200:
        said = f"Le serveur a refusé l'événement ({answer.status})."
    return _page(200, f'<p id="result">{said}</p><p><a href="/">Retour à la boutique</a></p>')


def _page(status: int, content: str) -> Response:
    return Response(
        status,
        _PAGE.format(content=content).encode(),
        {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
    )
