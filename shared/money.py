"""Prices as customers read them, and how each currency is written (data the price guard reads)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache


@dataclass(frozen=True)
class Currency:
    """How people write a currency next to an amount.

    ``marks`` are unmistakable next to a number ("FCFA", "€", "KSh") and are read in every shop;
    ``loose`` marks are ordinary letters or words too ("F", "R", "Br") and are read only in a shop
    that uses the currency. Names are written in full, singular and plural.
    """

    code: str
    display: str  # what format_price writes after the amount
    marks: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    loose: tuple[str, ...] = ()


_FRANC_CFA = (
    ("FCFA", "F CFA", "F.CFA", "CFA"),
    ("franc CFA", "francs CFA", "franc", "francs"),
    ("F", "fr", "frs", "fr.", "frs."),
)
_DOLLAR = ("dollar", "dollars")
_POUND = ("pound", "pounds")  # loose: a weight too
_FRANC = ("franc", "francs")
_SHILLING = ("shilling", "shillings")
_RUPEE = ("roupie", "roupies", "rupee", "rupees")
CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in [
        Currency("XOF", "FCFA", ("XOF", *_FRANC_CFA[0]), _FRANC_CFA[1], _FRANC_CFA[2]),
        Currency("XAF", "FCFA", ("XAF", *_FRANC_CFA[0]), _FRANC_CFA[1], _FRANC_CFA[2]),
        Currency("EUR", "€", ("€", "EUR"), ("euro", "euros")),
        Currency("USD", "$", ("$", "US$", "USD"), _DOLLAR),
        Currency("GBP", "£", ("£", "GBP"), ("livre sterling", "livres sterling"), _POUND),
        Currency("NGN", "NGN", ("₦", "NGN"), ("naira", "nairas"), ("N",)),
        Currency("GHS", "GHS", ("GH₵", "GH¢", "₵", "GHS", "GHC"), ("cedi", "cedis")),
        Currency("MAD", "MAD", ("MAD", "DH", "DHS", "DHs"), ("dirham", "dirhams")),
        Currency("AED", "AED", ("AED", "د.إ"), ("dirham", "dirhams")),
        Currency("TND", "TND", ("TND", "DT"), ("dinar", "dinars")),
        Currency("DZD", "DZD", ("DZD",), ("dinar", "dinars"), ("DA",)),
        Currency("EGP", "EGP", ("EGP", "E£"), ("livre égyptienne", "livres égyptiennes"), ("LE",)),
        Currency("KES", "KES", ("KES", "KSh", "KShs", "Ksh"), _SHILLING, ("Sh",)),
        Currency("UGX", "UGX", ("UGX", "USh"), _SHILLING),
        Currency("TZS", "TZS", ("TZS", "TSh"), _SHILLING),
        Currency("RWF", "RWF", ("RWF", "FRw", "RF"), ("franc rwandais", "francs rwandais")),
        Currency("GNF", "GNF", ("GNF", "FG"), ("franc guinéen", "francs guinéens", *_FRANC)),
        Currency("CDF", "CDF", ("CDF", "FC"), ("franc congolais", "francs congolais", *_FRANC)),
        Currency("ETB", "ETB", ("ETB",), ("birr", "birrs"), ("Br",)),
        Currency("ZAR", "ZAR", ("ZAR",), ("rand", "rands"), ("R",)),
        Currency("MUR", "MUR", ("MUR", "Rs"), _RUPEE),
        Currency("INR", "INR", ("INR", "₹", "Rs"), _RUPEE),
        Currency(
            "CAD",
            "CAD",
            ("CAD", "C$", "CA$", "$CA", "$ CA", "$"),
            (
                *("dollar canadien", "dollars canadiens"),
                *("Canadian dollar", "Canadian dollars", *_DOLLAR),
            ),
        ),
        Currency(
            "AUD",
            "AUD",
            ("AUD", "A$", "AU$", "$"),
            ("Australian dollar", "Australian dollars", *_DOLLAR),
        ),
        Currency(
            "CHF",
            "CHF",
            ("CHF", "SFr.", "Fr."),
            ("franc suisse", "francs suisses", "Swiss franc", "Swiss francs", *_FRANC),
            ("fr",),
        ),
        Currency("JPY", "JPY", ("JPY", "¥", "円"), ("yen",)),
        Currency("CNY", "CNY", ("CNY", "RMB", "¥", "元"), ("yuan", "renminbi")),
        Currency("BRL", "BRL", ("BRL", "R$"), (), ("real", "reais")),
    ]
}


def currency(code: str) -> Currency:
    """The table's entry, or a currency known only by its ISO code."""
    return CURRENCIES.get(code.upper()) or Currency(code.upper(), code.upper(), (code.upper(),))


@cache
def marks_of(codes: frozenset[str]) -> dict[str, frozenset[str]]:
    """Every way of writing a currency a reply may use -> the currencies it can mean (folded to
    lower case). The loose marks are those of ``codes`` only: "R 50" is money in a rand shop."""
    meaning: dict[str, set[str]] = {}
    for entry in CURRENCIES.values():
        written = [*entry.marks, *entry.names, *(entry.loose if entry.code in codes else ())]
        for mark in written:
            meaning.setdefault(mark.lower(), set()).add(entry.code)
    for code in codes - CURRENCIES.keys():
        meaning.setdefault(code.lower(), set()).add(code)
    return {mark: frozenset(found) for mark, found in meaning.items()}


def format_price(amount: Decimal, code: str, lang: str = "fr") -> str:
    """'12 500 FCFA', '19,99 €' in French; '12,500 FCFA', '19.99 €' in English."""
    decimals = 0 if amount == amount.to_integral_value() else 2
    text = f"{amount:,.{decimals}f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text} {currency(code).display}"


def price_number(amount: Decimal) -> int | float:
    """A JSON number for an API: an integer when the amount has no cents."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)
