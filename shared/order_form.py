"""Reading an order from a conversation: pure functions over its messages, no state of their own.

``read_order`` finds the open order (from the first purchase intent since the last confirmed or
cancelled order) and reads the customer's name, phone, delivery address and quantity from every
message they wrote since, in any order and in French or English; a later message corrects an
earlier one ("en fait plutôt 3", "change the address to …"). Each field keeps its provenance:
the index of the message it came from, or ``CHANNEL`` for a phone the channel verified (on
WhatsApp the customer is never asked for it). ``choose_variant`` matches what they said against a
product's variants (sizes and colours across languages and case, "rouge" for "Red", "en M",
"size M", "pointure 42") and says what is missing, unknown or sold out.

A message is read in two passes: the recognised parts first (phone numbers, a name after its cue,
an address after its cue running to the end of the message, quantities, sizes), then what is
left: a bare "Aminata Diop" is a name, and a bare "Mermoz, rue 10, Dakar" an address, kept whole,
commas included.

The assistant's own messages say where the form stands (what it asked, a summary read back):
``ASK_MARKERS``, ``READBACK_MARKERS`` and ``DONE_MARKERS`` are the folded openings of the texts
the offline responder writes (``shared.rules``), as a real model's history would show them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.catalog.retrieval import PHONE, fold, glossary, tokens, words
from shared.crm import normalise_phone
from shared.exceptions import InvalidPhoneError
from shared.price_guard import parse_number_words

CHANNEL = -1  # provenance of a phone the channel gave (WhatsApp), not typed
OrderField = Literal["name", "phone", "address", "variant"]

ASK_MARKERS = ("pour finaliser votre commande", "to complete your order")
READBACK_MARKERS = ("recapitulatif de votre commande", "summary of your order")
# "enregistree"/"recorded": the confirmations written before orders were read back.
DONE_MARKERS = (
    "votre commande est confirmee",
    "your order is confirmed",
    "votre commande est enregistree",
    "your order is recorded",
)
# How an ask message names each field, to read a bare answer as the field that was asked.
FIELD_LABELS: dict[OrderField, tuple[str, ...]] = {
    "name": ("votre nom", "your name"),
    "phone": ("votre numero", "your phone"),
    "address": ("votre adresse", "your delivery address"),
    "variant": ("la taille", "la couleur", "la pointure", "the size", "the colour", "which one"),
}

_CANCEL_RE = re.compile(r"\b(?:annule[rz]?|laisse[rz]? tomber|cancel|never ?mind|forget it)\b")
_NAME_RE = re.compile(
    r"(?:je m'appelle|je me nomme|mon nom(?: complet)?(?: est| c'est)?|moi c'est|nom ?:"
    r"|my (?:full )?name is|name ?:|call me|this is|it's|it is|je suis|i am|i'm)"
    r"\s*([^\W\d_][^\W\d_'\- ]*(?:['\- ]+[^\W\d_]+){0,5})",
    re.IGNORECASE,
)
# Cues after which a name is only taken if it is capitalised ("je suis intéressé" is no name).
_WEAK_NAME_CUES = ("je suis", "i am", "i'm", "this is", "it's", "it is", "moi c'est")
# Words that end a name: what the customer goes on to say after it.
_NAME_STOP = frozenset(
    """et and mon ma mes my tel telephone phone numero number num j'habite habite adresse
    address i live je vis je suis from de du a au aux at in on to pour for with avec merci thanks
    thank please svp stp livrez deliver et and""".split()
)
_COLON = r"\s*(?::\s*)?"
_ADDRESS_RE = re.compile(
    r"(?:adresse(?: de livraison)?|(?:delivery )?address|j'habite(?: a| au| aux)?|je vis a"
    r"|je suis a|je reside a|livr(?:ez|er|aison)(?:-moi| moi)?(?: plutot)? (?:a|au|aux|chez)"
    r"|deliver(?:y)?(?: it)? to|ship(?: it)? to|i live (?:at|in|on))"
    r"(?:\s+(?:est|c'est|is|to|en|pour|devient|a|au|sera)\b)?(?:\s+(?:plutot|instead|now)\b)?"
    rf"{_COLON}(.+)",
    re.IGNORECASE,
)
ADDRESS_WORDS = frozenset(
    """rue avenue av boulevard bd villa cite quartier immeuble appartement appt apt residence lot
    lotissement route allee place sicap hlm parcelles impasse chemin zone street st road rd
    apartment building suite unit floor etage lane drive dr way court ct highway""".split()
)
_PHONE_RE = re.compile(PHONE)
_COUNT = r"(\d{1,2}|un|une|deux|trois|quatre|cinq|one|two|three|four|five)"
_QUANTITY_RE = re.compile(
    rf"\b{_COUNT}\s*(?:x\b|pieces?\b|paires?\b|unites?\b|exemplaires?\b|articles?\b|pcs\b"
    r"|pairs?\b|units?\b|items?\b)"
    r"|\bx\s*(\d{1,2})\b|\bquantite\s*:?\s*(\d{1,2})\b|\bquantity\s*:?\s*(\d{1,2})\b"
)
# A correction of the quantity: "en fait plutôt 3", "make it 3", "3 instead". Not "plutôt en
# 42" (a size) nor "finalement en L".
_CORRECTION_COUNT = r"(\d{1,2}|deux|trois|quatre|cinq|two|three|four|five)"
_CORRECTED_QUANTITY_RE = re.compile(
    r"\b(?:plutot|finalement|en fait|make it|actually|change (?:it|the quantity) to"
    rf"|j'en (?:veux|prends)|i(?:'ll| will)? (?:want|take))\s*(?:,\s*)?{_CORRECTION_COUNT}\b"
    r"(?!\s*(?:ans|cm|g)\b)"
    rf"|\b{_CORRECTION_COUNT}\s+(?:plutot|instead|finalement)\b"
)
_BARE_QUANTITY_RE = re.compile(rf"\b{_CORRECTION_COUNT}\s+([a-z]{{3,}})")
_MEASURE_WORDS = frozenset(
    """cm mm kg ml litres heures jours ans hours days years min minutes fcfa cfa xof euros
    francs""".split()
)
# "taille M", "size: 42", "pointure 42", "en M", "in XL": a size or colour the customer names.
_SIZE_CUE_RE = re.compile(
    rf"\b(?:taille|size|pointure|couleur|coloris|colou?r){_COLON}(?:en\s+)?([a-z0-9]+)"
    r"|\b(?:en|in|du)\s+(x{0,3}[sml]|[2-5]xl|\d{2})\b"
)
_SIZE_RE = re.compile(r"x{0,3}[sml]|[2-5]xl|\d{1,3}")  # "M", "XXL", "3XL", "42": said after a cue
_YES = frozenset(
    """oui ouais yes yep yeah ok okay d'accord daccord correct exact exactement parfait confirme
    confirmer confirm confirmed bon right sure good fine perfect valide go""".split()
)
# Words that may go with a yes without adding anything: "oui c'est bon merci", "yes that's right".
_YES_FILLER = frozenset(
    """c'est c est ca cela tout all it's it is that's that looks sounds je i merci thanks thank
    you please svp stp vas-y vas y allez super tres very bien well absolument absolutely
    totally tout a fait""".split()
)
_FILLER = frozenset(
    """oui ok okay merci thanks voici voila here is are my mes details coordonnees infos
    informations bonjour hello hi salut alors so and et finalement plutot en fait actually
    instead make it non no pardon sorry svp stp please""".split()
)
# Words of a piece about something other than a name or an address.
_OTHER_TOPIC = frozenset(
    """numero number phone tel telephone portable mobile whatsapp nom name appelle called
    taille size pointure couleur colour color quantite quantity""".split()
)
_SENTENCE_RE = re.compile(
    r"(?:je|j'|i|i'd|i'm|i'll|vous|you|tu|est-ce|can|could|do|does|is|what|quel\w*|combien"
    r"|how|pourquoi|why|quand|when|c'est|it's|merci|ca|il|elle|on)\b"
)
_TRAILING_WORDS = frozenset("et and merci thanks thank you svp stp please".split())
_CONNECTORS = frozenset("de du des la le les sur en pres of the near and et a au".split())


@dataclass(frozen=True)
class OrderForm:
    """The open order: what the customer gave so far, each field with where it came from
    (``sources``: the index in ``said``, or CHANNEL)."""

    said: tuple[str, ...]  # the customer's messages since the order started
    product_query: str  # the messages that named the product: what to search for
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    quantity: int = 1
    sources: Mapping[str, int] = field(default_factory=dict)
    known_phone: str | None = None  # the phone the channel verified, if any
    confirmed: bool = False  # the last message says yes to a summary read back just before
    asked: frozenset[OrderField] = frozenset()  # what the last assistant message asked for

    def missing(self) -> list[OrderField]:
        return [f for f in ("name", "phone", "address") if getattr(self, f) is None]

    @property
    def other_phone(self) -> bool:
        """The customer typed a number other than the one the channel verified."""
        return self.known_phone is not None and self.phone not in (None, self.known_phone)


def read_order(
    turns: Sequence[tuple[str, str]],
    region: str,
    *,
    starts_order: Callable[[str], bool],
    known_phone: str | None = None,
) -> OrderForm | None:
    """The open order form in ``turns`` ((role, text) pairs, oldest first), if the customer
    expressed a purchase intent (``starts_order``) since the last confirmed or cancelled order."""
    start: int | None = None
    intents: list[int] = []
    for index, (role, text) in enumerate(turns):
        folded = fold(text)
        if role == "user" and starts_order(text):
            if start is None:
                start = index
            intents.append(index)
        elif start is not None and (
            (role == "assistant" and any(k in folded for k in DONE_MARKERS))
            or (role == "user" and _CANCEL_RE.search(folded))
        ):
            start, intents = None, []
    if start is None:
        return None
    said: list[str] = []
    asked_before: list[frozenset[OrderField]] = []  # what was asked just before each message
    readback_before: list[bool] = []
    asked: frozenset[OrderField] = frozenset()
    readback = False
    for role, text in turns[start:]:
        if role == "assistant":
            folded = fold(text)
            readback = any(k in folded for k in READBACK_MARKERS)
            asked = _asked(folded)
        elif role == "user":
            said.append(text)
            asked_before.append(asked)
            readback_before.append(readback)
    values: dict[str, Any] = {}
    sources: dict[str, int] = {}
    if known_phone:
        values["phone"], sources["phone"] = known_phone, CHANNEL
    for index, text in enumerate(said):
        found = _read_message(
            text, region, asked_before[index], set(values), starts_order if index == 0 else None
        )
        for key, value in found.items():
            values[key], sources[key] = value, index
    last = len(said) - 1
    confirmed = bool(said) and readback_before[last] and _is_yes(said[last])
    if confirmed and any(source == last for source in sources.values()):
        confirmed = False  # "oui, mais en L": a correction to read back again
    query = " ".join(turns[i][1] for i in reversed(intents))
    quantity = values.pop("quantity", None)
    if quantity is None:
        quantity = _intent_quantity(said[0])
    return OrderForm(
        said=tuple(said),
        product_query=query,
        name=values.get("name"),
        phone=values.get("phone"),
        address=values.get("address"),
        quantity=max(1, min(quantity, 100)),
        sources=sources,
        known_phone=known_phone or None,
        confirmed=confirmed,
        asked=asked_before[last] if said else frozenset(),
    )


def _asked(folded: str) -> frozenset[OrderField]:
    if not any(k in folded for k in ASK_MARKERS):
        return frozenset()
    return frozenset(f for f, labels in FIELD_LABELS.items() if any(lb in folded for lb in labels))


def _is_yes(text: str) -> bool:
    words = re.findall(r"[a-z0-9'-]+", fold(text))
    return bool(words) and bool(set(words) & _YES) and set(words) <= _YES | _YES_FILLER


# --- one message -----------------------------------------------------------------------------


def _read_message(
    text: str,
    region: str,
    asked: frozenset[OrderField],
    known: set[str],
    starts_order: Callable[[str], bool] | None,
) -> dict[str, Any]:
    """The fields one message gives (``starts_order`` for the message that started the order:
    what it says up to the purchase intent names the product, not a field). Positions in the
    folded text and the original text agree (folding keeps one character per character for the
    letters people type), so a field is cut from the original text, in the customer's spelling."""
    folded = fold(text)
    if len(folded) != len(text):  # a character that folds to several: read the folded text
        text = folded
    found: dict[str, Any] = {}
    taken: list[tuple[int, int]] = []  # spans already read as some field
    for match in _PHONE_RE.finditer(text):
        with suppress(InvalidPhoneError):
            found["phone"] = normalise_phone(match.group(), region)
            taken.append(match.span())
    if name := _cued_name(text, folded):
        found["name"], span = name
        taken.append(span)
    if (cued := _ADDRESS_RE.search(folded)) is not None:
        start = cued.start(1)
        # The address runs to the end of the line or to the next field read after it.
        end = min([s for s, _ in taken if s > start] + [_line_end(text, start)])
        address = _trim(text[start:end])
        if address:
            found["address"] = address
            taken.append((cued.start(), end))
    for regex in (_QUANTITY_RE, _CORRECTED_QUANTITY_RE):
        for match in regex.finditer(folded):
            if _street_corner(folded, match.span()):
                continue
            value = next(g for g in match.groups() if g)
            found["quantity"] = int(value) if value.isdigit() else parse_number_words(value)
            taken.append(match.span())
    for match in _SIZE_CUE_RE.finditer(folded):
        taken.append(match.span())
    _read_rest(text, taken, asked, known, starts_order, found)
    return found


