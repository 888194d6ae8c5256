"""The price guard: every amount a reply states must come from the catalogue or the shop.

An amount is a number written with a currency, in any currency of ``shared.money``'s table
("12 500 FCFA", "45000F", "19,99 €", "₦5,000", "1k FCFA", "mille francs CFA"), or a bare
"12k". Text is read after Unicode compatibility folding, so fullwidth "１２ ０００ ＦＣＦＡ" is
"12 000 FCFA".

Amounts are tied to the products they are said about: in a sentence (or line) that names
products, an amount must be a price or compare-at price of one of THOSE products, that price
times a quantity, the sum of two of them, the total of an order captured for them, or one of those
plus a fee the shop wrote. In a sentence that names none, any product of the turn counts. Amounts
the shop itself wrote in its offer or FAQ (delivery fees) pass anywhere, in their currency.

Discounts ("remise", "promo", "-20 %", "% off") and free items ("gratuit", "offert", "free")
pass only when the shop's offer or FAQ speaks of them (or, for discounts, a product has a
compare-at price); a percentage said of a discount must be one the shop wrote.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from itertools import combinations_with_replacement
from typing import Literal

from shared.catalog.retrieval import fold
from shared.models import Product
from shared.money import CURRENCIES, format_price, marks_of

MAX_QUANTITY = 20
_LETTER = r"[^\W\d_]"
# At most five thousands groups (10^18): an unbounded repeat would make a long run of digit
# groups cost the square of its length.
_NUMBER = r"\d{1,3}(?:[ .,'’]\d{3}){1,5}(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MULTIPLIER = rf"\s?k(?!{_LETTER})|\s(?:mille|thousand|millions?)(?!{_LETTER})"
_SCALES = {"k": 1000, "mille": 1000, "thousand": 1000, "million": 1000000, "millions": 1000000}
_NUMBER_WORDS: dict[str, int] = {
    **dict.fromkeys(("un", "une", "one"), 1),
    **dict.fromkeys(("deux", "two"), 2),
    **dict.fromkeys(("trois", "three"), 3),
    **dict.fromkeys(("quatre", "four"), 4),
    **dict.fromkeys(("cinq", "five"), 5),
    **dict.fromkeys(("six",), 6),
    **dict.fromkeys(("sept", "seven"), 7),
    **dict.fromkeys(("huit", "eight"), 8),
    **dict.fromkeys(("neuf", "nine"), 9),
    **dict.fromkeys(("dix", "ten"), 10),
    **dict.fromkeys(("onze", "eleven"), 11),
    **dict.fromkeys(("douze", "twelve"), 12),
    **dict.fromkeys(("treize", "thirteen"), 13),
    **dict.fromkeys(("quatorze", "fourteen"), 14),
    **dict.fromkeys(("quinze", "fifteen"), 15),
    **dict.fromkeys(("seize", "sixteen"), 16),
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    **dict.fromkeys(("vingt", "vingts", "twenty"), 20),
    **dict.fromkeys(("trente", "thirty"), 30),
    **dict.fromkeys(("quarante", "forty"), 40),
    **dict.fromkeys(("cinquante", "fifty"), 50),
    **dict.fromkeys(("soixante", "sixty"), 60),
    **dict.fromkeys(("septante", "seventy"), 70),
    **dict.fromkeys(("huitante", "octante", "eighty"), 80),
    **dict.fromkeys(("nonante", "ninety"), 90),
    **dict.fromkeys(("cent", "cents", "hundred"), 100),
    **dict.fromkeys(("mille", "thousand"), 1000),
    **dict.fromkeys(("million", "millions"), 1000000),
}
_CONNECTORS = frozenset({"et", "and", "de", "d", "of"})
_WORDS = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_NUMBER_IN_WORDS = rf"(?<!{_LETTER})(?:{_WORDS})(?:(?:\s+|-)(?:(?:et|and)(?:\s+|-))?(?:{_WORDS}))*"
_PERCENT = re.compile(rf"({_NUMBER})\s?(?:%|pour\s?cents?|per\s?cent|percent)", re.IGNORECASE)
_DISCOUNT_MARK = re.compile(rf"(?<![\w%])[-−–]\s?(?:{_NUMBER})\s?%|%\s?off\b", re.IGNORECASE)
_DISCOUNT = re.compile(
    rf"(?<!{_LETTER})(?:remises?|réductions?|rabais|ristournes?|promos?|promotion(?:nel)?\w*"
    rf"|soldes|discount\w*|coupons?|prix réduits?|prix cassés?|moitié prix|half[- ]price"
    rf"|on sale)(?!{_LETTER})",
    re.IGNORECASE,
)
_FREE = re.compile(
    rf"(?<!{_LETTER})(?:gratuit(?:e|s|es|ement)?|offert(?:e|s|es)?|sans frais"
    rf"|(?<!feel )(?<!-)free(?! to\b))(?!{_LETTER})",
    re.IGNORECASE,
)
# A sentence ends at . ! ? ; … followed by a space, or at a line break: what a streaming reader
# can tell as soon as the next character arrives.
SENTENCE_END = re.compile(r"(?<=[.!?;…。．！？；])\s+|\s*\n\s*")
# Words of a discount or free phrase that are plain words on their own ("sans frais", "on sale").
_PHRASE_WORDS = frozenset(
    {"frais", "sale", "réduit", "réduits", "cassé", "cassés", "moitié", "half"}
)
_PUNCTUATION = ".,;:!?()[]{}\"'«»“”*_…"


def normalize(text: str) -> str:
    """Fullwidth digits and letters, narrow spaces, '％' read as their plain forms."""
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currencies: frozenset[str] | None  # None: a bare "12k"
    written: str


def parse_amount(text: str) -> Decimal | None:
    """'12 500' -> 12500, '12.500' -> 12500, '19,99' -> 19.99, '1,234.50' -> 1234.50."""
    text = re.sub(r"[ '’]", "", normalize(text))
    match = re.fullmatch(r"(\d+(?:[.,]\d{3})*)(?:[.,](\d{1,2}))?", text)
    if match is None:
        return None
    whole = re.sub(r"[.,]", "", match.group(1))
    try:
        return Decimal(f"{whole}.{match.group(2)}" if match.group(2) else whole)
    except InvalidOperation:
        return None


def parse_number_words(text: str) -> int:
    """'mille' -> 1000, 'quatre-vingt-dix' -> 90, 'two hundred fifty' -> 250."""
    total = current = 0
    for word in re.split(r"[\s-]+", text.lower()):
        value = _NUMBER_WORDS.get(word)
        if value is None:  # a connector: "et", "and"
            continue
        if value == 20 and current % 10 == 4 and word.startswith("vingt"):  # quatre-vingt(s)
            current += 80 - 4
        elif value == 100:
            current = max(current, 1) * 100
        elif value >= 1000:
            total += max(current, 1) * value
            current = 0
        else:
            current += value
    return total + current


@cache
def _amount_re(codes: frozenset[str]) -> re.Pattern[str]:
    marks = "|".join(
        re.escape(mark).replace(r"\ ", r"\s?")
        for mark in sorted(marks_of(codes), key=len, reverse=True)
    )

    def after(group: str) -> str:  # "12 000 FCFA", "9 000 (FCFA)"
        return rf"(?:\(\s?)?(?P<{group}>{marks})(?!{_LETTER})"

    return re.compile(
        rf"(?<!{_LETTER})(?P<c1>{marks})\s?(?P<n1>{_NUMBER})(?P<m1>{_MULTIPLIER})?(?![\d])"
        rf"|(?<![\w.,])(?P<n2>{_NUMBER})(?P<m2>{_MULTIPLIER})?\s?{after('c2')}"
        rf"|(?P<words>{_NUMBER_IN_WORDS})\s+(?:de\s+|d'|of\s+)?{after('c3')}"
        rf"|(?<![\w.,])(?P<n3>{_NUMBER})\s?(?P<m3>k)(?!{_LETTER})",
        re.IGNORECASE,
    )


@cache
def _meanings(codes: frozenset[str]) -> dict[str, frozenset[str]]:
    """marks_of keyed as the amount pattern may read them: "F CFA" and "FCFA" are one mark."""
    meaning: dict[str, frozenset[str]] = {}
    for mark, currencies in marks_of(codes).items():
        meaning[_compact(mark)] = meaning.get(_compact(mark), frozenset()) | currencies
    return meaning


def _compact(mark: str) -> str:
    return re.sub(r"\s+", "", mark.lower())


def read_amounts(text: str, codes: Iterable[str] = ("XOF",)) -> list[Amount]:
    """The amounts in ``text``, as a shop using ``codes`` writes them."""
    meaning = _meanings(frozenset(codes))
    found = []
    for match in _amount_re(frozenset(codes)).finditer(normalize(text)):
        if match["words"]:
            value: Decimal | None = Decimal(parse_number_words(match["words"]))
        else:
            value = parse_amount(match["n1"] or match["n2"] or match["n3"])
            scale = (match["m1"] or match["m2"] or match["m3"] or "").strip().lower()
            if value is not None and scale:
                value *= _SCALES[scale]
        mark = match["c1"] or match["c2"] or match["c3"]
        currencies = meaning[_compact(mark)] if mark else None
        if value is not None:
            found.append(Amount(value.normalize(), currencies, match[0].strip(" ()")))
    return found


def amounts_in(text: str, codes: Iterable[str] = ("XOF",)) -> list[Decimal]:
    return [a.value for a in read_amounts(text, codes)]


def sentences(text: str) -> list[str]:
    return SENTENCE_END.split(text)


WordKind = Literal["money", "number", "connector", "plain"]


def word_kind(word: str, codes: frozenset[str]) -> WordKind:
    """What a word may be part of, for a reader that sees a reply word by word: "money" (a digit,
    a currency, a discount or free word), "number" (a number in words, money if a currency
    follows), "connector" ("et", "de": inside a number in words), or "plain"."""
    folded = normalize(word).lower().strip(_PUNCTUATION)
    parts = [p for p in re.split(r"['’-]", folded) if p]
    if (
        any(c.isdigit() or c in _money_chars() for c in folded)
        or any(p in _money_words(codes) for p in [folded, *parts])
        or _FREE.search(folded)
        or _DISCOUNT.search(folded)
    ):
        return "money"
    if parts and all(p in _NUMBER_WORDS or p in _CONNECTORS for p in parts):
        return "number" if any(p in _NUMBER_WORDS for p in parts) else "connector"
    return "plain"


@cache
def _money_chars() -> frozenset[str]:
    marks = marks_of(frozenset(CURRENCIES))
    return frozenset({"%", *(c for mark in marks for c in mark if not (c.isalnum() or c in " ."))})


@cache
def _money_words(codes: frozenset[str]) -> frozenset[str]:
    words = {w.strip(".") for mark in marks_of(codes) for w in mark.split()}
    return frozenset({*marks_of(codes), *words, *_PHRASE_WORDS} - {""})


@dataclass(frozen=True)
class PriceFacts:
    """What a reply may say about money in one turn."""

    products: tuple[Product, ...]
    currency: str = "XOF"  # the shop's
    shop_texts: tuple[str, ...] = ()  # the shop's offer and the retrieved FAQ answers
    orders: tuple[tuple[str, Decimal, str], ...] = ()  # (product id, total, currency) captured
    _allowed_for: dict[frozenset[str], dict[Decimal, set[str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @cached_property
    def codes(self) -> frozenset[str]:
        return frozenset({self.currency, *(p.currency for p in self.products)})

    @cached_property
    def written(self) -> list[Amount]:
        return [a for text in self.shop_texts for a in read_amounts(text, self.codes)]

    @cached_property
    def free_allowed(self) -> bool:
        return any(_FREE.search(normalize(text)) for text in self.shop_texts)

    @cached_property
    def discounts(self) -> tuple[bool, frozenset[Decimal]]:
        """Whether discounts may be mentioned, and the percentages that may be said of them."""
        percents = {
            parse_amount(match[1])
            for text in self.shop_texts
            for match in _PERCENT.finditer(normalize(text))
        }
        catalogue_discount = False
        for product in self.products:
            for variant in product.variants:
                was = variant.compare_at_price
                if was is not None and was > variant.price:
                    catalogue_discount = True
                    percents.add(((1 - variant.price / was) * 100).quantize(Decimal(1)))
        spoken = any(
            _DISCOUNT.search(normalize(t)) or _DISCOUNT_MARK.search(normalize(t))
            for t in self.shop_texts
        )
        return spoken or catalogue_discount, frozenset(p.normalize() for p in percents if p)

    def allowed_for(self, products: tuple[Product, ...]) -> dict[Decimal, set[str]]:
        """The amounts a sentence about ``products`` may state -> in which currencies."""
        key = frozenset(p.id for p in products)
        cached = self._allowed_for.get(key)
        if cached is not None:
            return cached
        allowed: dict[Decimal, set[str]] = {}

        def allow(value: Decimal, codes: Iterable[str]) -> None:
            allowed.setdefault(value.normalize(), set()).update(codes)

        by_currency: dict[str, set[Decimal]] = {}
        for product in products:
            prices = by_currency.setdefault(product.currency, set())
            for variant in product.variants:
                prices.add(variant.price)
                if variant.compare_at_price is not None:
                    prices.add(variant.compare_at_price)
        for product_id, total, code in self.orders:
            if product_id in key:
                by_currency.setdefault(code, set()).add(total)
        for code, prices in by_currency.items():
            for price in prices:
                for quantity in range(1, MAX_QUANTITY + 1):
                    allow(price * quantity, [code])
            for a, b in combinations_with_replacement(sorted(prices), 2):
                allow(a + b, [code])
        fees = [(a.value, a.currencies or {self.currency}) for a in self.written]
        for value, codes in list(allowed.items()):  # an order plus a fee the shop wrote
            for fee, fee_codes in fees:
                if codes & fee_codes:
                    allow(value + fee, codes & fee_codes)
        for fee, fee_codes in fees:
            allow(fee, fee_codes)
        self._allowed_for[key] = allowed
        return allowed

    def problems(self, text: str) -> list[str]:
        """What ``text`` says about money that neither the catalogue nor the shop says; empty
        when the text may be shown."""
        found: list[str] = []
        for sentence in sentences(normalize(text)):
            found.extend(self._sentence_problems(sentence))
        return found

    def _sentence_problems(self, sentence: str) -> Iterator[str]:
        folded = fold(sentence)
        named = tuple(p for p in self.products if fold(p.title) in folded)
        allowed = self.allowed_for(named or self.products)
        for amount in read_amounts(sentence, self.codes):
            codes = allowed.get(amount.value)
            if codes is None or (amount.currencies is not None and not codes & amount.currencies):
                about = f" for {', '.join(p.title for p in named)}" if named else ""
                yield f"{amount.written} (not a catalogue price{about})"
        discount_allowed, percents = self.discounts
        discount = _DISCOUNT.search(sentence) or _DISCOUNT_MARK.search(sentence)
        if discount and not discount_allowed:
            yield f"{discount[0].strip()} (the shop offers no discount)"
        elif discount:
            for match in _PERCENT.finditer(sentence):
                if parse_amount(match[1]) not in percents:
                    yield f"{match[0]} (not a discount the shop offers)"
        free = _FREE.search(sentence)
        if free and not self.free_allowed:
            yield f"{free[0]} (the shop offers nothing for free)"


def correction(problems: list[str], products: Iterable[Product], lang: str) -> str:
    """The instruction that asks the model to rewrite its answer once."""
    listed = "; ".join(f"{p.title}: {format_price(p.price, p.currency, lang)}" for p in products)
    return (
        f"Your previous answer said things about money that the catalogue and the shop do not "
        f"say: {'; '.join(problems)}. Rewrite it using only these catalogue prices"
        f"{': ' + listed if listed else ' (none are known: do not state any price)'}, each for "
        "its own product, and mention a discount or a free item only if the shop's offer or FAQ "
        "does."
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
