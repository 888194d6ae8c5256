"""Retrieval across French and English without a model: the glossary expands a query with the
words of the other language, weighted below the words typed, within bounds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from shared.catalog.glossary import GLOSSARY_PATH, Glossary
from shared.catalog.importer import load_products, seed_demo
from shared.catalog.retrieval import (
    MAX_QUERY_WORDS,
    MAX_TRANSLATED_TERMS,
    MAX_TRANSLATIONS,
    TRANSLATED_WEIGHT,
    CatalogIndex,
    build_index,
    glossary,
    index_catalog,
    tokens,
)
from shared.models import FaqEntry, Product, Variant
from shared.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
GLOW_COSMETICS = ROOT / "tests" / "data" / "glow_cosmetics.csv"


def product(handle: str, title: str, description: str = "", **options: str) -> Product:
    """A product with one variant, or one per value of a single option (``Colour="Red,Blue"``)."""
    [(name, values)] = options.items() or [("", "")]
    variants = [
        Variant(id=f"{handle}:{value or 'default'}", title=value, price=Decimal(20),
                options={name: value} if value else {})
        for value in values.split(",")
    ]  # fmt: skip
    return Product(id=handle, title=title, description=description, currency="EUR",
                   variants=variants)  # fmt: skip


def ids(index: CatalogIndex, query: str, limit: int = 4) -> list[str]:
    return [p.id for p, _ in index.search_products(query, limit)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogIndex]:
    """The demo shop's index, as `python -m shared seed-demo` stores it."""
    store = SQLiteStore(tmp_path_factory.mktemp("demo") / "demo.db")
    seed_demo(store, "demo")
    yield build_index(store, "demo")
    store.close()


@pytest.fixture(scope="module")
def glow() -> CatalogIndex:
    """An English cosmetics shop (15 products, a Shopify CSV export)."""
    result = load_products(GLOW_COSMETICS, currency="GBP")
    assert not result.errors and len(result.products) == 15
    return index_catalog(result.products)


# --- English questions, French catalogue (the demo shop) -----------------------------------------


def test_do_you_have_dresses_finds_the_wax_dress(demo: CatalogIndex) -> None:
    found = ids(demo, "Do you have dresses?")
    assert found[0] == "robe-wax-ndeye"
    # "dresses" is an English word, not a typo of "tresse" (the braided basket, belt and hat).
    assert not [i for i in found if "tresse" in i]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a red dress", "robe-wax-ndeye"),
        ("shea butter", "beurre-de-karite"),
        ("black soap", "savon-noir-karite"),
        ("a necklace for my wife", "collier-cauris"),
        ("do you have candles?", "bougie-parfumee-bissap"),
    ],
)
def test_english_words_find_french_products(demo: CatalogIndex, query: str, expected: str) -> None:
    assert ids(demo, query)[0] == expected


# --- multi-word entries, both ways -----------------------------------------------------------


def test_sunglasses_find_lunettes_de_soleil() -> None:
    index = index_catalog(
        [
            product("lunettes", "Lunettes de soleil rondes", "Monture en acétate, verres UV400."),
            product("foulard", "Foulard wax", Couleur="Jaune soleil,Bleu nuit"),
            product("chapeau", "Chapeau de paille", "Pour la plage et le soleil."),
        ]
    )
    assert ids(index, "sunglasses")[0] == "lunettes"
    assert ids(index, "Do you sell sunglasses?")[0] == "lunettes"


def test_lunettes_de_soleil_find_sunglasses_not_sun_hats() -> None:
    index = index_catalog(
        [
            product("sun-hat", "Straw sun hat", "Wide brim for the beach."),
            product("sunglasses", "Round sunglasses", "Acetate frame, UV400 lenses."),
            product("reading", "Reading glasses", "Blue light filter."),
        ]
    )
    # The phrase is "sunglasses": neither "sun" nor "glasses" alone.
    assert ids(index, "des lunettes de soleil") == ["sunglasses"]


