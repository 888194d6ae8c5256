"""The price guard's reading of amounts, what it allows, and the streaming gate built on it."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from shared.models import Product
from shared.money import CURRENCIES, format_price
from shared.price_guard import PriceFacts, amounts_in, read_amounts, safe_answer
from shared.sentence_gate import SentenceGate


def _product(product_id: str, title: str, currency: str, *prices: str, was: str = "") -> Product:
    variants = [{"id": f"{product_id}:{i}", "price": p} for i, p in enumerate(prices)]
    if was:
        variants[0]["compare_at_price"] = was
    return Product.model_validate(
        {"id": product_id, "title": title, "currency": currency, "variants": variants}
    )


SANDALES = _product("sandales", "Sandales en cuir", "XOF", "15000", "17000")
BOUBOU = _product("boubou", "Boubou brodé", "XOF", "45000")
SAC = _product("sac", "Sac en raphia", "XOF", "12000")
FAQ = "Livraison à Dakar en 24 h pour 2 000 FCFA, en région en 48 à 72 h."
FACTS = {
    # No discount, nothing free: only catalogue prices and the FAQ's delivery fee.
    "plain": PriceFacts((SANDALES, BOUBOU, SAC), "XOF", ("", FAQ)),
    # The shop's offer speaks of a 10 % discount and free delivery.
    "offer": PriceFacts(
        (SANDALES, BOUBOU, SAC),
        "XOF",
        ("10 % de remise sur la première commande, livraison offerte dès 50 000 FCFA", FAQ),
    ),
    # A catalogue discount: a compare-at price.
    "compare_at": PriceFacts(
        (_product("sandales", "Sandales en cuir", "XOF", "15000", was="18000"),), "XOF"
    ),
    # A captured order.
    "order": PriceFacts((BOUBOU,), "XOF", (), (("boubou", Decimal("90000"), "XOF"),)),
    "NGN": PriceFacts((_product("ankara", "Ankara dress", "NGN", "18500"),), "NGN"),
    "GHS": PriceFacts((_product("kente", "Kente scarf", "GHS", "250"),), "GHS"),
    "MAD": PriceFacts((_product("tajine", "Tajine en terre", "MAD", "120"),), "MAD"),
    "KES": PriceFacts((_product("kikoi", "Kikoi", "KES", "1500"),), "KES"),
    "ZAR": PriceFacts((_product("biltong", "Biltong box", "ZAR", "350"),), "ZAR"),
    "CAD": PriceFacts((_product("candle", "Maple candle", "CAD", "24"),), "CAD"),
    "CHF": PriceFacts((_product("montre", "Montre", "CHF", "990"),), "CHF"),
}
FLAGGED, ALLOWED = True, False
CASES = [
    # --- invented or misattributed amounts, in many spellings --------------------------------
    ("plain", "Le Sac en raphia est à 1k FCFA.", FLAGGED),
    ("plain", "Le Sac en raphia ne coûte que 5K FCFA !", FLAGGED),
    ("plain", "Le Boubou brodé pour mille francs CFA seulement.", FLAGGED),
    ("plain", "Pour un franc de plus, la livraison est express.", FLAGGED),
    ("plain", "Le Boubou brodé : １２ ０００ ＦＣＦＡ.", FLAGGED),  # fullwidth, the sac's price
    ("plain", "Le Boubou brodé coûte 12 000 FCFA.", FLAGGED),  # another product's price
    ("plain", "Sandales en cuir : 12 000 FCFA", FLAGGED),
    ("plain", "The Boubou brodé is only 40,000 XOF.", FLAGGED),
    ("plain", "Le Boubou brodé à 45 000 €, une affaire", FLAGGED),  # the wrong currency
    ("plain", "It's $45,000 for the Boubou brodé.", FLAGGED),
    ("plain", "Le Boubou brodé coûte quarante mille francs.", FLAGGED),
    ("plain", "The Boubou brodé is twelve thousand francs.", FLAGGED),
    ("plain", "Le Sac en raphia : 9 900 FCFA.", FLAGGED),
    ("plain", "Le Boubou brodé pour 0 FCFA ?", FLAGGED),
    ("plain", "Deux Boubou brodé pour 80 000 FCFA.", FLAGGED),
    ("plain", "Sandales en cuir à 15 000 FCFA au lieu de 20 000 FCFA.", FLAGGED),
    ("plain", "Le Boubou brodé coûte 45 000 FCFA, soit 68,60 €.", FLAGGED),
    ("plain", "Boubou brodé : 45 000 FCFA\nSac en raphia : 45 000 FCFA", FLAGGED),
    ("plain", "Sac en raphia : FCFA 12 500", FLAGGED),
    ("plain", "Sac en raphia : 12 000 FCFA ; Boubou brodé : 12 000 FCFA.", FLAGGED),
    ("plain", "Le Sac en raphia coûte 12k, le Boubou brodé 12k aussi.", ALLOWED),  # one sentence
    # --- discounts and free items the shop never offered ----------------------------------
    ("plain", "Les retouches sont gratuites.", FLAGGED),
    ("plain", "La livraison est offerte.", FLAGGED),
    ("plain", "Free delivery on every order.", FLAGGED),
    ("plain", "We ship for free.", FLAGGED),
    ("plain", "Livraison sans frais partout au Sénégal.", FLAGGED),
    ("plain", "Profitez de -20 % sur les sandales.", FLAGGED),
    ("plain", "Get 30% off the Sac en raphia.", FLAGGED),
    ("plain", "Promo spéciale ce week-end !", FLAGGED),
    ("plain", "Bénéficiez d'une réduction sur votre commande.", FLAGGED),
    ("plain", "Half price on the Boubou brodé!", FLAGGED),
    ("plain", "Le Sac en raphia est en soldes.", FLAGGED),
    ("plain", "Use the discount code WELCOME.", FLAGGED),
    ("plain", "Sac en raphia : 12 000 F CFA, livraison gratuite.", FLAGGED),
    ("offer", "Remise de 95 % sur le Boubou brodé aujourd'hui.", FLAGGED),  # not the shop's 10 %
    ("offer", "Remise de ９５ ％ aujourd'hui.", FLAGGED),
    ("compare_at", "Les Sandales en cuir sont à -50 % !", FLAGGED),
    # --- other currencies: the shop's own marks are read -----------------------------------
    ("NGN", "The Ankara dress is ₦25,000.", FLAGGED),
    ("NGN", "Ankara dress: N25,000 only", FLAGGED),
    ("GHS", "Kente scarf: GH₵ 300", FLAGGED),
    ("MAD", "Le Tajine en terre est à 150 DH.", FLAGGED),
    ("MAD", "Le Tajine en terre est à 150 dirhams.", FLAGGED),
    ("KES", "KSh 2,000 for the Kikoi.", FLAGGED),
    ("ZAR", "Only R 499 for the Biltong box.", FLAGGED),
    ("CAD", "The Maple candle is C$30.", FLAGGED),
    ("CHF", "La Montre est à CHF 1'200.-", FLAGGED),
    # --- correct prices and ordinary numbers, which must pass ------------------------------
    ("plain", "Le Sac en raphia est à 12 000 FCFA.", ALLOWED),
    ("plain", "Le Sac en raphia : 12.000 F CFA.", ALLOWED),
    ("plain", "Sac en raphia — 12000F", ALLOWED),
    ("plain", "Le Sac en raphia ? 12k seulement.", ALLOWED),
    ("plain", "Sac en raphia : １２ ０００ ＦＣＦＡ.", ALLOWED),
    ("plain", "Le Sac en raphia coûte douze mille francs CFA.", ALLOWED),
    ("plain", "Le Sac en raphia coûte 12 000 francs.", ALLOWED),
    ("plain", "Sac en raphia : 12 000 XOF, ou FCFA 12 000.", ALLOWED),
    ("plain", "Sac en raphia : 12\u202f000 FCFA", ALLOWED),
    ("plain", "The Boubou brodé costs 45,000 FCFA.", ALLOWED),
    ("plain", "Sandales en cuir : 15.000,00 FCFA", ALLOWED),
    ("plain", "Livraison à Dakar : 2 000 FCFA.", ALLOWED),  # the FAQ's fee
    ("plain", "3 Sac en raphia : 36 000 FCFA.", ALLOWED),  # quantity × price
    ("plain", "Sac en raphia 12 000 FCFA + livraison 2 000 FCFA = 14 000 FCFA.", ALLOWED),
    ("plain", "Sandales en cuir : 15 000 FCFA (pointure 40), 17 000 FCFA (44).", ALLOWED),
    ("plain", "Une paire de chaque pointure de Sandales en cuir : 32 000 FCFA.", ALLOWED),
    ("plain", "Sac en raphia 12 000 FCFA. Boubou brodé 45 000 FCFA.", ALLOWED),
    ("plain", "- **Boubou brodé** : 45 000 FCFA\n- **Sac en raphia** : 12 000 FCFA", ALLOWED),
    (
        "plain",
        "Le Boubou brodé (45 000 FCFA) et le Sac en raphia (12 000 FCFA) : 57 000 FCFA les deux.",
        ALLOWED,
    ),
    ("plain", "Les sandales sont à partir de 15 000 FCFA.", ALLOWED),  # no title: any product
    ("plain", "Appelez-nous au +221 77 000 00 00.", ALLOWED),
    ("plain", "Livraison le 12/05/2024 entre 9 h et 12 h.", ALLOWED),
    ("plain", "Les Sandales en cuir existent en taille 42 et 44.", ALLOWED),
    ("plain", "Le flacon fait 100 ml, le sac pèse 2 kg.", ALLOWED),
    ("plain", "Nos boubous sont 100 % coton.", ALLOWED),
    ("plain", "Un sac, une paire de sandales : tout est fait main.", ALLOWED),
    ("plain", "Commande n° 12000 bien reçue, merci.", ALLOWED),
    ("plain", "Feel free to ask me anything about the Sac en raphia.", ALLOWED),
    ("plain", "Le Sac en raphia est fait main, livré sous 48 h.", ALLOWED),
    ("offer", "Profitez de 10 % de remise sur votre première commande.", ALLOWED),
    ("offer", "La livraison est offerte dès 50 000 FCFA.", ALLOWED),
    ("offer", "Free delivery from 50,000 FCFA.", ALLOWED),  # the model translated the offer
    ("compare_at", "Sandales en cuir en promo : 15 000 FCFA au lieu de 18 000 FCFA.", ALLOWED),
    ("order", "Votre commande : 2 × Boubou brodé, total 90 000 FCFA.", ALLOWED),
    ("order", "Boubou brodé : 90 000 FCFA + livraison.", ALLOWED),
    ("NGN", "The Ankara dress is ₦18,500, or 18 500 naira.", ALLOWED),
    ("GHS", "Kente scarf: GH₵250", ALLOWED),
    ("MAD", "Le Tajine en terre : 120 DH (120 dirhams).", ALLOWED),
    ("KES", "Kikoi: KSh 1,500", ALLOWED),
    ("ZAR", "Biltong box: R350, or R 700 for two.", ALLOWED),
    ("CAD", "The Maple candle is C$24 (24 $ CA).", ALLOWED),
    ("CHF", "La Montre : CHF 990.–", ALLOWED),
    ("plain", "Le modèle R2 du Sac en raphia.", ALLOWED),  # "R" is money in a rand shop only
]


@pytest.mark.parametrize(("facts", "text", "flagged"), CASES)
def test_the_guard_flags_what_the_shop_never_said(facts: str, text: str, flagged: bool) -> None:
    problems = FACTS[facts].problems(text)
    assert bool(problems) is flagged, problems


def test_the_adversarial_set_is_large_and_balanced() -> None:
    assert len(CASES) >= 50
    assert sum(flagged for *_, flagged in CASES) >= 20
    assert sum(not flagged for *_, flagged in CASES) >= 20


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
        ("1k FCFA, 5K FCFA, 1,5k FCFA, 12k", ["1000", "5000", "1500", "12000"]),
        ("mille francs CFA, un franc, quatre-vingt-dix-neuf euros", ["1000", "1", "99"]),
        ("deux millions de francs CFA, 15 mille francs", ["2000000", "15000"]),
        ("１２ ０００ ＦＣＦＡ", ["12000"]),
    ],
)
def test_amounts_are_read_next_to_a_currency(text: str, amounts: list[str]) -> None:
    assert amounts_in(text) == [Decimal(a) for a in amounts]


@pytest.mark.parametrize("code", sorted(CURRENCIES))
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_currency_as_we_write_it_reads_back(code: str, lang: str) -> None:
    [amount] = read_amounts(format_price(Decimal("12500.5"), code, lang), [code])
    assert amount.value == Decimal("12500.5")
    assert amount.currencies is not None and code in amount.currencies


def test_safe_answer_uses_catalogue_data_only() -> None:
    text = safe_answer([SANDALES], "fr", "+221 77 000 00 00")
    assert "Sandales en cuir" in text
    assert "15\u202f000 FCFA" in text
    assert FACTS["plain"].problems(text) == []
    assert "+221 77 000 00 00" in safe_answer([], "fr", "+221 77 000 00 00")


# --- the streaming gate: what the customer sees while the model writes ------------------------


def _stream(facts: PriceFacts, deltas: list[str]) -> tuple[list[str], SentenceGate]:
    gate = SentenceGate(lambda: facts)
    return [gate.feed(delta) for delta in deltas], gate


@pytest.mark.parametrize(("facts", "text"), [(f, t) for f, t, flagged in CASES if flagged])
def test_no_flagged_text_is_shown_whatever_the_cuts(facts: str, text: str) -> None:
    """Character by character, the worst cutting: nothing shown ever fails the guard."""
    shown, _ = _stream(FACTS[facts], list(text))
    for end in range(len(shown) + 1):
        assert FACTS[facts].problems("".join(shown[:end])) == []


@pytest.mark.parametrize(("facts", "text"), [(f, t) for f, t, flagged in CASES if not flagged])
def test_allowed_text_comes_out_whole(facts: str, text: str) -> None:
    shown, gate = _stream(FACTS[facts], list(text))
    assert "".join(shown) + gate.rest() == text


def test_an_amount_cut_across_deltas_is_held_then_released_once_checked() -> None:
    facts = FACTS["plain"]
    shown, gate = _stream(
        facts, ["Le Boubou brodé ", "est à 45", " 0", "00 FC", "FA. ", "Il est ", "fait main."]
    )
    assert shown == ["Le Boubou brodé ", "est à ", "", "", "45 000 FCFA. ", "Il est ", "fait "]
    assert gate.rest() == "main."  # the last word may still grow until the reply ends


def test_an_invented_amount_holds_the_rest_of_the_reply() -> None:
    deltas = ["Le Boubou brodé est à 12", " 0", "00 FC", "FA. ", "Ok ? "]
    shown, gate = _stream(FACTS["plain"], deltas)
    assert "".join(shown) == "Le Boubou brodé est à "
    assert gate.rest() == "12 000 FCFA. Ok ? "  # only for a guard that then passes it


def test_a_number_in_words_is_held_only_until_it_is_plainly_not_money() -> None:
    deltas = ["Je vous propose une ", "paire ", "et deux", " mille ", "fr"]
    shown, _ = _stream(FACTS["plain"], deltas)
    assert shown == ["Je vous propose ", "une paire ", "et ", "", ""]


def test_a_long_run_of_digit_groups_is_read_in_linear_time() -> None:
    # "1 111 111 …" once cost the square of its length (4,000 characters: about a second).
    text = "1" + " 111" * 1000 + " FCFA"
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        amounts_in(text, ("XOF",))
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.15
