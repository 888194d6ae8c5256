"""Lexical retrieval (BM25) over a shop's products and FAQ, accent- and case-insensitive,
tolerant of small typos, and across French and English through a glossary of shop words. When
the shop's items have embeddings (``shared.catalog.embeddings``) and the turn brings its
message's vector, the BM25 ranking and the vector ranking are fused (reciprocal rank fusion).

Indexes are built once per warm instance and per catalogue version: a turn only pays for the
search, and a re-import (which bumps ``Shop.catalog_version``) is picked up on the next turn.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import unicodedata
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from itertools import islice
from typing import TYPE_CHECKING, Any

from shared.catalog.embeddings import COLLECTION as EMBEDDINGS
from shared.catalog.embeddings import CatalogVectors, VectorIndex, load_vectors
from shared.catalog.glossary import Glossary, load_glossary
from shared.models import FaqEntry, Product, Shop
from shared.store import Store

if TYPE_CHECKING:
    from shared.catalog.snapshot import CatalogSnapshots

_TOKEN_RE = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """
    a au aux avec ce ces cet cette d de des du elle en et il je j la le les l leur ma me mes
    mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu un une vos
    votre vous y est sont avez ai as c s n t m combien quel quelle quels quelles prix coute
    coutent an and are at be can do does for from have how i in is it me much my of on or
    please the this to what which with you your cost costs price comment pourquoi quand
    where when why
    """.split()
)
# Contact details in a FAQ answer are not what it is about: "Bonjour" must not find the contact
# entry through "bonjour@shop.example", nor "77" through a phone number.
PHONE = r"\+?\d[\d .\-/]{6,}\d"  # a phone number as people write one (order_form reads them too)
_CONTACT_DETAIL_RE = re.compile(
    r"\S+@\S+|(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|example|sn|ci|fr|io|shop)\b\S*"
    rf"|{PHONE}"
)
# How many FAQ candidates a search ranks before preferring the customer's language.
FAQ_CANDIDATES = 8
OTHER_LANGUAGE_WEIGHT = 0.5  # an entry in another language ranks as if it matched half as well
# Typo tolerance: words shorter than this are too ambiguous to correct ("sac" is one edit from
# "sel"); from _LONG_WORD characters on, two edits are tolerated.
_MIN_CORRECTED = 4
_LONG_WORD = 8
CORRECTED_WEIGHT = 0.5  # a corrected word is a guess: it counts for less than one typed right
# Bounds on the work one message costs, whatever a customer types (up to MAX_MESSAGE_CHARS).
# The deletion variants of a word grow with the cube of its length, and no real catalogue word
# is longer than this: longer indexed words are never offered as corrections, and a query word
# is corrected only if it is at most ``edits`` longer than the longest indexed word.
MAX_CORRECTED_LENGTH = 30
# A customer names what they want in a few words: the first this many distinct searchable words
# of a message are looked up, the rest ignored.
MAX_QUERY_WORDS = 32
# Indexed words a typo is checked against (the closest in length first): a dense vocabulary of
# near-identical words cannot turn one word into hundreds of distance computations.
MAX_CANDIDATES = 16
# Query expansion across languages: a translation is the glossary's guess at what the customer
# means, so it counts for less than a word typed as the catalogue writes it; a phrase searches
# at most MAX_TRANSLATIONS of its translations found in the index, and a message at most
# MAX_TRANSLATED_TERMS translated words.
TRANSLATED_WEIGHT = 0.5
MAX_TRANSLATIONS = 3
MAX_TRANSLATED_TERMS = 16
# Reciprocal rank fusion: an item scores 1 / (RRF_K + rank) in each ranking it is in, over the
# first FUSED_CANDIDATES of each (60: the constant of Cormack et al., which damps the top ranks).
RRF_K = 60
FUSED_CANDIDATES = 20


def fold(text: str) -> str:
    """Lower-case without accents: 'Brodé' and 'brode' are the same word."""
    if text.isascii():  # most text: NFKD would change nothing
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    """A light plural stem, the same in French and English: "robes" and "robe", "dresses" and
    "dress", "housses" and "housse" are one word each."""
    if len(word) > 3 and word[-1] in "sx" and not word.endswith("ss"):
        word = word[:-1]
    return word[:-1] if word.endswith("sse") else word


def words(text: str) -> list[str]:
    """The letters-and-digits runs of ``text``, folded: every word, stopwords included."""
    return _TOKEN_RE.findall(fold(text))


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in words(text) if w not in STOPWORDS]


@cache
def glossary() -> Glossary:
    """The French-English glossary, read on the first search that needs it."""
    return load_glossary(tokens)


def _leading_words(words: list[str], distinct: int) -> list[str]:
    """``words`` up to the first ``distinct`` different ones, a word repeated in a row once."""
    kept: list[str] = []
    seen: set[str] = set()
    for word in words:
        if word not in seen:
            if len(seen) == distinct:
                break
            seen.add(word)
        elif word == kept[-1]:
            continue
        kept.append(word)
    return kept


def _max_edits(length: int) -> int:
    return 0 if length < _MIN_CORRECTED else 1 if length < _LONG_WORD else 2


def _deletes(word: str, edits: int) -> set[str]:
    """``word`` and every string made from it by removing up to ``edits`` characters."""
    found = frontier = {word}
    for _ in range(edits):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found = found | frontier
    return found


def edit_distance(a: str, b: str, bound: int) -> int:
    """Optimal string alignment distance (an adjacent swap counts as one edit), or ``bound + 1``
    as soon as it is known to exceed ``bound``."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    far = bound + 1  # every distance is capped here: past the bound, how far does not matter
    # Only cells within ``bound`` of the diagonal can be within the bound (each step off it is an
    # insertion or a deletion): the rest stay ``far``, so a check costs O(len * bound).
    before: list[int] = []
    previous = [min(j, far) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        current = [min(i, far)] + [far] * len(b)
        for j in range(max(1, i - bound), min(len(b), i + bound) + 1):
            cb = b[j - 1]
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current[j] = min(cost, far)
        # A swap reaches back two rows: stop only once two rows in a row exceed the bound.
        if min(current) > bound and min(previous) > bound:
            return far
        before, previous = previous, current
    return previous[-1]


class Speller:
    """Maps a word missing from an index to the nearest indexed words.

    Symmetric delete: every indexed word is stored under each string obtained by deleting up to
    one or two of its characters, so two words within that many edits share a key and a lookup
    is a few dictionary probes plus a distance check on the few candidates, at any catalogue size.
    """

    def __init__(self, words: Iterable[str]) -> None:
        # key -> the words under it, space-separated: one string per key keeps a large
        # vocabulary small in memory (most keys hold one word).
        self._by_key: dict[str, str] = {}
        self._longest = 0
        for word in words:
            # Numbers (sizes, prices) are never corrected.
            if len(word) <= MAX_CORRECTED_LENGTH and word.isalpha():
                self._longest = max(self._longest, len(word))
                # One more character on the query side may allow one more edit.
                for key in _deletes(word, _max_edits(len(word) + 1)):
                    held = self._by_key.get(key)
                    self._by_key[key] = word if held is None else f"{held} {word}"

    def nearest(self, word: str) -> list[str]:
        edits = _max_edits(len(word))
        # A longer word is more than ``edits`` away from every indexed word.
        if not edits or len(word) > self._longest + edits or not word.isalpha():
            return []
        candidates = {c for key in _deletes(word, edits) for c in self._by_key.get(key, "").split()}
        closest = sorted(candidates, key=lambda c: (abs(len(c) - len(word)), c))
        distances = {c: edit_distance(word, c, edits) for c in closest[:MAX_CANDIDATES]}
        best = min(distances.values(), default=edits + 1)
        if best > edits:
            return []
        return sorted(c for c, d in distances.items() if d == best)


class BM25:
    """Okapi BM25 over short documents; a query word missing from the index counts as its
    nearest indexed spellings."""

    def __init__(self, documents: Sequence[tuple[str, str]], k1: float = 1.2, b: float = 0.75):
        self.ids = [doc_id for doc_id, _ in documents]
        postings: dict[str, tuple[array[int], array[int]]] = {}  # term -> documents, counts
        lengths: list[int] = []
        for i, (_, text) in enumerate(documents):
            words = tokens(text)
            lengths.append(len(words))
            for term, tf in Counter(words).items():
                docs, counts = postings.setdefault(term, (array("l"), array("l")))
                docs.append(i)
                counts.append(tf)
        n = len(documents)
        average = (sum(lengths) / n) if n else 0.0
        # Each (term, document) weight is computed here once, so a search only adds them up;
        # typed arrays hold them in a fraction of the memory of Python lists.
        self._postings: dict[str, tuple[array[int], array[float]]] = {}
        for term, (docs, counts) in postings.items():
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            weights = (
                idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[i] / (average or 1)))
                for i, tf in zip(docs, counts, strict=True)
            )
            self._postings[term] = (docs, array("d", weights))
        self._speller = Speller(self._postings)

    def search(
        self, query: str, limit: int, keep: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The ``limit`` best documents for ``query`` among those ``keep`` accepts."""
        scores: dict[int, float] = {}
        for term, factor in self.terms(query).items():
            docs, weights = self._postings[term]
            for i, weight in zip(docs, weights, strict=True):
                scores[i] = scores.get(i, 0.0) + factor * weight
        # Best first, ties in document order; ``keep`` is asked only until ``limit`` are kept.
        ranked = [(-score, i) for i, score in scores.items()]
        heapq.heapify(ranked)
        best: list[tuple[str, float]] = []
        while ranked and len(best) < limit:
            negated, i = heapq.heappop(ranked)
            if keep is None or keep(self.ids[i]):
                best.append((self.ids[i], -negated))
        return best

    def terms(self, query: str) -> dict[str, float]:
        """The indexed terms a query stands for, typos corrected and words of the other language
        translated, with the weight of each."""
        words = _leading_words(tokens(query), MAX_QUERY_WORDS)
        found: dict[str, float] = {}

        def add(term: str, weight: float) -> None:
            found[term] = max(weight, found.get(term, 0.0))

        translated: set[str] = set()  # words of the other language, not typos
        room = MAX_TRANSLATED_TERMS

        def indexed(phrase: tuple[str, ...]) -> bool:
            return all(word in self._postings for word in phrase)

        for phrase, synonyms, translations in glossary().phrases(words, indexed):
            translated.update(phrase)
            # A synonym is the same word written otherwise: it counts as typed.
            weighted = [(synonym, 1.0) for synonym in synonyms] + [
                (translation, TRANSLATED_WEIGHT) for translation in translations
            ]
            for meaning, weight in islice(weighted, MAX_TRANSLATIONS):
                if len(meaning) > room:
                    break
                room -= len(meaning)
                # A phrase counts as much as one word, whatever its length.
                for term in meaning:
                    add(term, weight / len(meaning))
        for word in dict.fromkeys(words):
            if word in self._postings:
                found[word] = 1.0
            elif word not in translated:
                for term in self._speller.nearest(word):
                    add(term, CORRECTED_WEIGHT)
        return found


def product_text(product: Product) -> str:
    variants = " ".join(f"{v.title} {' '.join(v.options.values())}" for v in product.variants)
    # The title twice: a word in the title says more than one in the description.
    return " ".join(
        [
            product.title,
            product.title,
            product.category,
            " ".join(product.tags),
            variants,
            product.description[:500],
        ]
    )


def fuse(rankings: Iterable[list[tuple[str, float]]], limit: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: the ``limit`` best ids by the sum of 1 / (RRF_K + rank) over the
    rankings they appear in (ties in the order first seen)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (item_id, _) in enumerate(ranking, 1):
            fused[item_id] = fused.get(item_id, 0.0) + 1 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: -item[1])[:limit]


def _hybrid(
    lexical: BM25,
    vectors: VectorIndex | None,
    query: str,
    query_vector: Sequence[float] | None,
    limit: int,
    keep: Callable[[str], bool] | None,
) -> list[tuple[str, float]]:
    """BM25's best, fused with the vectors' when the index has them and the query has one."""
    if vectors is None or not query_vector:
        return lexical.search(query, limit, keep)
    rankings = [
        lexical.search(query, FUSED_CANDIDATES, keep),
        vectors.search(query_vector, FUSED_CANDIDATES, keep),
    ]
    return fuse(rankings, limit)


@dataclass(frozen=True)
class CatalogIndex:
    products: dict[str, Product]
    faq: dict[str, FaqEntry]
    product_index: BM25
    faq_index: BM25
    vectors: CatalogVectors | None = None  # the stored embeddings, when the shop has some

    @property
    def embed_model(self) -> str:
        """The model a query must be embedded with to search the vectors ("" if none)."""
        return self.vectors.model if self.vectors else ""

    @property
    def embed_dimensions(self) -> int | None:
        """The length a query's vector must be asked for, as the stored vectors were."""
        return self.vectors.dimensions if self.vectors else None

    def search_products(
        self,
        query: str,
        limit: int = 3,
        *,
        max_price: Decimal | None = None,
        category: str | None = None,
        query_vector: Sequence[float] | None = None,
    ) -> list[tuple[Product, float]]:
        """The best matches for ``query`` (and its ``query_vector``, of ``embed_model``),
        filtered on the lowest variant price and on a category (or tag). A query with no
        searchable word lists the filtered products, cheapest first."""
        wanted = frozenset(tokens(category or ""))
        if max_price is None and not wanted:
            keep = None
        else:

            def keep(product_id: str) -> bool:
                product = self.products[product_id]
                return (max_price is None or product.price <= max_price) and (
                    not wanted or any(wanted <= label for label in self._labels[product_id])
                )

        if tokens(query) or keep is None:
            vectors = self.vectors.products if self.vectors else None
            found = _hybrid(self.product_index, vectors, query, query_vector, limit, keep)
            return [(self.products[i], s) for i, s in found]
        listed = (p for p in self._cheapest_first if keep(p.id))
        return [(p, 0.0) for p in islice(listed, limit)]

    def search_faq(
        self,
        query: str,
        limit: int = 2,
        lang: str | None = None,
        *,
        query_vector: Sequence[float] | None = None,
    ) -> list[tuple[FaqEntry, float]]:
        """The best FAQ entries for ``query`` (and its ``query_vector``), with their scores; an
        entry in ``lang`` (the customer's) ranks before an equally good one in another language,
        so of an entry written in both languages the customer gets their own. Among close
        scores, the entry holding more of the words typed wins: "shipping to France" is the
        entry about France, not the one saying "delivery" twice (a synonym of "shipping")."""
        vectors = self.vectors.faq if self.vectors else None
        found = [
            (self.faq[i], score)
            for i, score in _hybrid(
                self.faq_index, vectors, query, query_vector, max(limit, FAQ_CANDIDATES), None
            )
        ]
        typed = set(tokens(query)[:MAX_QUERY_WORDS])

        def rank(hit: tuple[FaqEntry, float]) -> float:
            entry, score = hit
            held = len(typed & self._faq_words[entry.id]) / len(typed) if typed else 0.0
            weight = _language_weight(entry, lang) if lang is not None else 1.0
            return -score * weight * (1.0 + held)

        found.sort(key=rank)
        return found[:limit]

    @cached_property
    def _faq_words(self) -> dict[str, frozenset[str]]:
        """Each FAQ entry's words, as the index reads them (built on the first FAQ search)."""
        return {i: frozenset(tokens(faq_text(entry))) for i, entry in self.faq.items()}

    @cached_property
    def _cheapest_first(self) -> list[Product]:
        return sorted(self.products.values(), key=lambda p: (p.price, p.title))

    @cached_property
    def _labels(self) -> dict[str, list[frozenset[str]]]:
        """Each product's category and tags as word sets, for the category filter."""
        return {
            p.id: [frozenset(tokens(label)) for label in [p.category, *p.tags]]
            for p in self.products.values()
        }


def _language_weight(entry: FaqEntry, lang: str) -> float:
    return 1.0 if entry.lang == lang else OTHER_LANGUAGE_WEIGHT


@dataclass(frozen=True)
class CatalogData:
    """What a shop's index is built from: its products, FAQ entries and stored vectors (the data
    of its ``embeddings`` documents), as read from the store or from a snapshot."""

    products: list[Product]
    faq: list[FaqEntry]
    vectors: list[dict[str, Any]]


def read_catalog(store: Store, shop: str) -> CatalogData:
    """The shop's catalogue, read from the store: a scan of three collections."""

    def scan(collection: str) -> Iterator[dict[str, Any]]:
        return ({**doc.data, "id": doc.id} for doc in store.scan(shop, collection))

    return CatalogData(
        products=[Product.model_validate(d) for d in scan("products")],
        faq=[FaqEntry.model_validate(d) for d in scan("faq")],
        vectors=[doc.data for doc in store.scan(shop, EMBEDDINGS)],
    )


def index_data(data: CatalogData, shop: str) -> CatalogIndex:
    vectors = load_vectors(data.vectors, shop, data.products, data.faq)
    return index_catalog(data.products, data.faq, vectors)


def build_index(store: Store, shop: str) -> CatalogIndex:
    return index_data(read_catalog(store, shop), shop)


def index_catalog(
    products: Iterable[Product],
    faq: Iterable[FaqEntry] = (),
    vectors: CatalogVectors | None = None,
) -> CatalogIndex:
    by_id = {p.id: p for p in products}
    faq_by_id = {f.id: f for f in faq}
    return CatalogIndex(
        products=by_id,
        faq=faq_by_id,
        product_index=BM25([(p.id, product_text(p)) for p in by_id.values()]),
        faq_index=BM25([(f.id, faq_text(f)) for f in faq_by_id.values()]),
        vectors=vectors,
    )


def faq_text(entry: FaqEntry) -> str:
    """What a FAQ entry is searched by: its question (twice: it says what the entry is about),
    its tags and its answer, without e-mail addresses, URLs or phone numbers."""
    text = " ".join([entry.question, entry.question, " ".join(entry.tags), entry.answer])
    return _CONTACT_DETAIL_RE.sub(" ", text)


class CatalogCache:
    """One index per shop, rebuilt only when the shop's catalogue version changes. A build reads
    the version's snapshot when ``snapshots`` has one (one object instead of a scan of the
    whole catalogue), else scans the store and writes the snapshot for the next cold instance."""

    def __init__(self, store: Store, snapshots: CatalogSnapshots | None = None) -> None:
        self._store = store
        self._snapshots = snapshots
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._indexes: dict[str, tuple[int, CatalogIndex]] = {}

    def get(self, shop: Shop) -> CatalogIndex:
        # A cached shop may be a few seconds stale: an index never goes back to an older version.
        cached = self._indexes.get(shop.id)
        if cached is not None and cached[0] >= shop.catalog_version:
            return cached[1]
        with self._locks[shop.id]:  # one shop's rebuild does not hold up the others
            cached = self._indexes.get(shop.id)
            if cached is None or cached[0] < shop.catalog_version:
                cached = (shop.catalog_version, self._build(shop))
                self._indexes[shop.id] = cached
            return cached[1]

    def _build(self, shop: Shop) -> CatalogIndex:
        if self._snapshots is None:
            return build_index(self._store, shop.id)
        data = self._snapshots.load(shop.id, shop.catalog_version)
        if data is None:
            # The version was read before the scan: the snapshot holds that version or newer.
            data = read_catalog(self._store, shop.id)
            self._snapshots.save(shop.id, shop.catalog_version, data)
        return index_data(data, shop.id)
