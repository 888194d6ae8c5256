"""The customer's language, from one message: short and long, French and English, mixed."""

from __future__ import annotations

import time

import pytest

from shared.language import customer_language, language_of

FRENCH = [
    "merci",
    "Merci beaucoup !",
    "Bonjour",
    "bonsoir",
    "Salut !",
    "oui",
    "non merci",
    "ok merci",
    "d'accord",
    "Je paie comment ?",
    "vous l'avez en M ?",
    "Quelles pointures ?",
    "c'est trop cher",
    "C'est un peu cher pour moi",
    "Je veux parler à un conseiller",
    "Livrez-vous à Dakar ?",
    "Combien coûte la livraison à Thiès ?",
    "Je voudrais commander la robe wax en M",
    "j'aimerais le boubou brodé",
    "Je m'appelle Aminata Diop",
    "Livrez à Sacré-Coeur 3, villa 12, Dakar",
    "Est-ce que vous avez des sandales en 40 ?",
    "Quels sont vos horaires d'ouverture ?",
    "Bonjour, je cherche un cadeau pour ma mère, vous avez des idées ?",
    "Puis-je retourner un article si la taille ne va pas ?",
    "Comment entretenir un vêtement en wax ?",
    "Vous faites du sur-mesure ?",
]
ENGLISH = [
    "hi",
    "Hello",
    "hey there",
    "thanks",
    "Thank you!",
    "yes please",
    "How much is shipping to France?",
    "I want to talk to a person",
    "too expensive",
    "a bit pricey",
    "What sizes do you have?",
    "Can I get the raffia bag?",
    "I'd like the Robe wax Ndèye in M",
    "I want the boubou brodé",
    "Do you deliver in Dakar?",
    "My name is John Smith, phone +221 76 555 44 33, deliver to 12 rue Carnot, Dakar",
    "Bonjour, do you have dresses?",
    "How can I pay?",
    "What are your opening hours?",
    "Is it in stock?",
    "I'm looking for a gift for my mother, any ideas?",
    "Can I return an item if the size is wrong?",
    "How do I care for wax print clothes?",
    "don't you have anything cheaper?",
]
UNDECIDED = ["ok", "Aminata Diop", "+221 77 123 45 67", "Mermoz, rue 10", "42", "salam", "👍"]


@pytest.mark.parametrize("text", FRENCH)
def test_french_messages(text: str) -> None:
    assert language_of(text) == "fr"


@pytest.mark.parametrize("text", ENGLISH)
def test_english_messages(text: str) -> None:
    assert language_of(text) == "en"


@pytest.mark.parametrize("text", UNDECIDED)
def test_a_message_with_nothing_to_tell_by_is_undecided(text: str) -> None:
    assert language_of(text) is None


def test_the_table_is_large_enough() -> None:
    assert len(FRENCH) + len(ENGLISH) >= 40


def test_a_short_message_keeps_the_conversations_language() -> None:
    earlier = ["+221 77 123 45 67", "I'd like the raffia bag", "Bonjour"]  # latest first
    assert customer_language("Aminata Diop", earlier, "fr") == "en"
    assert customer_language("ok", ["Mermoz"], "en") == "en"  # nothing tells: the shop's
    assert customer_language("merci beaucoup", earlier, "en") == "fr"  # the message decides
    # ...when it leads clearly: one word, an address or a city does not move the conversation.
    english = ["Delivery address: Ngor", "I'd like the kaftan"]
    assert customer_language("merci", earlier, "en") == "en"
    assert customer_language("Route de l'Aéroport, Dakar", english, "fr") == "en"
    assert customer_language("1200 Market Street, San Francisco CA 94102", english, "fr") == "en"


def test_detection_is_fast_on_a_long_message() -> None:
    text = "Bonjour, je voudrais savoir si vous livrez à Thiès. " * 80
    started = time.perf_counter()
    for _ in range(20):
        assert language_of(text) == "fr"
    assert (time.perf_counter() - started) / 20 < 0.005