def _cued_name(text: str, folded: str) -> tuple[str, tuple[int, int]] | None:
    for match in _NAME_RE.finditer(text):
        cue = fold(match.group()[: match.start(1) - match.start()]).strip()
        words: list[str] = []
        for word in match.group(1).split():
            if fold(word) in _NAME_STOP or len(words) == 5:
                break
            words.append(word)
        if not words:
            continue
        weak = any(cue.startswith(c) for c in _WEAK_NAME_CUES)
        if weak and not all(w[0].isupper() for w in words):
            continue
        if set(tokens(" ".join(words))) & ADDRESS_WORDS:
            continue
        name = " ".join(words).strip(" -'")
        name = name.title() if name.islower() else name
        end = match.start(1) + len(" ".join(words))
        return name, (match.start(), end)
    return None


def _read_rest(
    text: str,
    taken: list[tuple[int, int]],
    asked: frozenset[OrderField],
    known: set[str],
    starts_order: Callable[[str], bool] | None,
    found: dict[str, Any],
) -> None:
    """Read what no cue claimed: a bare name, then a bare address (kept whole)."""
    chars = list(text)
    for start, end in taken:
        chars[start:end] = "\n" * (end - start)
    pieces = [p.strip(" .!-") for p in re.split(r"[\n,;.!]+(?:\s|$)|[\n,;]", "".join(chars))]
    if starts_order is not None:  # the purchase intent and what precedes it name the product
        intent = [i for i, p in enumerate(pieces) if starts_order(p)]
        pieces = pieces[intent[-1] + 1 :] if intent else []
    pieces = [p for p in pieces if p and not _not_a_field(p)]
    if "name" not in found and ("name" not in known or "name" in asked):
        # "Awa, 77 123 45 67, Ouakam": one word right before the phone, first, is a name.
        first_phone = min((s for s, _ in taken if text[s : s + 1] in "+0123456789"), default=0)
        lead = text[:first_phone].strip(" ,;:-")
        if pieces and pieces[0] == lead and lead.isalpha() and lead[0].isupper():
            found["name"] = pieces.pop(0)
    if "name" not in found and ("name" not in known or "name" in asked):
        for index, piece in enumerate(pieces):
            if _looks_like_name(piece) and (len(pieces) > 1 or "name" in asked or not asked):
                found["name"] = piece
                del pieces[index]
                break
    if "address" in found or not pieces or any("?" in p for p in pieces):
        return
    rest = ", ".join(pieces)
    words = set(tokens(rest))
    has_number = bool(re.search(r"\d", rest)) and bool(re.search(r"[^\W\d_]{3}", rest))
    capitalised = all(  # "Mermoz, Dakar", "Dakar Plateau": place names
        w[0].isupper() or w.isdigit() or fold(w) in _CONNECTORS
        for w in rest.replace(",", " ").split()
    )
    # A lone word answering both the address and the variant question is the variant ("Bleu").
    named = "address" in asked and capitalised and not ("variant" in asked and " " not in rest)
    if words & ADDRESS_WORDS or has_number or named:
        found["address"] = rest


