"""Which language a customer writes in, French or English, from one message.

A small deterministic score, fast enough for every turn: weighted function words (the words
every sentence has, which a product name rarely brings), elisions and contractions ("j'", "l'",
"I'm", "don't"), French letters and spacing, and a few word endings. A message with too little
of either ("ok", "Aminata Diop", a phone number) tells nothing: the caller then keeps the
language the customer used last, else the shop's first language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.catalog.retrieval import fold

LANGUAGES = ("fr", "en")
# How far ahead one language must be for a message to count as written in it.
MIN_LEAD = 1.0
# ...and how far ahead to move a conversation away from the language the customer used last: an
# address or a name in the other language ("Route de l'Aéroport", "San Francisco CA") must not.
SWITCH_LEAD = 4.0
MAX_SCORED_WORDS = 200  # a long message is decided well before this; the rest is not read

# Function words, greetings and shop words, by how surely each names its language. Words both
# languages use ("a", "on", "me", "ok", "plus", "six", "bus") are in neither table.
_WORDS: dict[str, dict[str, float]] = {
    "fr": {
        **dict.fromkeys(
            """
            je vous nous est sont avez avons suis les des une avec pour dans sur chez mais
            bonjour bonsoir salut coucou merci oui combien quel quelle quels quelles comment
            pourquoi quand voudrais veux voulez aimerais souhaite peux pouvez puis non
            c'est j'ai svp stp aussi tres beaucoup cher chere livraison livrez taille pointure
            couleur acheter commander prendre prends bien bonne bon parler quelqu'un
            conseiller personne aujourd'hui demain avoir etre faire ca cela cette ces ou
            """.split(),
            2.0,
        ),
        **dict.fromkeys(
            """
            le la du au aux et en il elle mon ma mes ton ta tes son sa ses vos votre leur
            pas ne que qui se tu moi toi tout tous un de prix rien encore deja juste voila
            d'accord daccord
            """.split(),
            1.0,
        ),
    },
    "en": {
        **dict.fromkeys(
            """
            the you your i'm i'd i'll i've don't what's it's can't hello hi hey thanks thank
            please yes how what which where when why would could should want like much many
            shipping delivery deliver order buy get price size colour color expensive cheap
            pricey someone person human talk speak do does did is are have has was were
            morning evening afternoon there their this that these those with from about
            any some sure great okay
            """.split(),
            2.0,
        ),
        **dict.fromkeys(
            """
            i my me it and of to in for at be an or not no can will just also very good
            """.split(),
            1.0,
        ),
    },
}
# An apostrophe after one of these opens a French word (j'aime, l'avez, qu'il, s'il).
_FRENCH_ELISIONS = frozenset("c d j l m n s t qu jusqu lorsqu puisqu".split())
# ...and one of these after it ends an English one (don't, it's, I'm, I'd, we'll, you're).
_ENGLISH_ENDINGS = frozenset("t s m d ll re ve".split())
_ELISION_WEIGHT = 2.0
# Letters only French writes; a product name often has them ("Robe wax Ndèye" in an English
# sentence), so they count little and their total is capped.
_FRENCH_LETTERS = frozenset("éèêëàâùûôîïçœ")
_LETTER_WEIGHT = 0.5
_MAX_LETTERS_WEIGHT = 1.5
# French puts a space before "?" and "!".
_FRENCH_SPACING_RE = re.compile(r"\s[?!;]")
_SPACING_WEIGHT = 0.5
# Word endings of words in neither table, as a last hint.
_ENDINGS: dict[str, tuple[str, ...]] = {
    "fr": ("ez", "eux", "euse", "ais", "ait", "aient", "ons", "oir", "ee", "ees", "tion"),
    "en": ("ing", "ght", "ness", "ful", "ly", "ed"),
}
_ENDING_WEIGHT = 0.3
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")


def scores(text: str) -> dict[str, float]:
    """How much of each language ``text`` holds."""
    lowered = text.lower().replace("\u2019", "'")
    folded = fold(lowered)
    score = dict.fromkeys(LANGUAGES, 0.0)
    for word in _WORD_RE.findall(folded)[:MAX_SCORED_WORDS]:
        _score_word(word, score)
    letters = sum(1 for c in lowered if c in _FRENCH_LETTERS)
    score["fr"] += min(letters * _LETTER_WEIGHT, _MAX_LETTERS_WEIGHT)
    if _FRENCH_SPACING_RE.search(lowered):
        score["fr"] += _SPACING_WEIGHT
    return score


def _score_word(word: str, score: dict[str, float]) -> None:
    known = False
    singular = word[:-1] if len(word) > 3 and word.endswith("s") else word
    for lang in LANGUAGES:
        weight = _WORDS[lang].get(word, _WORDS[lang].get(singular))
        if weight is not None:
            score[lang] += weight
            known = True
    if known:
        return
    if "'" in word:
        head, _, tail = word.partition("'")
        if head in _FRENCH_ELISIONS:
            score["fr"] += _ELISION_WEIGHT
            _score_word(tail, score)  # "l'avez": the word after counts too
        elif tail in _ENGLISH_ENDINGS:
            score["en"] += _ELISION_WEIGHT
        return
    if len(word) > 4:
        for lang in LANGUAGES:
            if word.endswith(_ENDINGS[lang]):
                score[lang] += _ENDING_WEIGHT


def language_of(text: str) -> str | None:
    """The language ``text`` is written in, or None when it is too short or mixed to tell."""
    score = scores(text)
    french, english = score["fr"], score["en"]
    if abs(french - english) < MIN_LEAD:
        return None
    return "fr" if french > english else "en"


def customer_language(text: str, earlier: Iterable[str], fallback: str) -> str:
    """The language to answer ``text`` in: its own, unless it leads by less than SWITCH_LEAD
    away from the language of the latest of the customer's ``earlier`` messages (latest first)
    that tells one; for a message that does not tell, that language; else ``fallback``."""
    found = language_of(text)
    before = next((lang for lang in map(language_of, earlier) if lang is not None), None)
    if found is not None and before is not None and found != before:
        score = scores(text)
        if score[found] - score[before] < SWITCH_LEAD:
            return before
    return found or before or fallback
