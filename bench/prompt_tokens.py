"""Prompt tokens per turn: what Comptoir sends the model, against the whole catalogue.

Each turn runs through ``ChatService.turn`` on a temporary SQLite store seeded with a synthetic
catalogue (10, 1,000 and 10,000 products), with an instant fake model that records the messages
it receives. Those messages (system prompt, history, the customer's message) are counted with
o200k_base, plus OpenAI's framing (3 tokens per message, 3 to prime the reply). The baseline is
seed 002's approach, counted on the same turns: the same system prompt with the catalogue
extract replaced by the whole catalogue (every product's title, price and description).

Also counted: a returning customer's turn, their memory full (MAX_ITEMS items and a summary of
SUMMARY_CHARS characters), which the prompt quotes bounded.

    .venv/bin/python bench/prompt_tokens.py

Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from functools import cache

from _common import (
    QUERIES,
    InstantLLM,
    ModelRequest,
    first_turn,
    refused_note,
    synthetic_products,
    temp_app,
)
from bpe_openai import get_encoding

from shared import conversations, crm, memory
from shared.app import App
from shared.chat import detect_language
from shared.llm import ChatMessage, ToolSpec
from shared.models import Product, Shop
from shared.money import format_price

SIZES = (10, 1_000, 10_000)
GOAL = 2_500
CONVERSATION = 10  # the message of a conversation whose prompt is counted with its history
EXTRACT_MARKER = "Catalogue extract"  # where the chat prompt lists the retrieved products
PER_MESSAGE = 3  # OpenAI's framing of each chat message
REPLY_PRIMING = 3  # and of the reply
PIECE_LINES = 1_000  # the tokenizer takes at most 200,000 tokens a call: long texts go in pieces

_encoding = get_encoding("o200k_base")


@cache
def count(text: str) -> int:
    lines = text.splitlines(keepends=True)
    return sum(
        len(_encoding.encode_ordinary("".join(lines[i : i + PIECE_LINES])))
        for i in range(0, len(lines), PIECE_LINES)
    )


def message_tokens(message: ChatMessage, text_parts: Sequence[str] | None = None) -> int:
    parts = [message.text] if text_parts is None else text_parts
    calls = [json.dumps([c.name, c.arguments], ensure_ascii=False) for c in message.tool_calls]
    return PER_MESSAGE + sum(count(p) for p in [*parts, *calls] if p)


def request_tokens(request: ModelRequest) -> int:
    return REPLY_PRIMING + sum(message_tokens(m) for m in request.messages)


def tools_tokens(tools: Sequence[ToolSpec]) -> int:
    """The tool definitions as the OpenAI provider sends them, counted as JSON."""
    wire = [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in tools
    ]
    return count(json.dumps(wire, ensure_ascii=False))


def whole_catalogue(products: Sequence[Product], lang: str) -> str:
    lines = [
        f"- {p.title}: {format_price(p.price, p.currency, lang)}. {p.description}" for p in products
    ]
    return "Catalogue (every product we sell):\n" + "\n".join(lines)


def whole_catalogue_tokens(request: ModelRequest, catalogue: str) -> int:
    """Seed 002's prompt for the same turn: the catalogue extract replaced by every product.

    Counted in parts (the catalogue once per language), which changes at most a token
    at each seam."""
    system, *rest = request.messages
    start = system.text.find(EXTRACT_MARKER)
    end = system.text.find("\n\n", start) if start >= 0 else -1
    before = system.text[:start] if start >= 0 else system.text + "\n\n"
    after = system.text[end:] if end >= 0 else ""
    parts = [before, catalogue, after]
    return REPLY_PRIMING + message_tokens(system, parts) + sum(message_tokens(m) for m in rest)


def measure(size: int) -> dict[str, float]:
    products = synthetic_products(size)
    catalogues = {lang: whole_catalogue(products, lang) for lang in ("fr", "en")}
    plain, searching = InstantLLM(), InstantLLM(tool="search_products")
    ours: list[int] = []
    baseline: list[int] = []
    with_search: list[int] = []
    tools = in_conversation = largest_call = 0
    with temp_app(products, plain) as app:
        chat = app.chat
        shop = app.shops.get(None)
        for query in QUERIES:
            app.llm_override = plain
            plain.requests.clear()
            first_turn(chat, shop, query.text)  # a first turn: no history yet
            (request,) = plain.requests
            ours.append(request_tokens(request))
            lang = detect_language(query.text, shop)  # as the turn did, for the prices
            baseline.append(whole_catalogue_tokens(request, catalogues[lang]))
            tools = tools_tokens(request.tools)
            if query.wants:  # a product question a model would answer with a search
                app.llm_override = searching
                searching.requests.clear()
                first_turn(chat, shop, query.text)
                calls = [request_tokens(r) for r in searching.requests]
                with_search.append(sum(calls))
                largest_call = max(largest_call, *calls)
        # A conversation's later messages carry its history (CONTEXT_MESSAGE_LIMIT messages).
        app.llm_override = plain
        reply = first_turn(chat, shop, QUERIES[0].text)
        for query in QUERIES[1:CONVERSATION]:
            plain.requests.clear()
            reply = chat.turn(shop, reply.session_id, query.text)
        in_conversation = request_tokens(plain.requests[-1])
        returning = returning_customer_tokens(app, shop, plain)
    largest_call = max(largest_call, in_conversation, *ours)
    return {
        "ours": statistics.median(ours),
        "ours_max": max(ours),
        "baseline": statistics.median(baseline),
        "with_search": statistics.median(with_search),
        "tools": tools,
        "in_conversation": in_conversation,
        "returning": returning,
        "largest_call": largest_call,
    }


def returning_customer_tokens(app: App, shop: Shop, llm: InstantLLM) -> int:
    """The whole call of a customer's new message when their memory is full: MAX_ITEMS items
    (the products they looked at, with a word of each) and a summary of SUMMARY_CHARS
    characters; the tool definitions it is offered (``recall`` among them) included."""
    reply = first_turn(app.chat, shop, QUERIES[0].text)
    conversation = conversations.get(app.store, shop.id, reply.session_id)
    assert conversation is not None
    customer, _ = crm.own_contact(app.store, shop.id, conversation)
    seen = synthetic_products(2 * memory.MAX_ITEMS, seed=7)  # more than it keeps: it is full
    notes = [
        memory.Note(f"interested in {p.title}: {p.description[:80]}", "interest")
        for p in seen
    ]
    day_lines = [
        f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}: asked about {p.title}, size 40, colour black"
        for i, p in enumerate(seen)
    ]
    kept = memory.save(
        app.store, shop.id, customer, notes, source=conversation.id, at=time.time(),
        summary_lines=day_lines[:40],
    )  # fmt: skip
    assert len(kept.items) == memory.MAX_ITEMS, len(kept.items)
    assert len(kept.summary) >= memory.SUMMARY_CHARS - 100, len(kept.summary)
    llm.requests.clear()
    app.chat.turn(shop, reply.session_id, QUERIES[1].text)
    return request_tokens(llm.requests[0]) + tools_tokens(llm.requests[0].tools)


def main() -> None:
    started = time.perf_counter()
    rows = {size: measure(size) for size in SIZES}
    print(
        f"Prompt tokens per turn (o200k_base), median over {len(QUERIES)} first-turn customer "
        f"messages ({time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}):\n"
    )
    print(
        "| products | Comptoir prompt tokens | whole-catalogue prompt tokens | ratio "
        f"| Comptoir, worst message | Comptoir, message {CONVERSATION} of a conversation "
        "| Comptoir, product turn with a search (2 calls) "
        "| Comptoir, returning customer, memory full, tools included |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, row in rows.items():
        print(
            f"| {size:,} | {row['ours']:,.0f} | {row['baseline']:,.0f} "
            f"| {row['baseline'] / row['ours']:,.1f}x | {row['ours_max']:,.0f} "
            f"| {row['in_conversation']:,.0f} | {row['with_search']:,.0f} "
            f"| {row['returning']:,.0f} |"
        )
    largest = rows[SIZES[-1]]
    worst = largest["largest_call"]
    verdict = "met" if worst <= GOAL else "MISSED"
    print(
        f"\nGoal: flat, at most {GOAL:,} tokens at {SIZES[-1]:,} products: {verdict} "
        f"(the largest single call: {worst:,.0f}). Not counted above but in the last column: "
        f"the tool definitions a first turn is offered, {largest['tools']:,.0f} tokens as JSON "
        f"on the wire; the returning customer's whole call: {largest['returning']:,.0f} "
        f"({'within' if largest['returning'] <= GOAL else 'OVER'} the goal).\n"
        f"({time.perf_counter() - started:.0f} s)" + refused_note()
    )


if __name__ == "__main__":
    main()
