"""Retrieval at 10,000 products: warm latency per customer message, and the cold index build.

A turn's retrieval is ``search_products`` (4 products) plus ``search_faq`` (2 entries) on the
shop's cached index (BM25, accents and typos tolerated). The baseline, timed in the same run on
the same messages, is a naive scan: every product's folded title and description (folded once,
ahead of time) searched for each query word as a substring, best count first. Typical customer
messages, French and English, a third with typos. "Found" counts the product questions whose
results hold a product of the kind asked for. Then English messages on the catalogue's
French-titled products alone (the glossary's cross-language expansion), and adversarial messages
of MAX_MESSAGE_CHARS (one huge word, thousands of words...): the median of ``--rounds`` searches
each. Last, hybrid search (BM25 fused with the embeddings' ranking, as a turn with a message
vector runs it) at 1,000 and 10,000 products, for 256 and 1,536 dimensions: synthetic vectors
that all sit near one another (every vector passes the similarity floor: the worst case).

    .venv/bin/python bench/retrieval.py [--products 10000] [--rounds 25] [--builds 3]

Prints Markdown tables for bench/README.md.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from _common import (
    QUERIES,
    InstantLLM,
    Query,
    demo_faq,
    ms,
    percentile,
    synthetic_products,
    temp_app,
)

from shared.catalog.embeddings import CatalogVectors, VectorIndex, quantise
from shared.catalog.retrieval import build_index, fold, index_catalog, tokens
from shared.chat import FAQ_PER_TURN, PRODUCTS_PER_TURN
from shared.models import FaqEntry, Product
from shared.settings import Settings
from tests.fixtures.app import SHOP

GOAL_P50 = 0.020  # seconds, warm, at 10,000 products
GOAL_ADVERSARIAL = 0.050  # seconds, any message up to MAX_MESSAGE_CHARS
MAX_MESSAGE_CHARS: int = Settings.model_fields["max_message_chars"].default
T = TypeVar("T")
Search = Callable[[str], list[Product]]
# English messages for a shop whose catalogue is in French: found if a result is of that kind.
CROSS_LANGUAGE = [
    Query("Do you have dresses?", ("robe",)),
    Query("a leather bag", ("sac",)),
    Query("sandals size 42", ("sandales",)),
    Query("wicker basket", ("panier",)),
    Query("a bead necklace", ("collier",)),
    Query("shea butter 250 ml", ("beurre",)),
    Query("white linen shirt", ("chemise",)),
    Query("wool rug 160x230", ("tapis",)),
    Query("earrings in silver", ("boucles",)),
    Query("a straw hat", ("chapeau",)),
]


def scan(items: Sequence[tuple[T, str]], words: Sequence[str], limit: int) -> list[T]:
    """The ``limit`` items whose text holds the most query words, ties in catalogue order."""
    scored = ((-sum(w in text for w in words), i) for i, (_, text) in enumerate(items))
    best = heapq.nsmallest(limit, (s for s in scored if s[0] < 0))
    return [items[i][0] for _, i in best]


class SubstringScan:
    """The naive baseline: no index, every text searched for every query word."""

    def __init__(self, products: Sequence[Product], faq: Sequence[FaqEntry]) -> None:
        self.products = [(p, fold(f"{p.title} {p.description}")) for p in products]
        self.faq = [(f, fold(f"{f.question} {f.answer}")) for f in faq]

    def search(self, query: str) -> list[Product]:
        words = tokens(query)  # the same words the index looks up: stopwords out, light stem
        scan(self.faq, words, FAQ_PER_TURN)
        return scan(self.products, words, PRODUCTS_PER_TURN)


@dataclass
class Tally:
    samples: list[float] = field(default_factory=list)  # seconds per search
    found: int = 0  # product questions whose results hold the kind of product asked for
    asked: int = 0


def found(query: Query, products: Sequence[Product]) -> bool:
    return any(any(w in fold(p.title) for w in query.wants) for p in products)


def timed(search: Search, query: Query, samples: list[float]) -> None:
    started = time.perf_counter()
    search(query.text)
    samples.append(time.perf_counter() - started)


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def adversarial_messages() -> dict[str, str]:
    rng = random.Random(5)

    def word(length: int) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))

    def words(lengths: tuple[int, int]) -> str:
        return " ".join(word(rng.randint(*lengths)) for _ in range(MAX_MESSAGE_CHARS))

    return {
        name: text[:MAX_MESSAGE_CHARS]
        for name, text in {
            "one 4,000-letter word": word(MAX_MESSAGE_CHARS),
            "one 1,500-letter word": word(1_500),
            "'a' x 4,000": "a" * MAX_MESSAGE_CHARS,
            "'ab ' x 1,333": "ab " * 1_333,
            "distinct words of 1 to 6 letters": words((1, 6)),
            "distinct words of 8 to 12 letters": words((8, 12)),
            "distinct words of 30 letters": words((30, 30)),
            "ligature 'ffi' (U+FB03, folds to 3 letters) x 4,000": "\ufb03" * MAX_MESSAGE_CHARS,
            "digits and punctuation": "12 345,67 !?" * MAX_MESSAGE_CHARS,
        }.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--builds", type=int, default=3)
    args = parser.parse_args()
    products, faq = synthetic_products(args.products), demo_faq()

    # Cold: the index a warm instance keeps, built from memory and from the store.
    from_memory = median_time(lambda: index_catalog(products, faq), args.builds)
    with temp_app(products, InstantLLM(), faq=faq) as app:
        from_store = median_time(lambda: build_index(app.store, str(SHOP["id"])), args.builds)

    index = index_catalog(products, faq)
    baseline = SubstringScan(products, faq)

    def ours(text: str) -> list[Product]:
        index.search_faq(text, FAQ_PER_TURN)
        return [p for p, _ in index.search_products(text, PRODUCTS_PER_TURN)]

    clean, typos, scanned = Tally(), Tally(), Tally()
    for query in QUERIES:  # warm-up, and whether each finds the kind of product asked for
        if query.wants:
            mine = typos if query.typo else clean
            mine.asked += 1
            mine.found += found(query, ours(query.text))
            scanned.asked += 1
            scanned.found += found(query, baseline.search(query.text))
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        for query in QUERIES:
            timed(ours, query, (typos if query.typo else clean).samples)
            timed(baseline.search, query, scanned.samples)
    everything = Tally(
        clean.samples + typos.samples, clean.found + typos.found, clean.asked + typos.asked
    )

    print(
        f"Retrieval at {args.products:,} products, {len(QUERIES)} customer messages x "
        f"{args.rounds} rounds, warm ({time.strftime('%Y-%m-%d')}, "
        f"Python {sys.version.split()[0]}):\n"
    )
    print("| search (products + FAQ, as a turn) | p50 (ms) | p99 (ms) | found | p50 vs scan |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base_p50 = percentile(scanned.samples, 50)
    for name, tally in [
        ("Comptoir index, all messages", everything),
        ("Comptoir index, messages without typos", clean),
        ("Comptoir index, messages with typos", typos),
        ("naive substring scan (baseline), all messages", scanned),
    ]:
        p50 = percentile(tally.samples, 50)
        print(
            f"| {name} | {ms(p50)} | {ms(percentile(tally.samples, 99))} "
            f"| {tally.found}/{tally.asked} | {base_p50 / p50:.1f}x |"
        )
    print(
        f"\n| index build, {args.products:,} products + {len(faq)} FAQ (median of {args.builds}) "
        "| seconds |\n| --- | ---: |\n"
        f"| from memory (`index_catalog`) | {from_memory:.2f} |\n"
        f"| from SQLite (`build_index`: read, validate, index; a cold instance's first turn) "
        f"| {from_store:.2f} |"
    )
    ours_p50 = percentile(everything.samples, 50)
    verdict = "met" if ours_p50 <= GOAL_P50 else "MISSED"
    print(f"\nGoal: p50 at most {ms(GOAL_P50)} ms warm: {verdict} ({ms(ours_p50)} ms).")

    french = [p for p in products if " en " in p.title]  # "Robe en wax rouge Awa"
    french_index = index_catalog(french, faq)

    def in_french(text: str) -> list[Product]:
        french_index.search_faq(text, FAQ_PER_TURN)
        return [p for p, _ in french_index.search_products(text, PRODUCTS_PER_TURN)]

    crossed = Tally(asked=len(CROSS_LANGUAGE))
    crossed.found = sum(found(query, in_french(query.text)) for query in CROSS_LANGUAGE)
    for _ in range(args.rounds):
        for query in CROSS_LANGUAGE:
            timed(in_french, query, crossed.samples)
    print(
        f"\n| English messages, the {len(french):,} French-titled products alone "
        "| p50 (ms) | p99 (ms) | found |\n| --- | ---: | ---: | ---: |\n"
        f"| Comptoir index (glossary expansion) | {ms(percentile(crossed.samples, 50))} "
        f"| {ms(percentile(crossed.samples, 99))} | {crossed.found}/{crossed.asked} |"
    )

    print(
        f"\n| adversarial message ({MAX_MESSAGE_CHARS:,} characters at most) "
        f"| median of {args.rounds} (ms) |\n| --- | ---: |"
    )
    worst = 0.0
    for name, text in adversarial_messages().items():
        median = median_time(lambda text=text: ours(text), args.rounds)
        worst = max(worst, median)
        print(f"| {name} | {ms(median)} |")
    verdict = "met" if worst <= GOAL_ADVERSARIAL else "MISSED"
    print(f"\nGoal: any message at most {ms(GOAL_ADVERSARIAL)} ms: {verdict} ({ms(worst)} ms).")

    hybrid(products, faq, args.rounds)


def near(centre: Sequence[float], rng: random.Random) -> list[float]:
    """A vector whose cosine with any other ``near`` the same centre is about 0.5."""
    return [c + rng.gauss(0, 1) for c in centre]


def hybrid(products: Sequence[Product], faq: Sequence[FaqEntry], rounds: int) -> None:
    rng = random.Random(7)
    print(
        f"\n| hybrid search (products + FAQ, as a turn), {len(QUERIES)} messages x {rounds} "
        "| dimensions | p50 (ms) | p99 (ms) | BM25 alone p50 (ms) | vector index build (s) "
        "| vector index memory (MB) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for count in (1_000, 10_000):
        if count > len(products):
            continue
        subset = products[:count]
        for dims in (256, 1_536):
            centre = [rng.gauss(0, 1) for _ in range(dims)]
            stored = [quantise(near(centre, rng)) for _ in subset]
            started = time.perf_counter()
            product_vectors = VectorIndex([p.id for p in subset], stored)
            build = time.perf_counter() - started
            faq_vectors = [quantise(near(centre, rng)) for _ in faq]
            vectors = CatalogVectors(
                "bench", product_vectors, VectorIndex([f.id for f in faq], faq_vectors)
            )
            index = index_catalog(subset, faq, vectors)
            messages = [(query.text, near(centre, rng)) for query in QUERIES]
            fused: list[float] = []
            lexical: list[float] = []
            for _ in range(rounds):
                for text, vector in messages:
                    started = time.perf_counter()
                    index.search_faq(text, FAQ_PER_TURN, query_vector=vector)
                    index.search_products(text, PRODUCTS_PER_TURN, query_vector=vector)
                    fused.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    index.search_faq(text, FAQ_PER_TURN)
                    index.search_products(text, PRODUCTS_PER_TURN)
                    lexical.append(time.perf_counter() - started)
            print(
                f"| {count:,} products | {dims:,} | {ms(percentile(fused, 50))} "
                f"| {ms(percentile(fused, 99))} | {ms(percentile(lexical, 50))} | {build:.2f} "
                f"| {4 * count * dims / 1e6:.0f} |"
            )


if __name__ == "__main__":
    main()
