"""What a customer message asks for, in French or English: pure functions from text to intent,
over data tables, for the offline rules responder (``shared/rules.py``).

A message is folded first (lower case, no accents), so "Je hésite" and "je hesite" are one.
"""

from __future__ import annotations

import re
from typing import Literal

from shared.catalog.retrieval import fold

Intent = Literal["human", "greeting", "thanks", "hesitation", "variant"]
VariantAsked = Literal["size", "colour", "stock"]

# Words a greeting is made of; a message of these words only (and punctuation) is a greeting.
GREETING_WORDS = frozenset(
    """
    bonjour bonsoir salut coucou hello hi hey hiya yo salam salaam assalamu alaykum aleykum
    good morning afternoon evening day there madame monsieur mme mr mrs ms la team equipe
    tout le monde everyone all cc slt bjr bsr nanga def mangi fi rek merci thanks thank you
    comment ca va allez vous how are is it going doing ok okay and et
    """.split()
)
# ...of which at least one opens or closes the conversation ("ok merci" is not a greeting).
_GREETING_CORE = frozenset(
    """
    bonjour bonsoir salut coucou hello hi hey hiya yo salam salaam slt bjr bsr nanga morning
    evening afternoon
    """.split()
)
_THANKS_CORE = frozenset("merci thanks thank thx jerejef".split())
_THANKS_WORDS = _THANKS_CORE | frozenset(
    "ok okay d accord daccord parfait super top great perfect beaucoup bien very much you so a lot"
    .split()
)
_WORD_RE = re.compile(r"[a-z]+")

_HUMAN_RE = re.compile(
    r"\b(?:parler|discuter|echanger|talk|speak|chat)\b.{0,30}?"
    r"\b(?:quelqu'un|personne|humain|conseill(?:er|ere)|vendeu(?:r|se)|agent|someone|somebody"
    r"|person|human|people|agent|representative|staff)\b"
    r"|\b(?:un(?:e)? (?:vrai(?:e)? )?(?:conseill(?:er|ere)|humain|vendeu(?:r|se)|personne reelle"
    r"|vraie personne|agent)|etre humain|service client(?:ele)?"
    r"|an? (?:real |actual )?(?:human|person|agent|representative)|real person|real human"
    r"|customer (?:service|support|care)|live agent)\b"
)

_HESITATION_RE = re.compile(
    r"\b(?:c'est |c est |un peu |trop |assez |vraiment |bien )cher\b|\bchere?s? pour moi\b"
    r"|\bmoins cher|\bpas les moyens\b|\bhesite\b|\bj'hesite\b|\bpas (?:sur|convaincue?)\b"
    r"|\b(?:too |a bit |very |quite |rather |so )?(?:expensive|pricey)\b|\bcheaper\b"
    r"|\bcan'?t afford\b|\bnot sure\b|\bhesitat\w*"
)

# "I want ..." is a purchase unless what follows is something other than buying.
_PURCHASE_RE = re.compile(
    r"\bje vais (?:le |la |les )?(?:prendre|commander|acheter)\b"
    r"|\b(?:je (?:veux|voudrais|souhaite|souhaiterais|aimerais)|j'aimerais|j'voudrais"
    r"|i(?:'d| would)? (?:like|want|wanna)|i'?d love|can i (?:get|have|order|buy)"
    r"|could i (?:get|have|order|buy)|may i (?:get|have|order)|i need)\b(?!.{0,12}\b(?:"
    r"parler|savoir|demander|connaitre|comprendre|poser|discuter|voir|un conseil|des infos"
    r"|des informations|un renseignement|talk|speak|know|ask|understand|see|information|info"
    r"|help|advice|reflechir|think)\b)"
    r"|\bje (?:le |la |les )?(?:prends|commande|achete)\b"
    r"|\bi'?ll (?:take|buy|order)\b|\bplace an order\b|\bpasser (?:une )?commande\b"
)

