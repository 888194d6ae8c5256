"""What one customer message can cost: retrieval and the offline responder stay fast and small
on adversarial text up to MAX_MESSAGE_CHARS (one huge word, thousands of words, digits,
punctuation, combining marks, characters that decompose into several letters)."""

from __future__ import annotations

import json
import random
import string
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.app import App
from shared.catalog.importer import seed_demo
from shared.catalog.retrieval import (
    MAX_CANDIDATES,
    MAX_CORRECTED_LENGTH,
    MAX_QUERY_WORDS,
    CatalogIndex,
    Speller,
    build_index,
    edit_distance,
)
from shared.chat import FAQ_PER_TURN, PRODUCTS_PER_TURN
from shared.llm.base import ChatMessage, LLMRequest, ToolCall, ToolSpec
from shared.rules import RulesResponder
from shared.settings import Settings
from shared.store.sqlite import SQLiteStore
from tests.fixtures.app import Client, post_json

MAX_MESSAGE_CHARS = Settings.model_fields["max_message_chars"].default
BUDGET_SECONDS = 0.050  # per message, warm; the old speller took seconds on 1,500 letters
BUDGET_BYTES = 20_000_000  # peak allocation per message; the old one took 1.75 GB


def random_word(length: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def random_words(count: int, lengths: tuple[int, int], seed: int = 2) -> str:
    rng = random.Random(seed)
    words = (random_word(rng.randint(*lengths), rng.randrange(1 << 30)) for _ in range(count))
    return " ".join(words)[:MAX_MESSAGE_CHARS]


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogIndex]:
    """The demo shop's index, as `python -m shared seed-demo` stores it."""
    store = SQLiteStore(tmp_path_factory.mktemp("demo") / "demo.db")
    seed_demo(store, "demo")
    yield build_index(store, "demo")
    store.close()


def best_time(action: Callable[[], object], runs: int = 3) -> float:
    """The fastest of ``runs``: a noisy machine only ever adds time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def messages() -> st.SearchStrategy[str]:
    """Any text, and the shapes that stress retrieval: long words, many distinct words."""
    word = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=60)
    return st.one_of(
        st.text(max_size=MAX_MESSAGE_CHARS),
        st.text(alphabet=string.ascii_lowercase, min_size=100, max_size=MAX_MESSAGE_CHARS),
        st.lists(word, max_size=400).map(" ".join),
    ).map(lambda text: text[:MAX_MESSAGE_CHARS])


@settings(max_examples=60, deadline=None, database=None)
@given(text=messages())
@example(text="a" * MAX_MESSAGE_CHARS)
@example(text=random_word(MAX_MESSAGE_CHARS))
@example(text=random_word(1_500))
@example(text="ab " * 1_333)
@example(text="a " * 2_000)
@example(text=random_words(1_000, (1, 6)))  # ~4,000 characters, hundreds of distinct words
@example(text=random_words(200, (18, 18)))  # as long as the longest indexed word + 2 edits
@example(text=random_words(130, (30, 30)))
@example(text="1" * MAX_MESSAGE_CHARS)
@example(text="!?." * 1_333)
@example(text="e" + "\u0301" * (MAX_MESSAGE_CHARS - 1))  # combining acute accents
@example(text="\ufb03" * 1_333)  # "ffi" ligature: folding triples the length of the word
@example(text="sandale " * 500)
def test_any_message_costs_little_retrieval(demo_index: CatalogIndex, text: str) -> None:
    def turn() -> None:  # what a chat turn asks of retrieval
        demo_index.search_products(text, PRODUCTS_PER_TURN)
        demo_index.search_faq(text, FAQ_PER_TURN)

    assert peak_bytes(turn) < BUDGET_BYTES
    assert best_time(turn) < BUDGET_SECONDS


def test_a_huge_word_through_the_chat_api_is_answered_quickly(client: Client, app: App) -> None:
    started = time.perf_counter()
    result = post_json(client, "/chat", {"message": random_word(MAX_MESSAGE_CHARS)})
    elapsed = time.perf_counter() - started
    assert result.status == 200, result.body
    assert result.json()["products"] == []
    assert elapsed < 1.0


# --- the bounds keep typo tolerance where it matters -----------------------------------------


def test_the_longest_indexed_word_is_still_corrected() -> None:
    longest = "anticonstitutionnellement"  # 25 letters
    speller = Speller(["sac", longest, "x" * (MAX_CORRECTED_LENGTH + 1)])
    assert speller.nearest("anticonstitutionelement") == [longest]  # two letters dropped
    assert speller.nearest(longest + "xyz") == []  # three longer than any indexed word
    assert speller.nearest("x" * MAX_CORRECTED_LENGTH) == []  # too long to be indexed


def test_only_the_first_distinct_words_of_a_message_are_looked_up(
    demo_index: CatalogIndex,
) -> None:
    filler = random_words(MAX_QUERY_WORDS, (6, 6), seed=9).split()
    assert len(set(filler)) == MAX_QUERY_WORDS

    def found(query: str) -> bool:
        return any("sandale" in p.title.lower() for p, _ in demo_index.search_products(query))

    assert found(" ".join(["sandales", *filler]))
    assert not found(" ".join([*filler, "sandales"]))
    # Repeating a word does not use up the allowance.
    assert found(" ".join([filler[0]] * 1_000 + ["sandales"]))


def test_a_typo_is_checked_against_a_bounded_number_of_words() -> None:
    # Thirty indexed words one edit from "bala": only the closest in length are compared.
    same_length = [f"bal{c}" for c in "bcdefghijklmnopqrstuvwxyz"]
    longer = [f"bala{c}" for c in "bcdef"]
    corrections = Speller([*same_length, *longer]).nearest("bala")
    assert corrections == sorted(same_length)[:MAX_CANDIDATES]


def full_osa(a: str, b: str) -> int:
    """Optimal string alignment distance over the whole matrix: the reference."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1,
                rows[i][j - 1] + 1,
                rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