def _not_a_field(piece: str) -> bool:
    """Filler ("oui", "merci", "voici"), a size alone, a question or a sentence about something
    else ("je voudrais 2 robes", "mon numéro est le"): no name nor address."""
    folded = fold(piece)
    words = set(re.findall(r"[\w'-]+", folded))
    return (
        words <= _FILLER
        or bool(_SIZE_RE.fullmatch(folded))
        or bool(words & _OTHER_TOPIC)
        or bool(_SENTENCE_RE.match(folded))
    )


def _looks_like_name(piece: str) -> bool:
    words = piece.split()
    return (
        1 < len(words) <= 4
        and all(w[0].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words)
        and not set(tokens(piece)) & ADDRESS_WORDS
    )


def _street_corner(folded: str, span: tuple[int, int]) -> bool:
    """Whether "27 x" in "rue 27 x 24" (or "3 x" in "rue 3 x rue B") is a street corner, as
    Dakar addresses give them, rather than a quantity."""
    before = folded[: span[0]].split()[-1:]
    after = folded[span[1] :].split()[:1]
    return bool(before and before[0] in ADDRESS_WORDS) or bool(
        after and after[0].strip(",.") in ADDRESS_WORDS
    )


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _trim(text: str) -> str:
    """The address without what the customer said after it ("…, Dakar et merci !")."""
    while True:
        trimmed = text.rstrip(" \t.,;:!")
        last = trimmed.rsplit(None, 1)
        if len(last) == 2 and fold(last[1]) in _TRAILING_WORDS:
            text = last[0]
        elif trimmed == text:
            return text.strip()
        else:
            text = trimmed


