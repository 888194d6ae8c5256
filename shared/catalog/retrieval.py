"""Lexical retrieval (BM25) over a shop's products and FAQ, accent- and case-insensitive.

Indexes are built once per warm instance and per catalogue version: a turn only pays for the
search, and a re-import (which bumps ``Shop.catalog_version``) is picked up on the next turn.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.models import FaqEntry, Product, Shop
from shared.store import Store

_TOKEN_RE = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """
    a au aux avec ce ces cet cette d de des du elle en et il je j la le les l leur ma me mes
    mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu un une vos
    votre vous y est sont avez ai as c s n t m combien quel quelle quels quelles prix coute
    coutent an and are at be can do does for from have how i in is it me much my of on or
    please the this to what which with you your cost costs price
    """.split()
)


def fold(text: str) -> str:
    """Lower-case without accents: 'Brodé' and 'brode' are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    words = _TOKEN_RE.findall(fold(text))
    # A light plural stem, the same in French and English.
    return [w[:-1] if len(w) > 3 and w[-1] in "sx" else w for w in words if w not in STOPWORDS]


class BM25:
    """Okapi BM25 over short documents."""

    def __init__(self, documents: Sequence[tuple[str, str]], k1: float = 1.2, b: float = 0.75):
        self.ids = [doc_id for doc_id, _ in documents]
        self._terms = [Counter(tokens(text)) for _, text in documents]
        self._lengths = [sum(t.values()) for t in self._terms]
        self._avg = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        self._k1, self._b = k1, b
        postings: dict[str, list[int]] = {}
        for i, terms in enumerate(self._terms):
            for term in terms:
                postings.setdefault(term, []).append(i)
        n = len(documents)
        self._postings = postings
        self._idf = {
            t: math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            for t, docs in postings.items()
        }

    def search(self, query: str, limit: int) -> list[tuple[str, float]]:
        scores: dict[int, float] = {}
        for term in set(tokens(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for i in self._postings[term]:
                tf = self._terms[i][term]
                norm = self._k1 * (1 - self._b + self._b * self._lengths[i] / (self._avg or 1))
                scores[i] = scores.get(i, 0.0) + idf * tf * (self._k1 + 1) / (tf + norm)
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [(self.ids[i], score) for i, score in best]


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


@dataclass(frozen=True)
class CatalogIndex:
    products: dict[str, Product]
    faq: dict[str, FaqEntry]
    product_index: BM25
    faq_index: BM25

    def search_products(self, query: str, limit: int = 3) -> list[tuple[Product, float]]:
        return [(self.products[i], s) for i, s in self.product_index.search(query, limit)]

    def search_faq(self, query: str, limit: int = 2) -> list[tuple[FaqEntry, float]]:
        return [(self.faq[i], s) for i, s in self.faq_index.search(query, limit)]


def _all(store: Store, shop: str, collection: str) -> Iterator[dict[str, object]]:
    cursor = None
    while True:
        page = store.query(shop, collection, limit=500, cursor=cursor)
        for doc in page.items:
            yield {**doc.data, "id": doc.id}
        if (cursor := page.cursor) is None:
            return


def build_index(store: Store, shop: str) -> CatalogIndex:
    products = {p.id: p for p in (Product.model_validate(d) for d in _all(store, shop, "products"))}
    faq = {f.id: f for f in (FaqEntry.model_validate(d) for d in _all(store, shop, "faq"))}
    return CatalogIndex(
        products=products,
        faq=faq,
        product_index=BM25([(p.id, product_text(p)) for p in products.values()]),
        faq_index=BM25([(f.id, f"{f.question} {f.question} {f.answer}") for f in faq.values()]),
    )


class CatalogCache:
    """One index per shop, rebuilt only when the shop's catalogue version changes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[int, CatalogIndex]] = {}

    def get(self, shop: Shop) -> CatalogIndex:
        cached = self._indexes.get(shop.id)
        if cached is not None and cached[0] == shop.catalog_version:
            return cached[1]
        with self._lock:
            cached = self._indexes.get(shop.id)
            if cached is None or cached[0] != shop.catalog_version:
                cached = (shop.catalog_version, build_index(self._store, shop.id))
                self._indexes[shop.id] = cached
            return cached[1]
