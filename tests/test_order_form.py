"""Orders read from the customer's messages: every field kept whole, across messages in any
order, in French and English, corrected before the order is read back and confirmed; sizes and
colours matched against the catalogue. First the pure functions of shared/order_form.py, then the
same through POST /chat with the offline responder on the demo shop."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from shared.app import App
from shared.catalog.importer import seed_demo
from shared.crm import list_leads
from shared.intents import wants_to_buy
from shared.order_form import CHANNEL, OrderForm, choose_variant, read_order
from tests.fixtures.app import Client, post_json

ASK_ALL_FR = (
    "Pour finaliser votre commande, il me manque : votre nom, votre numéro de téléphone et "
    "votre adresse de livraison."
)
ASK_ALL_EN = (
    "To complete your order, I still need your name, your phone number and your delivery "
    "address."
)
READBACK = "Voici le récapitulatif de votre commande : …"


def form(*turns: str, known_phone: str | None = None) -> OrderForm:
    """The order read from alternating customer and assistant messages, customer first."""
    roles = itertools.cycle(("user", "assistant"))
    found = read_order(
        [(role, text) for role, text in zip(roles, turns, strict=False)],
        "SN",
        starts_order=wants_to_buy,
        known_phone=known_phone,
    )
    assert found is not None
    return found


# --- addresses, names and phones -------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "ask", "answer", "address"),
    [
        ("Je veux commander la robe", ASK_ALL_FR, "Mermoz, rue 10, Dakar", "Mermoz, rue 10, Dakar"),
        (
            "I'd like to buy the dress",
            ASK_ALL_EN,
            "1200 Market Street, Apt 4B, San Francisco CA 94102",
            "1200 Market Street, Apt 4B, San Francisco CA 94102",
        ),
        (
            "Je veux commander la robe",
            ASK_ALL_FR,
            "Aminata Diop, 77 123 45 67, adresse : Mermoz, rue 10, Dakar",
            "Mermoz, rue 10, Dakar",
        ),
        (
            "I'd like to buy the dress",
            ASK_ALL_EN,
            "My address is 1200 Market Street, Apt 4B, San Francisco CA 94102, thanks",
            "1200 Market Street, Apt 4B, San Francisco CA 94102",
        ),
        (
            "Je veux commander la robe",
            "Pour finaliser votre commande, il me manque : votre adresse de livraison.",
            "Dakar Plateau",
            "Dakar Plateau",
        ),
    ],
)
def test_an_address_is_kept_whole(intent: str, ask: str, answer: str, address: str) -> None:
    assert form(intent, ask, answer).address == address


@pytest.mark.parametrize(
    "answer",
    [
        "Aminata Diop, 77 123 45 67",
        "Aminata Diop 77 123 45 67",
        "Je m'appelle Aminata Diop, mon numéro est le 77 123 45 67",
        "Mon nom est Aminata Diop et mon numéro c'est le +221 77 123 45 67",
    ],
)
def test_a_message_with_the_name_and_phone_is_not_an_address(answer: str) -> None:
    read = form("Je veux commander la robe", ASK_ALL_FR, answer)
    assert (read.name, read.phone, read.address) == ("Aminata Diop", "+221771234567", None)
    assert read.missing() == ["address"]


NAME_PHONE_ADDRESS = {
    "fr": (
        "Je voudrais commander la robe wax",
        ASK_ALL_FR,
        ["Je m'appelle Fatou Ndiaye", "mon numéro : 77 123 45 67", "Mermoz, rue 10, Dakar"],
    ),
    "en": (
        "I'd like to order the wax dress",
        ASK_ALL_EN,
        ["My name is John Smith", "phone +221 76 555 44 33", "deliver to 12 rue Carnot, Dakar"],
    ),
}
EXPECTED = {
    "fr": ("Fatou Ndiaye", "+221771234567", "Mermoz, rue 10, Dakar"),
    "en": ("John Smith", "+221765554433", "12 rue Carnot, Dakar"),
}


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_fields_across_three_messages_in_any_order(lang: str, order: tuple[int, ...]) -> None:
    intent, ask, answers = NAME_PHONE_ADDRESS[lang]
    turns = [intent]
    for index in order:
        turns += [ask, answers[index]]
    read = form(*turns)
    assert (read.name, read.phone, read.address) == EXPECTED[lang]
    assert read.missing() == []


def test_a_one_word_name_before_the_phone_is_the_name_not_part_of_the_address() -> None:
    read = form("Je veux commander la robe", ASK_ALL_FR, "Awa, 77 123 45 67, Ouakam")
    assert (read.name, read.phone, read.address) == ("Awa", "+221771234567", "Ouakam")


def test_corrections_before_confirmation_replace_what_they_correct() -> None:
    read = form(
        "Je prends 2 robes wax Ndèye en M",
        ASK_ALL_FR,
        "Fatou Ndiaye, 77 123 45 67, Mermoz rue 10 Dakar",
        READBACK,
        "en fait plutôt 3",
        READBACK,
        "change the address to 5 avenue Foch, Paris",
        READBACK,
        "mon numéro c'est plutôt le 76 555 44 33",
    )
    assert (read.name, read.phone, read.address, read.quantity) == (
        "Fatou Ndiaye",
        "+221765554433",
        "5 avenue Foch, Paris",
        3,
    )
    assert (read.sources["quantity"], read.sources["address"], read.sources["phone"]) == (2, 3, 4)
    assert not read.confirmed


@pytest.mark.parametrize("yes", ["oui", "Oui c'est bon", "c'est correct", "yes", "Correct", "OK"])
def test_a_yes_to_the_summary_confirms(yes: str) -> None:
    read = form("Je veux commander la robe", ASK_ALL_FR, "Awa Diop, 77 123 45 67, rue 10, Dakar")
    assert not read.confirmed
    assert form(*_turns(read), READBACK, yes).confirmed


@pytest.mark.parametrize("answer", ["oui mais en L", "yes, 3 please", "oui", "non"])
def test_only_a_plain_yes_right_after_the_summary_confirms(answer: str) -> None:
    before_summary = form("Je veux commander la robe", ASK_ALL_FR, "Awa Diop", ASK_ALL_FR, answer)
    assert not before_summary.confirmed
    if answer != "oui":
        after = form("Je veux commander la robe", ASK_ALL_FR, "Awa Diop", READBACK, answer)
        assert not after.confirmed


def _turns(read: OrderForm) -> list[str]:
    return [read.said[0], ASK_ALL_FR, *read.said[1:]]


def test_a_phone_the_channel_verified_is_never_missing() -> None:
    read = form("Je veux commander la robe", known_phone="+221771234567")
    assert read.missing() == ["name", "address"]
    assert (read.phone, read.sources["phone"]) == ("+221771234567", CHANNEL)
    assert not read.other_phone
    other = form(
        "Je veux commander la robe",
        ASK_ALL_FR,
        "Appelez plutôt le 76 555 44 33",
        known_phone="+221771234567",
    )
    assert (other.phone, other.other_phone) == ("+221765554433", True)


def test_a_confirmed_or_cancelled_order_is_closed() -> None:
    turns = [("user", "Je veux commander la robe"), ("assistant", "Votre commande est confirmée")]
    assert read_order(turns, "SN", starts_order=lambda t: "commander" in t) is None
    turns = [("user", "Je veux commander la robe"), ("user", "non laissez tomber")]
    assert read_order(turns, "SN", starts_order=lambda t: "commander" in t) is None


# --- variants --------------------------------------------------------------------------------


def sizes(*out: str) -> dict[str, Any]:
    """A dress in S, M and L, the sizes ``out`` sold out."""
    return {
        "id": "robe",
        "title": "Robe wax Ndèye",
        "variants": [
            {"id": f"robe:{s}", "title": s, "options": {"Taille": s}, "available": s not in out}
            for s in ("S", "M", "L")
        ],
    }


COLOURS = {
    "id": "foulard",
    "variants": [
        {"id": "red", "title": "Red", "available": True},
        {"id": "navy", "title": "Bleu nuit", "available": True},
    ],
}
BOUBOU = {
    "id": "boubou",
    "variants": [
        {"id": f"{s}-{c}", "title": f"{s} / {c}", "options": {"Taille": s, "Couleur": c}}
        for s in ("M", "L")
        for c in ("Blanc", "Bleu indigo")
    ],
}
SANDALS = {
    "id": "sandales",
    "variants": [
        {"id": f"s:{n}", "title": str(n), "options": {"Pointure": str(n)}} for n in (40, 41, 42)
    ],
}


@pytest.mark.parametrize(
    ("product", "said", "variant_id"),
    [
        (sizes(), ["Je prends 2 robes wax Ndèye en M"], "robe:M"),
        (sizes(), ["I'd like the dress, size m please"], "robe:M"),
        (sizes(), ["je veux la robe", "taille M"], "robe:M"),
        (sizes(), ["je veux la robe", "M"], "robe:M"),
        (sizes(), ["la robe en M", "finalement en L"], "robe:L"),
        (SANDALS, ["les sandales pointure 42"], "s:42"),
        (COLOURS, ["je le veux en rouge"], "red"),
        (COLOURS, ["the blue one"], "navy"),
        (BOUBOU, ["le grand boubou en L bleu"], "L-Bleu indigo"),
        (BOUBOU, ["taille L", "en blanc", "finalement en M"], "M-Blanc"),
    ],
)
def test_a_variant_is_matched_across_languages_and_case(
    product: dict[str, Any], said: list[str], variant_id: str
) -> None:
    choice = choose_variant(product, said)
    assert choice.problem == "" and choice.variant is not None
    assert choice.variant["id"] == variant_id


def test_a_missing_unknown_or_sold_out_variant_is_a_problem_listing_what_is_in_stock() -> None:
    assert choose_variant(sizes("L"), ["je veux la robe"]).problem == "choose"
    unknown = choose_variant(sizes("L"), ["je veux la robe en XXL"])
    assert (unknown.problem, unknown.wanted, unknown.in_stock) == ("unknown", "XXL", ("S", "M"))
    sold_out = choose_variant(sizes("L"), ["la robe en M", "finalement en L"])
    assert (sold_out.problem, sold_out.wanted, sold_out.in_stock) == ("sold_out", "L", ("S", "M"))
    colour = choose_variant(BOUBOU, ["le boubou en L"])
    assert (colour.problem, colour.option, colour.in_stock) == (
        "choose",
        "Couleur",
        ("Blanc", "Bleu indigo"),
    )


# --- the same through POST /chat on the demo shop ----------------------------------------------


@pytest.fixture
def demo(make_app: Callable[..., App]) -> App:
    app = make_app()
    seed_demo(app.store, "demo")
    return app


def say(client: Client, text: str, session_id: str | None = None) -> dict[str, Any]:
    result = post_json(
        client, "/chat", {"message": text, "session_id": session_id, "shop": "demo"}
    )
    assert result.status == 200, result.body
    body: dict[str, Any] = result.json()
    return body


def conversation(client: Client, *texts: str) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []
    for text in texts:
        replies.append(say(client, text, replies[-1]["session_id"] if replies else None))
    return replies


def test_a_size_is_stored_on_the_order_after_it_is_read_back(client: Client, demo: App) -> None:
    first, second, summary, done = conversation(
        client,
        "Je prends 2 robes wax Ndèye en M",
        "Je m'appelle Ndèye Sarr, 77 123 45 67",
        "Mermoz, rue 10, Dakar",
        "oui",
    )
    assert "la taille" not in first["reply"]  # the size was given
    assert "votre adresse de livraison" in second["reply"]
    assert "votre numéro" not in second["reply"]
    assert "2 × Robe wax Ndèye (M) : 55\u202f000 FCFA" in summary["reply"]
    assert "Adresse de livraison : Mermoz, rue 10, Dakar" in summary["reply"]
    assert summary["lead"]["status"] == "draft"
    assert "Votre commande est confirmée" in done["reply"]
    [lead] = list_leads(demo.store, "demo")
    assert (lead.id, lead.status) == (summary["lead"]["id"], "awaiting_payment")
    assert (lead.name, lead.phone, lead.address) == (
        "Ndèye Sarr",
        "+221771234567",
        "Mermoz, rue 10, Dakar",
    )
    assert lead.variant_id is not None
    assert (lead.variant_title, lead.quantity, lead.total) == ("M", 2, 55000)


def test_the_size_is_asked_with_the_rest_when_there_are_several(client: Client, demo: App) -> None:
    fr = say(client, "Je voudrais commander la robe wax Ndèye")
    assert "votre nom" in fr["reply"] and "la taille (S, M ou L)" in fr["reply"]
    en = say(client, "I would like to order the Robe wax Ndèye")
    assert "your name" in en["reply"] and "the size (S, M or L)" in en["reply"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Je prends la robe wax Ndèye en XXL",
            "Désolé, Robe wax Ndèye n'existe pas en XXL. En stock : S, M, L.",
        ),
        (
            "I'd like to buy the Robe wax Ndèye in size XXL",
            "Sorry, Robe wax Ndèye doesn't come in XXL. In stock: S, M, L.",
        ),
        (
            "Je voudrais commander le boubou brodé femme en L",
            "Désolé, Boubou brodé femme en L est épuisé. En stock : S, M.",
        ),
    ],
)
def test_a_size_not_in_stock_is_refused_in_the_customers_words(
    client: Client, demo: App, text: str, expected: str
) -> None:
    body = say(client, text)
    assert expected in body["reply"]
    assert "variant" not in body["reply"] and body["lead"] is None
    assert list_leads(demo.store, "demo") == []


def test_corrections_before_confirmation_update_the_same_order(client: Client, demo: App) -> None:
    replies = conversation(
        client,
        "I'd like to buy 2 Robe wax Ndèye in size M",
        "My name is Awa Diop, phone +221 77 123 45 67, my address is 1200 Market Street, "
        "Apt 4B, San Francisco CA 94102",
        "actually make it 3",
        "finalement en L",
        "change the address to 5 avenue Foch, Paris",
        "yes",
    )
    summary, done = replies[-2], replies[-1]
    assert "3 × Robe wax Ndèye (L)" in summary["reply"]
    assert "5 avenue Foch, Paris" in summary["reply"]
    assert "Your order is confirmed" in done["reply"]
    drafts = {r["lead"]["id"] for r in replies[1:] if r["lead"]}
    [lead] = list_leads(demo.store, "demo")
    assert drafts == {lead.id}  # every correction updated the one draft, then confirmed it
    assert (lead.status, lead.quantity, lead.variant_title, lead.address, lead.total) == (
        "awaiting_payment",
        3,
        "L",
        "5 avenue Foch, Paris",
        82500,
    )


@pytest.mark.parametrize(
    "texts",
    [
        ("Mermoz, rue 10, Dakar", "Fatou Ndiaye", "77 123 45 67"),
        ("77 123 45 67", "Mermoz, rue 10, Dakar", "Fatou Ndiaye"),
    ],
)
def test_fields_given_one_by_one_are_all_kept(
    client: Client, demo: App, texts: tuple[str, ...]
) -> None:
    replies = conversation(client, "Je voudrais commander la robe wax Ndèye en S", *texts)
    assert "récapitulatif" in replies[-1]["reply"]
    lead = replies[-1]["lead"]
    assert (lead["name"], lead["phone"], lead["address"], lead["variant"]) == (
        "Fatou Ndiaye",
        "+221771234567",
        "Mermoz, rue 10, Dakar",
        "S",
    )


@pytest.mark.parametrize(
    ("answer", "address"),
    [
        ("Médina, rue 27 x 24, Dakar", "Médina, rue 27 x 24, Dakar"),
        ("Sicap Baobab, rue 3 x rue B, Dakar", "Sicap Baobab, rue 3 x rue B, Dakar"),
    ],
)
def test_a_dakar_street_corner_is_an_address_not_a_quantity(answer: str, address: str) -> None:
    found = form("Je veux commander la robe", ASK_ALL_FR, answer)
    assert (found.address, found.quantity) == (address, 1)


def test_an_address_cue_keeps_the_first_letter_of_the_place() -> None:
    # "to A…": the cue's optional "a" once took the A of "Almadies".
    found = form("I'd like to buy the dress", ASK_ALL_EN, "Deliver to Almadies, villa 9, Dakar")
    assert found.address == "Almadies, villa 9, Dakar"


def test_its_before_a_capitalised_name_gives_the_name() -> None:
    found = form(
        "I'd like to buy the dress",
        ASK_ALL_EN,
        "Sure, it's Olivia Brown and my address is 5 Queen's Road, Brighton BN1 3XE",
    )
    assert (found.name, found.address) == ("Olivia Brown", "5 Queen's Road, Brighton BN1 3XE")