def test_a_phrase_needs_all_its_words_in_the_catalogue() -> None:
    # "sunglasses" is "lunettes de soleil": a scarf in "jaune soleil" is no pair of sunglasses.
    index = index_catalog([product("foulard", "Foulard wax", Couleur="Jaune soleil")])
    assert ids(index, "sunglasses") == []


def test_without_the_phrase_its_words_are_translated_one_by_one() -> None:
    index = index_catalog([product("glasses", "Reading glasses", "Blue light filter.")])
    assert ids(index, "lunettes de soleil") == ["glasses"]


# --- French questions, English cosmetics catalogue -------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Vous avez une crème hydratante ?", "daily-moisturiser"),
        ("un baume à lèvres", "shea-lip-balm"),
        ("shampoing pour cheveux secs", "argan-shampoo"),
        ("crème solaire", "mineral-sunscreen"),
        ("masque à l'argile", "clay-face-mask"),
        ("rouge à lèvres rouge", "matte-lipstick"),
        ("après-shampoing", "coconut-conditioner"),
        ("lait pour le corps", "cocoa-body-lotion"),
    ],
)
def test_french_words_find_english_cosmetics(glow: CatalogIndex, query: str, expected: str) -> None:
    assert ids(glow, query)[0] == expected


def test_savon_finds_the_soaps(glow: CatalogIndex) -> None:
    assert set(ids(glow, "savon", 2)) == {"african-black-soap", "oat-honey-soap"}
    assert ids(glow, "savon noir")[0] == "african-black-soap"


def test_beurre_de_karite_finds_shea_butter(glow: CatalogIndex) -> None:
    found = glow.search_products("beurre de karité", 3)
    assert "raw-shea-butter" in [p.id for p, _ in found[:2]]
    assert all("shea butter" in f"{p.title} {p.description}".lower() for p, _ in found)


def test_faq_questions_are_translated_too() -> None:
    index = index_catalog(
        [],
        [
            FaqEntry(id="paiement", question="Quels moyens de paiement acceptez-vous ?",
                     answer="Wave, Orange Money ou espèces à la livraison."),
            FaqEntry(id="retours", question="Puis-je retourner un article ?",
                     answer="Oui, sous 7 jours."),
        ],
    )  # fmt: skip
    [(best, _), *_] = index.search_faq("payment options?")
    assert best.id == "paiement"


# --- a translation counts for less than the word typed ---------------------------------------


def test_the_typed_word_outranks_its_translation() -> None:
    index = index_catalog(
        [
            product("black-soap", "Black soap", "Plantain ash and shea butter."),
            product("savon-noir", "Savon noir", "Cendre de plantain, huile de palme."),
        ]
    )
    [(first, first_score), (second, second_score)] = index.search_products("savon", 2)
    assert (first.id, second.id) == ("savon-noir", "black-soap")
    assert second_score == pytest.approx(TRANSLATED_WEIGHT * first_score)
    assert ids(index, "soap") == ["black-soap", "savon-noir"]


def test_a_phrase_translation_counts_as_one_word() -> None:
    index = index_catalog([product("sunglasses", "Sunglasses"), product("sac", "Sac")])
    terms = index.product_index.terms("lunettes de soleil")
    assert terms == {"sunglass": TRANSLATED_WEIGHT}
    index = index_catalog([product("lunettes", "Lunettes de soleil")])
    terms = index.product_index.terms("sunglasses")
    assert terms == {"lunette": TRANSLATED_WEIGHT / 2, "soleil": TRANSLATED_WEIGHT / 2}


# --- variants: colours and sizes in the options ----------------------------------------------


def test_a_colour_finds_the_product_whose_variant_has_it() -> None:
    index = index_catalog(
        [
            product("summer-dress", "Summer dress", "Light cotton.", Colour="Yellow,Red"),
            product("evening-dress", "Evening dress", "Satin.", Colour="Blue,Black"),
        ]
    )
    assert ids(index, "la robe en M rouge")[0] == "summer-dress"
    assert ids(index, "une robe noire")[0] == "evening-dress"


