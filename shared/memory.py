"""A customer's long-term memory: a summary and typed items the assistant can search.

One document per customer in the shop's ``memory`` collection (id: the customer id), holding the
summary and the items, each a record with a sortable id, its text, kind, key, the conversation
it came from and when. One document, not one per item: a consolidation then costs one read and
one conditional write whatever it learnt (the per-conversation budget is five store operations),
and a turn reads a customer's whole memory in one get. Bounded well inside every store's item
limit: MAX_ITEMS items of at most ITEM_CHARS characters, each with an int8 vector of at most
MAX_EMBEDDED_DIMENSIONS numbers (under 3 KB), and a summary of at most SUMMARY_CHARS.

Writing keeps it clean: a near-duplicate of an item (same words, give or take a few) updates that
item instead of adding one, and a keyed preference (``size``, ``colour``, ``budget``,
``language``, ``name``) replaces the one it contradicts: a new size is the size. Past MAX_ITEMS
the oldest items are folded, whole, into the summary, whose oldest lines go first past its own
bound: detail ages out a whole line at a time, never cut mid-fact.

Everything kept came from customers: items and summary lines that read like instructions or hold
secrets are refused (``check_fact``) and the prompt quotes them as data.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from shared.catalog.embeddings import Quantised, VectorIndex, quantise, query_vector
from shared.catalog.retrieval import BM25, fold, tokens
from shared.exceptions import AlreadyExistsError, InvalidInputError, LLMError
from shared.ids import new_sortable_id
from shared.intents import COLOUR_WORDS
from shared.log import log_warning
from shared.models import Customer, Model, mutate
from shared.store import Store

if TYPE_CHECKING:
    from shared.llm import LLM

COLLECTION = "memory"
Kind = Literal["fact", "preference", "interest", "open_question", "order", "topic", "difficulty"]
MAX_ITEMS = 60
ITEM_CHARS = 300  # as the remember tool allows
SUMMARY_CHARS = 1200
MAX_EMBEDDED_DIMENSIONS = 2048  # a longer vector is not kept: the item is searched by its words
NEAR_DUPLICATE = 0.8  # shared words over the longer item's words: the same fact reworded
RECALL_K = 5
RECALL_TOKENS = 300  # what the recalled items may add to a prompt
CHARS_PER_TOKEN = 4  # a rough count, enough for a bound


class MemoryItem(Model):
    id: str  # sortable by time
    text: str = Field(max_length=ITEM_CHARS)
    kind: Kind = "fact"
    key: str | None = None  # a preference's slot ("size"): a new value replaces the old
    source: str | None = None  # the conversation it came from
    at: float
    # Its vector, as the catalogue's (shared.catalog.embeddings): int8 in base64, one scale.
    embedding: str | None = None
    scale: float | None = None
    embed_model: str | None = None


class CustomerMemory(Model):
    id: str  # the customer's id
    summary: str = ""
    items: list[MemoryItem] = Field(default_factory=list)
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Note:
    """Something learnt, before it is an item: ``key`` for a preference that has one value."""

    text: str
    kind: Kind = "fact"
    key: str | None = None


# --- reading ---------------------------------------------------------------------------------


def load(store: Store, shop: str, customer: Customer) -> tuple[CustomerMemory, int | None]:
    """The customer's memory and its version (None: not stored yet). A customer from before this
    collection has its ``summary`` and ``memory`` facts read as the memory's start."""
    doc = store.get(shop, COLLECTION, customer.id)
    if doc is not None:
        return CustomerMemory.from_doc(doc), doc.version
    legacy = [
        MemoryItem(id=f"legacy{i:02d}", text=fact[:ITEM_CHARS], at=customer.updated_at)
        for i, fact in enumerate(customer.memory)
    ]
    started = CustomerMemory(
        id=customer.id,
        summary=customer.summary,
        items=legacy,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )
    return started, None


# --- what memory keeps ------------------------------------------------------------------------