def _intent_quantity(text: str) -> int:
    """"I'd like to buy 2 raffia bags": a small number before a word, in the intent message."""
    for value, word in _BARE_QUANTITY_RE.findall(fold(text)):
        if word not in ADDRESS_WORDS and word not in _MEASURE_WORDS:
            return int(value) if value.isdigit() else parse_number_words(value)
    return 1


# --- variants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantChoice:
    """What the customer's messages make of a product's variants. ``problem``: "" (``variant``
    is the choice, or None when there is nothing to choose), "choose" (several, none named),
    "unknown" (``wanted`` is no value of ``option``) or "sold_out"; ``in_stock`` lists the
    option's values available (with the other options as chosen)."""

    variant: Mapping[str, Any] | None = None
    problem: Literal["", "choose", "unknown", "sold_out"] = ""
    option: str = ""
    wanted: str = ""
    in_stock: tuple[str, ...] = ()


def choose_variant(product: Mapping[str, Any], said: Sequence[str]) -> VariantChoice:
    """The variant of ``product`` (its JSON, as the catalogue tools return it) the customer's
    messages name: for each option the latest message naming one of its values wins, so
    "finalement en L" changes the size and keeps the colour."""
    variants: list[Mapping[str, Any]] = list(product.get("variants") or [])
    if len(variants) <= 1:
        return VariantChoice(variants[0] if variants else None)
    names = list(dict.fromkeys(n for v in variants for n in _options(v)))
    chosen: dict[str, str] = {}
    chosen_at: dict[str, int] = {}
    unknown: tuple[int, str] | None = None
    for index in range(len(said) - 1, -1, -1):
        text = said[index]
        for name in names:
            values = list(dict.fromkeys(_options(v).get(name, "") for v in variants))
            if name in chosen or len(values) < 2:
                continue
            positions = [(mention(value, text, values), value) for value in values if value]
            best = max(positions)
            if best[0] >= 0:
                chosen[name], chosen_at[name] = best[1], index
        if unknown is None:
            every = [_options(v).get(n, "") for v in variants for n in names]
            for match in _SIZE_CUE_RE.finditer(fold(text)):
                cue = match.group(1) or match.group(2)
                if not any(mention(value, cue, [value]) >= 0 for value in every if value):
                    unknown = (index, cue.upper() if len(cue) <= 3 else cue)
    options = [n for n in names if len({_options(v).get(n, "") for v in variants}) > 1]
    if unknown is not None and unknown[0] >= max(chosen_at.values(), default=-1):
        option = next((n for n in options if n not in chosen), options[0])
        return _problem("unknown", option, unknown[1], variants, chosen)
    for name in options:
        if name not in chosen:
            return _problem("choose", name, "", variants, chosen)
    variant = next(
        (v for v in variants if all(_options(v).get(n) == chosen[n] for n in options)), None
    )
    latest = max(options, key=lambda n: chosen_at[n])
    if variant is None:
        return _problem("unknown", latest, chosen[latest], variants, chosen)
    if not variant.get("available", True):
        return _problem("sold_out", latest, chosen[latest], variants, chosen)
    return VariantChoice(variant)