@settings(max_examples=300, deadline=None, database=None)
@given(
    a=st.text(alphabet="abc", max_size=10),
    b=st.text(alphabet="abc", max_size=10),
    bound=st.integers(0, 4),
)
def test_the_banded_distance_is_the_full_distance_up_to_the_bound(
    a: str, b: str, bound: int
) -> None:
    assert edit_distance(a, b, bound) == min(full_osa(a, b), bound + 1)


# --- the offline responder -------------------------------------------------------------------


def test_the_offline_responder_reads_long_runs_of_spaces_in_linear_time() -> None:
    """A variant cue ("taille") then thousands of spaces and no size: the order form's text is
    scanned once per run of spaces, not once per way of splitting it."""
    padded = "taille" + " " * (MAX_MESSAGE_CHARS - 7) + "!"
    search = ToolCall("offline-0-search_products", "search_products", {"query": "sandales"})
    product = {
        "id": "sandales-cuir",
        "title": "Sandales en cuir",
        "currency": "XOF",
        "price": "15000",
        "variants": [{"id": "sandales-cuir:40", "title": "40", "price": "15000"}],
    }
    conversation = [
        ChatMessage("user", "Je voudrais commander les sandales en cuir"),
        *[ChatMessage("user", padded) for _ in range(5)],
        ChatMessage("user", "Je m'appelle Awa Diop, 77 123 45 67, adresse : rue 10, Dakar"),
        ChatMessage("assistant", tool_calls=(search,)),
        ChatMessage(
            "tool",
            json.dumps({"products": [product]}),
            tool_call_id=search.id,
            tool_name="search_products",
        ),
    ]
    capture = ToolSpec("capture_lead", "Record the order.", {"type": "object"})
    responder = RulesResponder()
    request = LLMRequest(conversation, [capture])
    [call] = responder.complete(request).tool_calls
    assert call.name == "capture_lead"
    assert call.arguments["address"] == "rue 10, Dakar"
    assert best_time(lambda: responder.complete(request)) < BUDGET_SECONDS