# What a remembered fact must not be: it is read back to the model in later conversations, so an
# instruction would steer it and a secret would be repeated. Matched on folded (lower-case,
# unaccented) text, French and English.
_INSTRUCTION_RE = re.compile(
    r"\b(?:ignore[rsz]?|oublie[rsz]?|disregard|forget)\b.{0,40}"
    r"\b(?:previous|above|prior|earlier|precedent|precedentes?|instructions?|rules?|regles?|"
    r"consignes?|tout)\b"
    r"|\binstructions?\b|\bconsignes?\b|\bdirectives?\b|\bprompts?\b"
    r"|\bsystem (?:message|role)\b|\bmessage systeme\b|^\W*(?:system|assistant|developer)\s*:"
    r"|\b(?:tu dois|vous devez|il faut que tu|you must|you have to|you should|you are now"
    r"|tu es maintenant|from now on|desormais|a partir de maintenant|always say|dis toujours"
    r"|reponds? toujours|always answer|never mention|ne dis jamais|act as|fais comme si"
    r"|pretend)\b"
    r"|\b(?:prix|price|tarif|cout|coute|costs?|vend[sue]?|sell|remise|discount|reduction|promo"
    r"|rabais|gratuit|free)\b.{0,40}\d.{0,10}(?:fcfa|cfa|xof|francs?|eur|euros?|usd|\$|€|%)"
    r"|</?[a-z_|]+>|<\||\[/?inst\]|```|^#+ ",
)
_SECRET_RE = re.compile(
    r"\b(?:mot de passe|password|passcode|passwd|mdp|pin|cvv|cvc|cvv2|otp|digicode"
    r"|code secret|secret code|identifiant|login)\b"
    r"|(?<!postal )(?<!zip )\bcodes?\b(?! postal)\D{0,25}\d{3,}"
    r"|\b(?:numero de carte|card number|carte bancaire|credit card|carte de credit)\b",
)
_HEALTH_WORDS = frozenset(
    """
    sante health maladie malade disease illness ill sick diabete diabetique diabetes diabetic
    enceinte grossesse pregnant pregnancy vih hiv sida aids cancer asthme asthma hypertension
    tension cholesterol medicament medicaments medication medicine traitement treatment
    allergie allergique allergy allergic handicap handicape disability disabled depression
    depressif depressed epilepsie epilepsy chirurgie surgery hopital hospital ordonnance
    prescription therapie therapy
    """.split()
)
_CARD_RE = re.compile(r"(?:\d[ -]?){13,19}")


def check_fact(fact: str) -> None:
    """Raise InvalidInputError, saying what to do instead, for a fact that reads like an
    instruction to the assistant or holds a secret (a code, a password, a card number) or a
    health detail."""
    folded = fold(fact)
    if _INSTRUCTION_RE.search(folded):
        raise InvalidInputError(
            "this reads like an instruction or a price, not a fact about the customer: memory "
            "only keeps facts such as a size or a delivery preference; prices come from the "
            "catalogue"
        )
    if _SECRET_RE.search(folded) or any(_luhn(m.group()) for m in _CARD_RE.finditer(folded)):
        raise InvalidInputError(
            "this holds a secret (a code, a password or a card number): never keep it, and tell "
            "the customer not to share it in the chat"
        )
    if _HEALTH_WORDS & set(re.findall(r"[a-z]+", folded)):
        raise InvalidInputError("health details are not kept: remember only shopping preferences")