def test_a_volume_finds_the_products_sold_in_it(glow: CatalogIndex) -> None:
    found = glow.search_products("le flacon de 100 ml", 3)
    assert all(any(v.title == "100 ml" for v in p.variants) for p, _ in found)


# --- the stemmer: English plurals in -es -----------------------------------------------------


@pytest.mark.parametrize(
    ("plural", "singular"),
    [("dresses", "dress"), ("glasses", "glass"), ("housses", "housse"), ("robes", "robe"),
     ("chapeaux", "chapeau"), ("sunglasses", "sunglass")],
)  # fmt: skip
def test_plurals_are_the_singular(plural: str, singular: str) -> None:
    assert tokens(plural) == tokens(singular)


# --- bounds ----------------------------------------------------------------------------------


def glossary_lines() -> list[tuple[list[str], list[str]]]:
    """The glossary's lines as (French synonyms, English synonyms)."""
    text = GLOSSARY_PATH.read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip() and line[0] != "#"]
    return [(french.split("|"), english.split("|")) for french, english in rows]


def test_a_phrase_searches_a_few_of_its_translations() -> None:
    english = ["moisturiser", "moisturizer", "moisturising cream", "moisturizing cream",
               "face cream"]  # fmt: skip
    index = index_catalog([product(f"p{i}", title) for i, title in enumerate(english)])
    terms = index.product_index.terms("crème hydratante")
    # The first three translations: two words and a phrase of two, half a word each.
    assert terms == {"moisturiser": 0.5, "moisturizer": 0.5, "moisturising": 0.25, "cream": 0.25}
    assert sum(terms.values()) == MAX_TRANSLATIONS * TRANSLATED_WEIGHT


def test_the_expansion_of_a_message_is_bounded() -> None:
    """Every English word of the glossary is in the catalogue and the message is made of French
    words with several translations each: the message searches MAX_TRANSLATED_TERMS of them."""
    lines = glossary_lines()
    index = index_catalog([product(f"p{i}", " ".join(en)) for i, (_, en) in enumerate(lines)])
    ambiguous = [fr[0] for fr, en in lines if len(tokens(fr[0])) == 1 and len(en) >= 3]
    message = " ".join(ambiguous * 20)[:4_000]

    terms = index.product_index.terms(message)
    translated = [term for term, weight in terms.items() if weight < 1]
    assert MAX_TRANSLATED_TERMS - 3 < len(translated) <= MAX_TRANSLATED_TERMS
    assert "tapis" in ambiguous and "rug" not in terms  # past the bound: not searched
    assert len(terms) <= MAX_QUERY_WORDS + MAX_TRANSLATED_TERMS

    best = min(timed(lambda: index.search_products(message, 4)) for _ in range(3))
    assert best < 0.050


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- the data --------------------------------------------------------------------------------


def test_every_glossary_entry_is_searchable() -> None:
    lines = glossary_lines()  # exactly one tab a line, or the unpacking fails
    for french, english in lines:
        for phrase in [*french, *english]:
            assert tokens(phrase), f"{phrase!r} is only stopwords"
    assert len(lines) >= 300


def test_pairs_work_both_ways() -> None:
    pairs = "lunettes de soleil\tsunglasses\nbaume à lèvres\tlip balm\n"
    entries = Glossary.from_tsv(pairs, tokens)
    assert entries.translations(("lunette", "soleil")) == [("sunglass",)]
    assert entries.translations(("sunglass",)) == [("lunette", "soleil")]
    assert entries.translations(("lip", "balm")) == [("baume", "levre")]
    assert entries.translations(("baume", "levre")) == [("lip", "balm")]
    assert glossary().translations(("dress",))[0] == ("robe",)


def test_the_glossary_is_read_on_the_first_search_only() -> None:
    program = (
        "import shared.catalog.retrieval as r\n"
        "print(r.glossary.cache_info().currsize)\n"
        "r.index_catalog([]).search_products('robe')\n"
        "print(r.glossary.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "1"]