def _problem(
    problem: Literal["choose", "unknown", "sold_out"],
    option: str,
    wanted: str,
    variants: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, str],
) -> VariantChoice:
    others = {n: v for n, v in chosen.items() if n != option}
    in_stock = [
        _options(v).get(option, "")
        for v in variants
        if v.get("available", True) and all(_options(v).get(n) == x for n, x in others.items())
    ]
    return VariantChoice(None, problem, option, wanted, tuple(dict.fromkeys(in_stock)))


def _options(variant: Mapping[str, Any]) -> dict[str, str]:
    """A variant's options; its title as the one option "" when the catalogue gave none."""
    options = variant.get("options") or {}
    return dict(options) if options else {"": str(variant.get("title") or variant.get("id"))}


def mention(value: str, text: str, values: Sequence[str] = ()) -> int:
    """Where ``text`` names the option value ``value`` (in the folded text), or -1.

    A short value ("M", "XL", "42") counts only after a cue ("taille M", "en M", "size 42") or
    as the whole message; a longer one ("Bleu nuit", "Red") anywhere, in French or English
    ("rouge" names "Red"), or by its first word alone when no other of ``values`` starts with
    it ("bleu" names "Bleu nuit" beside "Jaune soleil")."""
    folded = fold(text)
    key = " ".join(words(value))
    if not key:
        return -1
    if _SIZE_RE.fullmatch(key):
        if " ".join(words(folded)) == key:
            return 0
        cued = re.search(
            rf"\b(?:taille|size|pointure|en|in|du|t){_COLON}(?:en\s+)?{re.escape(key)}(?![\w'])",
            folded,
        )
        return cued.start() if cued else -1
    if (found := re.search(rf"\b{re.escape(key)}\b", folded)) is not None:
        return found.start()
    said = _words_both_languages(folded)
    wanted = tokens(value)
    if wanted and set(wanted) <= said:
        return _first(folded, wanted)
    first = wanted[:1]
    siblings = [tokens(v)[:1] for v in values if v != value]
    if first and first[0] in said and first not in siblings:
        return _first(folded, first)
    for translation in glossary().translations(tuple(wanted)):
        if set(translation) <= said:
            return _first(folded, list(translation))
    return -1


def _words_both_languages(folded: str) -> set[str]:
    words = tokens(folded)
    said = set(words)
    for _, synonyms, translations in glossary().phrases(words, lambda _: True):
        said.update(word for phrase in (*synonyms, *translations) for word in phrase)
    return said


def _first(folded: str, words: Sequence[str]) -> int:
    places = [m.start() for w in words if (m := re.search(rf"\b{re.escape(w)}", folded))]
    return min(places, default=0)
