"""What a customer message asks for, French and English (shared/intents.py)."""

from __future__ import annotations

import pytest

from shared.intents import intent_of, size_named, variant_asked, wants_to_buy


@pytest.mark.parametrize(
    "text",
    ["je veux la robe wax", "Je voudrais commander le boubou brodé", "j'aimerais deux foulards",
     "J’aimerais le sac en raphia", "I'd like the raffia bag", "I want 2 wax dresses",
     "Can I get the sandals in 40?", "I would like to order", "je prends les sandales",
     "je vais le prendre", "I'll take it"],
)  # fmt: skip
def test_purchase_intent(text: str) -> None:
    assert wants_to_buy(text)


@pytest.mark.parametrize(
    "text",
    ["I want to talk to a person", "je veux parler à un conseiller", "j'aimerais savoir le prix",
     "I'd like to know the delivery fees", "je vais réfléchir", "I need help",
     "Combien coûte la robe ?", "Do you have dresses?"],
)  # fmt: skip
def test_not_a_purchase(text: str) -> None:
    assert not wants_to_buy(text)


@pytest.mark.parametrize(
    ("text", "intent"),
    [("Bonjour", "greeting"), ("hi there!", "greeting"), ("Salut, ça va ?", "greeting"),
     ("Bonjour, vous avez des robes ?", None), ("merci !", "thanks"), ("ok merci", "thanks"),
     ("un conseiller svp", "human"), ("parler à quelqu'un", "human"), ("a human", "human"),
     ("talk to a person", "human"), ("I want a real person", "human"),
     ("personne ne répond ?", None), ("c'est cher", "hesitation"), ("trop cher", "hesitation"),
     ("too expensive", "hesitation"), ("a bit pricey", "hesitation"),
     ("Quelles pointures ?", "variant"), ("vous l'avez en M ?", "variant"),
     ("Comment choisir ma taille ?", None), ("livré en 24 h ?", None),
     ("What colours does it come in?", "variant"), ("is it in stock?", "variant"),
     ("Je paie comment ?", None)],
)  # fmt: skip
def test_intents(text: str, intent: str | None) -> None:
    assert intent_of(text) == intent


@pytest.mark.parametrize(
    ("text", "asked", "size"),
    [("Quelles tailles avez-vous ?", "size", None), ("vous l'avez en XL ?", "size", "xl"),
     ("in size 42?", "size", "42"), ("vous l'avez en rouge ?", "colour", None),
     ("encore disponible ?", "stock", None)],
)  # fmt: skip
def test_variant_questions(text: str, asked: str, size: str | None) -> None:
    assert (variant_asked(text), size_named(text)) == (asked, size)
