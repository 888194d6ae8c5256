"""The price guard's reading of amounts and what it allows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.models import FaqEntry, Product
from shared.price_guard import allowed_amounts, amounts_in, invented_amounts, safe_answer

SANDALES = Product.model_validate(
    {
        "id": "sandales",
        "title": "Sandales en cuir",
        "currency": "XOF",
        "variants": [
            {"id": "s40", "price": "15000", "compare_at_price": "18000"},
            {"id": "s44", "price": "17000"},
        ],
    }
)
BOUGIE = Product.model_validate(
    {
        "id": "bougie",
        "title": "Bougie",
        "currency": "EUR",
        "variants": [{"id": "b", "price": "19.99"}],
    }
)


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        ("Les sandales sont à 15 000 FCFA.", ["15000"]),
        ("Prix : 15\u202f000 FCFA, ou 17.000 F CFA", ["15000", "17000"]),
        ("only 45000F today", ["45000"]),
        ("It costs 19,99 € or €19.99 or $5", ["19.99", "19.99", "5"]),
        ("12,500 XOF", ["12500"]),
        ("Livraison en 24 h, taille 40, appelez le +221 77 000 00 00", []),
        ("1 234,50 €", ["1234.50"]),
        ("Livraison à Sacré-Coeur 3, villa 12 ; Fatou 2 Francs", ["2"]),
        ("FCFA 9 000, CFA 9000, 9 000 Frs, 9000 fr. et 9 000 (FCFA)", ["9000"] * 5),
    ],
)
def test_amounts_are_read_next_to_a_currency(text: str, amounts: list[str]) -> None:
    assert amounts_in(text) == [Decimal(a) for a in amounts]


def test_catalogue_prices_quantities_sums_and_faq_amounts_are_allowed() -> None:
    faq = [FaqEntry(id="f", question="Livraison ?", answer="Livraison à Dakar : 2 000 FCFA.")]
    allowed = allowed_amounts([SANDALES, BOUGIE], faq, ["Livraison offerte dès 50 000 FCFA"])
    text = (
        "Sandales à 15 000 FCFA (au lieu de 18 000 FCFA), 2 paires : 30 000 FCFA, "
        "une de chaque : 32 000 FCFA, livraison 2 000 FCFA, offerte dès 50 000 FCFA, bougie 19,99 €"
    )
    assert invented_amounts(text, allowed) == []


def test_invented_amounts_are_caught() -> None:
    allowed = allowed_amounts([SANDALES])
    assert invented_amounts("Les sandales sont à 9 900 FCFA, promo !", allowed) == [Decimal("9900")]
    assert invented_amounts("15 000 FCFA", allowed) == []


def test_safe_answer_uses_catalogue_data_only() -> None:
    text = safe_answer([SANDALES], "fr", "+221 77 000 00 00")
    assert "Sandales en cuir" in text
    assert "15\u202f000 FCFA" in text
    assert invented_amounts(text, allowed_amounts([SANDALES])) == []
    assert "+221 77 000 00 00" in safe_answer([], "fr", "+221 77 000 00 00")
