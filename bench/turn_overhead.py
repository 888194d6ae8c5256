"""Per-turn overhead of the chat function with an instant model, and store operations per turn.

A turn is ``POST /chat`` (JSON) through the chat function's neutral handler
(``functions.chat.handler``) on SQLite, with a synthetic catalogue of 10,000 products, the demo
FAQ and conversations of 10 messages. The model is (a) an instant in-process fake, or (b) the
real ``openai`` SDK against the tests' loopback Chat Completions server (in a child process),
answering at once; either behind ``ResilientLLM``, as in production. After each turn the same
model calls are replayed alone: overhead = turn time - the model calls alone, turn by turn.

Store operations (get, get_many, put, create, update, delete, query, increment) are counted by a
SQLiteStore subclass, for a first turn, a follow-up, a product question (the model calls
``search_products``), an FAQ question, a follow-up after the 5 s shop cache expired, and a
follow-up on a cold instance.

    .venv/bin/python bench/turn_overhead.py [--turns 200] [--products 10000]

Prints Markdown tables for bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from _common import (
    QUERIES,
    ROOT,
    BenchApp,
    InstantLLM,
    ms,
    note_refused_session_id,
    percentile,
    refused_note,
    synthetic_products,
    temp_app,
)

import functions.chat
from shared.app import App, get_app, use_app
from shared.http import Request
from shared.llm import (
    LLM,
    Completion,
    LLMConfig,
    LLMRequest,
    TextDelta,
    open_llm,
)
from shared.llm.resilient import ResilientLLM
from shared.shops import CACHE_SECONDS as SHOP_CACHE_SECONDS
from shared.store.sqlite import SQLiteStore
from tests.fixtures.openai_server import API_KEY

GOAL_P50 = 0.015  # seconds of overhead per turn, SQLite
GOAL_OPS = 6
SESSION_TURNS = 10  # a conversation's length before the next one starts

# --- what a turn costs the store -----------------------------------------------------------------


class CountingStore(SQLiteStore):
    """SQLite, recording each call to the public API (a call made inside another, as ``get``
    through ``get_many``, counts once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ops: list[str] = []
        self._depth = 0

    @contextmanager
    def _counted(self, name: str, collection: str) -> Iterator[None]:
        if self._depth == 0:
            parts = collection.split("/")
            self.ops.append(
                f"{name} {'/'.join(p if i % 2 == 0 else '*' for i, p in enumerate(parts))}"
            )
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def get(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("get", collection):
            return super().get(shop, collection, *args, **kwargs)

    def get_many(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("get_many", collection):
            return super().get_many(shop, collection, *args, **kwargs)

    def put(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("put", collection):
            return super().put(shop, collection, *args, **kwargs)

    def create(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("create", collection):
            return super().create(shop, collection, *args, **kwargs)

    def update(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("update", collection):
            return super().update(shop, collection, *args, **kwargs)

    def delete(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("delete", collection):
            return super().delete(shop, collection, *args, **kwargs)

    def query(self, shop: str, collection: str, **kwargs: Any) -> Any:
        with self._counted("query", collection):
            return super().query(shop, collection, **kwargs)

    def increment(self, shop: str, collection: str, *args: Any, **kwargs: Any) -> Any:
        with self._counted("increment", collection):
            return super().increment(shop, collection, *args, **kwargs)


# --- the model, recorded so its calls can be replayed alone ------------------------------------


@dataclass(frozen=True)
class Call:
    request: LLMRequest
    streamed: bool


class RecordingLLM(LLM):
    """Passes every call to ``inner`` and keeps it, to time the same calls again alone."""

    name: ClassVar[str] = "recording"

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.model = inner.model
        self.supports_images = inner.supports_images
        self.calls: list[Call] = []

    def complete(self, request: LLMRequest) -> Completion:
        self.calls.append(Call(request, streamed=False))
        return self.inner.complete(request)

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        self.calls.append(Call(request, streamed=True))
        return self.inner.stream(request)

    def replay(self) -> float:
        """Seconds the recorded calls take alone; forgets them."""
        started = time.perf_counter()
        for call in self.calls:
            if call.streamed:
                for _ in self.inner.stream(call.request):
                    pass
            else:
                self.inner.complete(call.request)
        elapsed = time.perf_counter() - started
        self.calls.clear()
        return elapsed


# The tests' loopback Chat Completions server, in a child process: its own interpreter, as a
# remote model is (in a thread here, it would compete with the turn for the GIL). It answers at
# once, as InstantLLM: a model named "*-search" searches first for the customer's message.
LOOPBACK = """
from tests.fixtures.openai_server import _handler
from tests.llm.script import Reply, Script
from tests.loopback import LoopbackServer

def respond(request):
    last = request.messages[-1]
    if request.model.endswith("-search") and request.tools and last["role"] == "user":
        return Reply(tool_calls=[("search_products", {{"query": last["text"]}})])
    return Reply(text={reply!r})

server = LoopbackServer(_handler(Script(responder=respond)))
print(server.server_address[1], flush=True)
server.serve_forever(0.05)
"""


@contextmanager
def loopback_openai() -> Iterator[str]:
    """Start the loopback server; yields its base URL."""
    program = LOOPBACK.format(reply=InstantLLM.REPLY)
    server = subprocess.Popen(
        [sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
    finally:
        server.terminate()
        server.wait(timeout=5)


# --- turns through the function ------------------------------------------------------------------


@dataclass
class Row:
    """One bench row: a customer's conversations (SESSION_TURNS messages each) with one model."""

    model: str
    search: bool  # product questions the model answers with a search, else any message
    llm: RecordingLLM
    wrapped: LLM  # what the app calls: the recorded model behind ResilientLLM, as in production
    texts: Iterator[str]
    session_id: str | None = None
    turns: int = 0
    total: list[float] = field(default_factory=list)
    alone: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)


def post(text: str, session_id: str | None) -> dict[str, Any]:
    """``POST /chat`` through the neutral handler, JSON mode."""
    body: dict[str, Any] = {"message": text}
    if session_id is not None:
        body["session_id"] = session_id
    for _ in range(3):
        request = Request(
            "POST",
            "/chat",
            headers={"content-type": "application/json"},
            body=json.dumps(body).encode(),
            source_ip="203.0.113.9",
        )
        response = functions.chat.handler(request)
        if response.status == 200:
            payload: dict[str, Any] = json.loads(response.body_bytes())
            return payload
        if response.status != 500 or session_id is not None:
            break
        note_refused_session_id()  # see _common: a fresh session id the store refuses
    raise RuntimeError(f"POST /chat answered {response.status}: {response.body_bytes()!r}")


def make_row(app: App, model: str, inner: LLM, *, search: bool) -> Row:
    llm = RecordingLLM(inner)
    texts = [q.text for q in QUERIES if q.wants or not search]
    return Row(
        model=model,
        search=search,
        llm=llm,
        wrapped=ResilientLLM([llm], retries=app.settings.llm_retries),
        texts=itertools.cycle(texts),
    )


def one_turn(app: App, row: Row) -> None:
    app.llm_override = row.wrapped
    started = time.perf_counter()
    reply = post(next(row.texts), row.session_id)
    total = time.perf_counter() - started
    alone = row.llm.replay()
    row.total.append(total)
    row.alone.append(alone)
    row.overhead.append(total - alone)
    row.turns += 1
    row.session_id = None if row.turns % SESSION_TURNS == 0 else reply["session_id"]


def count_ops(app: App, store: CountingStore) -> list[tuple[str, list[str]]]:
    plain = ResilientLLM([InstantLLM()], retries=app.settings.llm_retries)
    searching = ResilientLLM([InstantLLM(tool="search_products")], retries=app.settings.llm_retries)
    counted: list[tuple[str, list[str]]] = []

    def turn(name: str, llm: LLM, text: str, session_id: str | None) -> str:
        get_app().llm_override = llm
        store.ops.clear()
        reply = post(text, session_id)
        counted.append((name, store.ops[:]))
        return str(reply["session_id"])

    session = turn("first turn (new conversation)", plain, "Bonjour !", None)
    turn("follow-up turn", plain, "Je cherche un cadeau pour ma mère.", session)
    turn("product question (model calls search_products)", searching,
         "Avez-vous des sandales en cuir ?", session)  # fmt: skip
    turn("FAQ question", plain, "Livrez-vous à Thiès ? Combien coûte la livraison ?", session)
    time.sleep(SHOP_CACHE_SECONDS + 0.1)  # customers often take longer than that to type
    turn(f"follow-up more than {SHOP_CACHE_SECONDS:g} s after the last turn", plain,
         "Et en taille 40 ?", session)  # fmt: skip
    use_app(BenchApp(app.settings, bench_store=store))  # a new instance: no cache, no index yet
    try:
        turn("follow-up on a cold instance (builds the index)", plain, "Merci !", session)
    finally:
        use_app(app)
    return counted


def grouped(ops: Sequence[str]) -> str:
    """``a, a, b`` as ``a x2, b``."""
    runs = [(op, len(list(same))) for op, same in itertools.groupby(ops)]
    return ", ".join(op if n == 1 else f"{op} x{n}" for op, n in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200, help="timed turns per row")
    parser.add_argument("--products", type=int, default=10_000)
    args = parser.parse_args()
    started = time.perf_counter()
    products = synthetic_products(args.products)
    with (
        loopback_openai() as base_url,
        temp_app(products, InstantLLM(), store_class=CountingStore) as app,
    ):
        store = app.store
        assert isinstance(store, CountingStore)

        def sdk(model: str) -> LLM:
            config = LLMConfig("openai", model, api_key=API_KEY, base_url=base_url, timeout=5)
            return open_llm(config)

        fake, loopback = "instant fake (in-process)", "openai SDK -> loopback server"
        rows = [
            make_row(app, fake, InstantLLM(), search=False),
            make_row(app, fake, InstantLLM(tool="search_products"), search=True),
            make_row(app, loopback, sdk("gpt-test"), search=False),
            make_row(app, loopback, sdk("gpt-test-search"), search=True),
        ]
        for row in rows:  # warm-up: the index, the templates, the SDK and its connection
            for _ in range(3):
                one_turn(app, row)
            row.total.clear()
            row.alone.clear()
            row.overhead.clear()
        for _ in range(args.turns):  # interleaved, so machine noise hits every row alike
            for row in rows:
                one_turn(app, row)
        ops = count_ops(app, store)

    print(
        f"Per-turn overhead, POST /chat (JSON) through functions.chat.handler on SQLite, "
        f"{args.products:,} products, {args.turns} turns per row, conversations of "
        f"{SESSION_TURNS} messages ({time.strftime('%Y-%m-%d')}, "
        f"Python {sys.version.split()[0]}):\n"
    )
    print(
        "| model | turn | turn p50 (ms) | turn p99 (ms) | model calls alone p50 (ms) "
        "| overhead p50 (ms) | overhead p99 (ms) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        kind = "product question, search (2 calls)" if row.search else "any message (1 call)"
        print(
            f"| {row.model} | {kind} | {ms(percentile(row.total, 50))} "
            f"| {ms(percentile(row.total, 99))} | {ms(percentile(row.alone, 50))} "
            f"| {ms(percentile(row.overhead, 50))} | {ms(percentile(row.overhead, 99))} |"
        )
    worst = max(percentile(row.overhead, 50) for row in rows)
    verdict = "met" if worst <= GOAL_P50 else "MISSED"
    print(f"\nGoal: overhead p50 at most {ms(GOAL_P50)} ms: {verdict} (worst row {ms(worst)} ms).")

    print("\n| turn (instant fake model) | store operations | operations, in order |")
    print("| --- | ---: | --- |")
    for name, names in ops:
        flag = "" if len(names) <= GOAL_OPS or "cold" in name else " (over the goal)"
        print(f"| {name} | {len(names)}{flag} | {grouped(names)} |")
    print(
        f"\nGoal: at most {GOAL_OPS} store operations per turn. "
        f"({time.perf_counter() - started:.0f} s)" + refused_note()
    )


if __name__ == "__main__":
    main()
