"""FAQ retrieval is precise: contact details are not words an entry is about, and of an entry
written in several languages the customer gets their own."""

from __future__ import annotations

import pytest

from shared.catalog.retrieval import index_catalog
from shared.models import FaqEntry

CONTACT_FR = FaqEntry(
    id="contact",
    question="Comment vous contacter ?",
    answer=(
        "Par WhatsApp au +221 77 000 00 00, par e-mail à bonjour@maison-teranga.example ou sur "
        "https://www.maison-teranga.example/livraison-retours et www.teranga-paiement.sn."
    ),
    lang="fr",
)
PAYMENT_FR = FaqEntry(
    id="paiement",
    question="Quels moyens de paiement acceptez-vous ?",
    answer="Wave, Orange Money ou espèces à la livraison.",
    lang="fr",
)
PAYMENT_EN = FaqEntry(
    id="payment",
    question="Which payment methods do you accept?",
    answer="Wave, Orange Money or cash on delivery.",
    lang="en",
)


@pytest.mark.parametrize("query", ["Bonjour", "maison teranga", "example", "77 000 00 00", "www"])
def test_words_only_in_an_email_url_or_phone_never_match(query: str) -> None:
    index = index_catalog([], [CONTACT_FR])
    assert index.search_faq(query) == []


def test_the_rest_of_the_entry_still_matches() -> None:
    index = index_catalog([], [CONTACT_FR, PAYMENT_FR])
    assert [e.id for e, _ in index.search_faq("contacter")] == ["contact"]
    # "livraison" and "paiement" are only in the URLs of the contact entry.
    assert [e.id for e, _ in index.search_faq("paiement livraison")] == ["paiement"]


@pytest.mark.parametrize(("lang", "expected"), [("fr", "paiement"), ("en", "payment")])
def test_an_entry_in_the_customers_language_comes_first(lang: str, expected: str) -> None:
    index = index_catalog([], [PAYMENT_FR, PAYMENT_EN])
    # "Wave" and "Orange Money" are in both entries, as much in one as in the other.
    [(first, _), (second, _)] = index.search_faq("Wave ou Orange Money", 2, lang)
    assert (first.id, second.id != first.id) == (expected, True)


def test_a_much_better_entry_in_another_language_still_wins() -> None:
    index = index_catalog([], [PAYMENT_FR, PAYMENT_EN])
    [(first, _)] = index.search_faq("Which payment methods do you accept?", 1, "fr")
    assert first.id == "payment"


def test_a_synonym_finds_the_entry_of_the_same_language() -> None:
    """ "paie" is listed with "paiement" in the glossary: the French entry matches it as well
    as the English one matches its translations."""
    index = index_catalog([], [PAYMENT_FR, PAYMENT_EN])
    [(first, _)] = index.search_faq("Je paie comment ?", 1, "fr")
    assert first.id == "paiement"
