"""The price guard: every amount a reply states must come from the catalogue.

An amount is a number written next to a currency ("12 500 FCFA", "45000F", "19,99 €", "$5").
It passes when it is the price (or compare-at price) of a product variant in the turn's context,
that price times a quantity, the sum of two of them, the lead's total, or an amount the shop
itself wrote in its FAQ or offer (delivery fees). Anything else is invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from itertools import combinations_with_replacement

from shared.models import FaqEntry, Product
from shared.money import format_price

MAX_QUANTITY = 20
_NUMBER = r"\d{1,3}(?:[ \u202f\u00a0.,']\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
# Letters may not touch a currency word: "Sacré-Coeur 3" holds "EUR 3" but no price.
_CURRENCY_AFTER = (
    r"\(?(?:F\s?CFA|FCFA|CFA|XOF|XAF|francs?|frs?\.?|F|€|EUR|euros?|\$|USD|£|GBP)(?![A-Za-z])"
)
_CURRENCY_BEFORE = r"(?<![A-Za-z])(?:€|\$|£|EUR|USD|XOF|XAF|F\s?CFA|FCFA|CFA)"
_AMOUNT_RE = re.compile(
    rf"(?<![\w.,])({_NUMBER})\s?{_CURRENCY_AFTER}|{_CURRENCY_BEFORE}\s?({_NUMBER})(?![\d])",
    re.IGNORECASE,
)


def parse_amount(text: str) -> Decimal | None:
    """'12 500' -> 12500, '12.500' -> 12500, '19,99' -> 19.99, '1,234.50' -> 1234.50."""
    text = re.sub(r"[ \u202f\u00a0']", "", text)
    match = re.fullmatch(r"(\d+(?:[.,]\d{3})*)(?:[.,](\d{1,2}))?", text)
    if match is None:
        return None
    whole = re.sub(r"[.,]", "", match.group(1))
    try:
        return Decimal(f"{whole}.{match.group(2)}" if match.group(2) else whole)
    except InvalidOperation:
        return None


def amounts_in(text: str) -> list[Decimal]:
    found = []
    for match in _AMOUNT_RE.finditer(text):
        amount = parse_amount(match.group(1) or match.group(2))
        if amount is not None:
            found.append(amount)
    return found


def allowed_amounts(
    products: Iterable[Product],
    faq: Iterable[FaqEntry] = (),
    shop_texts: Iterable[str] = (),
    extra: Iterable[Decimal] = (),
) -> set[Decimal]:
    prices: set[Decimal] = set()
    for product in products:
        for variant in product.variants:
            prices.add(variant.price)
            if variant.compare_at_price is not None:
                prices.add(variant.compare_at_price)
    allowed = {price * q for price in prices for q in range(1, MAX_QUANTITY + 1)}
    allowed |= {a + b for a, b in combinations_with_replacement(sorted(prices), 2)}
    for text in [*(f.answer for f in faq), *shop_texts]:
        allowed.update(amounts_in(text))
    allowed.update(extra)
    return {a.normalize() for a in allowed}


def invented_amounts(text: str, allowed: set[Decimal]) -> list[Decimal]:
    return [a for a in amounts_in(text) if a.normalize() not in allowed]


def correction(invented: list[Decimal], products: Iterable[Product], lang: str) -> str:
    """The instruction that asks the model to rewrite its answer once."""
    listed = "; ".join(f"{p.title}: {format_price(p.price, p.currency, lang)}" for p in products)
    wrong = ", ".join(str(a) for a in invented)
    return (
        f"Your previous answer stated amounts that are not in the catalogue ({wrong}). "
        "Rewrite it using only these catalogue prices"
        f"{': ' + listed if listed else ' (none are known: do not state any price)'}."
    )


SAFE_ANSWER = {
    "fr": (
        "Voici les prix de notre catalogue :",
        "Je préfère vérifier ce prix avec la boutique : {contact}.",
    ),
    "en": (
        "Here are the prices from our catalogue:",
        "I'd rather check that price with the shop: {contact}.",
    ),
}


def safe_answer(products: list[Product], lang: str, contact: str) -> str:
    """An answer built from catalogue data alone, when the model keeps inventing prices."""
    heading, unknown = SAFE_ANSWER.get(lang, SAFE_ANSWER["en"])
    if not products:
        return unknown.format(contact=contact)
    lines = [heading]
    lines += [f"- {p.title} : {format_price(p.price, p.currency, lang)}" for p in products[:5]]
    return "\n".join(lines)