def _luhn(candidate: str) -> bool:
    digits = [int(d) for d in candidate if d.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# --- writing ---------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(tokens(text))


def near_duplicate(a: str, b: str) -> bool:
    """Whether two items say the same: equal once folded, or sharing NEAR_DUPLICATE of the
    longer one's words."""
    if " ".join(fold(a).split()) == " ".join(fold(b).split()):
        return True
    first, second = _words(a), _words(b)
    longest = max(len(first), len(second))
    return bool(longest) and len(first & second) / longest >= NEAR_DUPLICATE


def with_notes(
    memory: CustomerMemory, notes: Iterable[Note], source: str | None, at: float
) -> CustomerMemory:
    """``memory`` with ``notes`` kept: a keyed note replaces its key's item, a near-duplicate
    rewrites the item it repeats, anything else is added; past MAX_ITEMS the oldest are folded
    into the summary. Unchanged (equal) when every note is already there as written."""
    items = list(memory.items)
    for note in notes:
        text = " ".join(note.text.split())[:ITEM_CHARS]
        if not text:
            continue
        same = next(
            (
                i
                for i, item in enumerate(items)
                if (note.key is not None and (item.kind, item.key) == (note.kind, note.key))
                or (note.key is None and item.key is None and near_duplicate(item.text, text))
            ),
            None,
        )
        if same is not None:
            if items[same].text == text:
                continue  # known as written: nothing to change
            del items[same]  # contradicted or reworded: the newest wording wins
        items.append(
            MemoryItem(
                id=new_sortable_id(), text=text, kind=note.kind, key=note.key, source=source, at=at
            )
        )
    summary = memory.summary
    if len(items) > MAX_ITEMS:
        items.sort(key=lambda item: (item.at, item.id))
        folded, items = items[: len(items) - MAX_ITEMS], items[len(items) - MAX_ITEMS :]
        summary = with_summary_lines(summary, [f"{item.kind}: {item.text}" for item in folded])
    return memory.model_copy(update={"items": items, "summary": summary})


def with_summary_lines(summary: str, lines: Sequence[str]) -> str:
    """``summary`` with ``lines`` appended (each once), its oldest lines dropped whole past
    SUMMARY_CHARS."""
    kept = [line for line in summary.splitlines() if line.strip()]
    for line in lines:
        line = " ".join(line.split())
        if line and line not in kept:
            kept.append(line[:SUMMARY_CHARS])
    while len("\n".join(kept)) > SUMMARY_CHARS:
        kept.pop(0)
    return "\n".join(kept)


def safe_notes(notes: Iterable[Note]) -> list[Note]:
    """The notes memory may keep: none that reads like an instruction or holds a secret."""
    kept = []
    for note in notes:
        try:
            check_fact(note.text)
        except InvalidInputError:
            continue
        kept.append(note)
    return kept


def embedded(memory: CustomerMemory, llm: LLM | None) -> CustomerMemory:
    """``memory`` with a vector on each item lacking one of ``llm``'s embeddings model (none
    when it has no embeddings, or when embedding fails: the items are then searched by words)."""
    if llm is None or not llm.supports_embeddings:
        return memory
    todo = [i for i, item in enumerate(memory.items) if item.embed_model != llm.embed_model]
    if not todo:
        return memory
    try:
        vectors = llm.embed([memory.items[i].text for i in todo])
    except (LLMError, ValueError) as error:
        log_warning("memory_embedding_failed", error=type(error).__name__)
        return memory
    items = list(memory.items)
    for i, vector in zip(todo, vectors, strict=True):
        if len(vector) > MAX_EMBEDDED_DIMENSIONS:
            continue
        quantised = quantise(vector)
        items[i] = items[i].model_copy(
            update={
                "embedding": base64.b64encode(quantised.values).decode(),
                "scale": quantised.scale,
                "embed_model": llm.embed_model,
            }
        )
    return memory.model_copy(update={"items": items})


def save(
    store: Store,
    shop: str,
    customer: Customer,
    notes: Sequence[Note],
    *,
    source: str | None,
    at: float,
    summary_lines: Sequence[str] = (),
    summary: str | None = None,
    llm: LLM | None = None,
) -> CustomerMemory:
    """Keep ``notes`` (and the summary: ``summary`` replaces it, ``summary_lines`` are added)
    in the customer's memory with a conditional write, re-applied when another writer got in
    first; no write when nothing changes."""

    def change(memory: CustomerMemory) -> CustomerMemory:
        changed = with_notes(memory, safe_notes(notes), source, at)
        kept = [n.text for n in safe_notes(Note(line) for line in summary_lines)]
        if summary is not None:
            # A rewritten summary: only its lines memory may keep, bounded as any.
            lines = [n.text for n in safe_notes(Note(line) for line in summary.splitlines())]
            changed = changed.model_copy(update={"summary": with_summary_lines("", lines)})
        changed = changed.model_copy(
            update={"summary": with_summary_lines(changed.summary, kept)}
        )
        return embedded(changed, llm)

    while True:
        current, version = load(store, shop, customer)
        if version is not None:
            return mutate(
                store, shop, COLLECTION, customer.id, CustomerMemory, change,
                start=(current, version),
            )[0]
        created = change(current)
        if created == current and not current.items and not current.summary:
            return current  # nothing learnt: no document for it
        try:
            store.create(shop, COLLECTION, customer.id, created.to_doc())
        except AlreadyExistsError:
            continue  # a concurrent first write: apply onto it
        return created


# --- what a fact says ------------------------------------------------------------------------

_SIZE_RE = re.compile(
    r"\b(?:taille|size|pointure|shoe size|je fais du|je porte du|i wear(?: a| size)?)\s*:?\s*"
    r"(xxs|xs|s|m|l|xl|xxl|xxxl|\d{2}(?:[.,]5)?)\b"
)
_BUDGET_RE = re.compile(
    r"\b(?:budget|moins de|max(?:imum)?|pas plus de|under|less than|up to)\s*:?\s*(?:de\s*)?"
    r"(\d[\d  .]*\d|\d)\s*(k\b|mille\b|fcfa|cfa|xof|francs?|eur|euros?|usd|\$|€)?"
)
_LANGUAGE_RE = re.compile(
    r"\b(?:en|in) (francais|french|anglais|english|wolof)\b"
    r"|\b(?:parle|speak|prefere|prefer)\w* (?:le |en )?(francais|french|anglais|english|wolof)\b"
)
_NAME_RE = re.compile(
    r"\b(?:je m'appelle|je m appelle|mon nom est|moi c'est|my name is|call me)\s+"
    r"([A-ZÀ-Ý][\w'-]+(?:\s+[A-ZÀ-Ý][\w'-]+)?)"
)
_LANGUAGES = {"francais": "fr", "french": "fr", "anglais": "en", "english": "en", "wolof": "wo"}


def notes_in(text: str) -> list[Note]:
    """The keyed preferences and name a customer's message states: "taille M", "je fais du
    42", "en rouge", "budget 20 000 FCFA", "en anglais svp", "je m'appelle Awa Diop"."""
    folded = fold(text).replace("\u2019", "'")
    found: list[Note] = []
    if (size := _SIZE_RE.search(folded)) is not None:
        found.append(Note(f"size {size.group(1).upper()}", "preference", "size"))
    colours = [w for w in re.findall(r"[a-z]+", folded) if w in COLOUR_WORDS]
    if colours and re.search(r"\b(?:en|in|couleur|colou?r|aime|like|prefere|prefer)\b", folded):
        found.append(Note(f"colour {colours[0]}", "preference", "colour"))
    if (budget := _BUDGET_RE.search(folded)) is not None:
        amount = re.sub(r"\D", "", budget.group(1))
        unit = (budget.group(2) or "").strip()
        found.append(Note(f"budget up to {amount} {unit}".strip(), "preference", "budget"))
    if (language := _LANGUAGE_RE.search(folded)) is not None:
        code = _LANGUAGES[language.group(1) or language.group(2)]
        found.append(Note(f"language {code}", "preference", "language"))
    if (name := _NAME_RE.search(text.replace("\u2019", "'"))) is not None:
        found.append(Note(f"name {name.group(1)}", "fact", "name"))
    return found


def note_of_fact(fact: str) -> Note:
    """A fact the assistant was asked to remember, as a note: keyed when it states one
    preference ("pointure 42" replaces the size), else a plain fact."""
    stated = notes_in(fact)
    if len(stated) == 1 and stated[0].kind == "preference":
        return Note(fact, "preference", stated[0].key)
    return Note(fact)


# --- searching -------------------------------------------------------------------------------


def recall(
    memory: CustomerMemory,
    query: str,
    k: int = RECALL_K,
    *,
    query_vector: Sequence[float] | None = None,
    embed_model: str = "",
    max_tokens: int = RECALL_TOKENS,
) -> list[MemoryItem]:
    """The ``k`` items most relevant to ``query``, within ``max_tokens``: by vector when
    ``query_vector`` (of ``embed_model``) is given and items have vectors of that model, by
    words (BM25) otherwise."""
    by_id = {item.id: item for item in memory.items}
    ranked: list[tuple[str, float]] = []
    vectored = [i for i in memory.items if i.embedding and i.embed_model == embed_model]
    if query_vector and vectored:
        sizes = {len(base64.b64decode(i.embedding or "")) for i in vectored}
        if sizes == {len(query_vector)}:
            index = VectorIndex(
                [i.id for i in vectored],
                [Quantised(base64.b64decode(i.embedding or ""), i.scale or 0.0) for i in vectored],
            )
            ranked = index.search(query_vector, k)
    if not ranked:
        ranked = BM25([(item.id, item.text) for item in memory.items]).search(query, k)
    found: list[MemoryItem] = []
    budget = max_tokens
    for item_id, _ in ranked:
        budget -= tokens_of(by_id[item_id].text)
        if budget < 0:
            break
        found.append(by_id[item_id])
    return found


def tokens_of(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def recall_for_turn(
    memory: CustomerMemory,
    query: str,
    llm: LLM,
    shop: str,
    turn_vector: Sequence[float] | None = None,
    turn_vector_model: str = "",
) -> list[MemoryItem]:
    """What a turn shows of the memory: the items recalled for its message (by vector when the
    items have vectors of the turn's embeddings model: the catalogue's query vector is reused
    when it is of that model, else the message is embedded once, under the catalogue's time
    limit), then the newest preferences, to RECALL_K and RECALL_TOKENS."""
    model = llm.embed_model if llm.supports_embeddings else ""
    vector: Sequence[float] | None = None
    if model and any(item.embed_model == model for item in memory.items):
        vector = turn_vector if turn_vector and turn_vector_model == model else None
        if vector is None:
            vector = query_vector(llm, model, llm.embed_dimensions, query, shop)
    found = recall(memory, query, query_vector=vector, embed_model=model)
    budget = RECALL_TOKENS - sum(tokens_of(item.text) for item in found)
    for item in sorted(memory.items, key=lambda i: (i.key is None, -i.at)):
        if len(found) >= RECALL_K:
            break
        if item not in found and (budget := budget - tokens_of(item.text)) >= 0:
            found.append(item)
    return found


def remembered_name(memory: CustomerMemory) -> str:
    """The name the customer gave, as kept (``name <their name>``), or ""."""
    item = next((i for i in reversed(memory.items) if i.key == "name"), None)
    return item.text.removeprefix("name ").strip() if item is not None else ""