_SIZE_WORDS = r"(?:tailles?|pointures?|sizes?)"
_SIZE_VALUE_RE = re.compile(
    r"\b(?:en|in) (?:taille |size )?(xxs|xs|s|m|l|xl|xxl|xxxl|\d{2})(?![\w'])"
    r"(?! ?(?:h|ans|jours|heures|hours|days|min)\b)"
)
_SIZE_RE = re.compile(
    rf"\b(?:quel(?:le)?s?|which|what|any|other|autres?|existe|avez|have|has|got|reste)\b"
    rf".{{0,30}}\b{_SIZE_WORDS}\b"
    rf"|\b{_SIZE_WORDS}\b.{{0,30}}\b(?:disponibles?|available|en stock|in stock|existe|avez"
    rf"|do you have|have you got)\b"
)
_SIZE_GUIDE_RE = re.compile(r"\b(?:choisir|choose|guide|mesures?|measure\w*|conseil|advice)\b")
COLOUR_WORDS = frozenset(
    """
    rouge noir noire blanc blanche bleu bleue vert verte jaune rose violet violette marron gris
    grise beige orange dore doree argente naturel indigo terracotta multicolore
    red black white blue green yellow pink purple brown grey gray gold silver natural
    """.split()
)
_COLOUR_RE = re.compile(
    r"\b(?:couleurs?|coloris|teintes?|colou?rs?)\b"
    rf"|\b(?:en|in) (?:{'|'.join(sorted(COLOUR_WORDS))})\b"
)
_STOCK_RE = re.compile(
    r"\b(?:en stock|in stock|disponibles?|available|availability|dispo|il en reste|reste-t-il"
    r"|en reste|epuise|sold out|out of stock|left)\b"
)


def folded_words(text: str) -> list[str]:
    return _WORD_RE.findall(fold(text))


def is_greeting(text: str) -> bool:
    """A message that only greets ("Bonjour !", "hi there", "Salut, ça va ?")."""
    words = folded_words(text)
    return bool(words) and set(words) <= GREETING_WORDS and bool(set(words) & _GREETING_CORE)


def is_thanks(text: str) -> bool:
    """A message that only thanks ("merci !", "ok thanks a lot")."""
    words = set(folded_words(text))
    return bool(words & _THANKS_CORE) and words <= _THANKS_WORDS


def wants_a_person(text: str) -> bool:
    return bool(_HUMAN_RE.search(_folded(text)))


def hesitates_on_price(text: str) -> bool:
    return bool(_HESITATION_RE.search(_folded(text)))


def wants_to_buy(text: str) -> bool:
    """A purchase intent ("je veux la robe", "I'd like to order", "can I get two"), not a
    request to talk or to know something ("I want to talk to a person")."""
    folded = _folded(text)
    return bool(_PURCHASE_RE.search(folded)) and not _HUMAN_RE.search(folded)


def variant_asked(text: str) -> VariantAsked | None:
    """What a question about a product's variants asks: its sizes ("Quelles pointures ?",
    "vous l'avez en M ?"), its colours, or its stock. Not how to choose a size (the FAQ's)."""
    folded = _folded(text)
    if (_SIZE_RE.search(folded) or _SIZE_VALUE_RE.search(folded)) and not _SIZE_GUIDE_RE.search(
        folded
    ):
        return "size"
    if _COLOUR_RE.search(folded):
        return "colour"
    if _STOCK_RE.search(folded):
        return "stock"
    return None


def size_named(text: str) -> str | None:
    """The size a question names ("vous l'avez en M ?": "m"), if any."""
    match = _SIZE_VALUE_RE.search(_folded(text))
    return match.group(1) if match else None


def intent_of(text: str) -> Intent | None:
    """The intent the responder answers before searching the FAQ and the catalogue, if any."""
    if wants_a_person(text):
        return "human"
    if is_greeting(text):
        return "greeting"
    if is_thanks(text):
        return "thanks"
    if hesitates_on_price(text):
        return "hesitation"
    if variant_asked(text) is not None:
        return "variant"
    return None


def _folded(text: str) -> str:
    return fold(text).replace("\u2019", "'")
