"""Prices as customers read them."""

from __future__ import annotations

from decimal import Decimal

_SYMBOLS = {"XOF": "FCFA", "XAF": "FCFA", "EUR": "€", "USD": "$", "GBP": "£"}


def format_price(amount: Decimal, currency: str, lang: str = "fr") -> str:
    """'12 500 FCFA', '19,99 €' in French; '12,500 FCFA', '19.99 €' in English."""
    decimals = 0 if amount == amount.to_integral_value() else 2
    text = f"{amount:,.{decimals}f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text} {_SYMBOLS.get(currency, currency)}"


def price_number(amount: Decimal) -> int | float:
    """A JSON number for an API: an integer when the amount has no cents."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)
