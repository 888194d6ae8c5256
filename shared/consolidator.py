"""The memory consolidator: what each conversation taught about its customer, kept in their
memory (``shared.memory``) by a scheduled task, ``POST /tasks/consolidate`` or ``python -m shared
consolidate``.

A turn marks its conversation (``Conversation.memory_pending_at``, set once until the
consolidator clears it), so a run queries only the conversations waiting, oldest first, never
every conversation. For each: the messages past its watermark (``memory_watermark``, the last
message consolidated), read newest first; the shop's LLM reads them (``prompts/consolidate.j2``,
a JSON answer), or with the offline provider an extractive summariser (sizes, colours, budget,
language, the name, the catalogue's products named); the customer's memory is written (one
conditional write); then, and only then, the watermark moves (a conditional write that keeps the
mark when a message arrived meanwhile). A second run finds nothing to do and writes nothing.

Store operations per conversation: 1 messages query, 1 customer read, 1 memory read, 1 memory
write, 1 conversation write (the pending query is shared by up to BATCH conversations).

The hourly task queues one work item per shop (kind ``consolidate_shop``, every shop of the
platform's index), so shops are consolidated in parallel by the worker. A delivery reads page
after page (the query's cursor) until its budget (DEFAULT_BUDGET) runs out, then queues its own
continuation from where it stopped; the CLI runs inline, every page, showing its progress.

A conversation that fails is recorded as a dead letter (kind ``consolidate``, replayable with
``python -m shared deadletters replay``) and the others go on: it stays marked, moved
RETRY_AFTER_S later (a conditional write), so failures never fill the first page ahead of the
others and are tried again by a later tick, never in a loop within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared import conversations, crm, memory
from shared.catalog.retrieval import tokens
from shared.exceptions import ComptoirError, LLMRequestError, NotFoundError, UnknownShopError
from shared.llm import ChatMessage, LLMRequest
from shared.log import log_event
from shared.models import Conversation, Customer, Message, Shop, mutate
from shared.prompts import quoted, render_named
from shared.queue.base import WorkItem
from shared.shops import all_shop_ids
from shared.store.base import cursor_after

if TYPE_CHECKING:
    from shared.app import App
    from shared.catalog.retrieval import CatalogIndex

BATCH = 100  # pending conversations read per query
PENDING = "memory_pending_at"  # the order of the conversations waiting
MAX_MESSAGES = 100  # the newest messages past the watermark a consolidation reads
TRANSCRIPT_CHARS = 500  # of each message, in the LLM's request
DEFAULT_BUDGET = 60.0  # seconds a worker delivery may take (its timeout is 90 s on AWS Lambda)
RETRY_AFTER_S = 3600.0  # a conversation that failed waits this long before its next try
KIND = "consolidate"  # the worker kind of a consolidation: dead letters replay through it
SHOP_KIND = "consolidate_shop"  # the worker kind of a shop's run (queued by the task)
# The LLM's JSON lists, as memory kinds.
_LISTS: dict[str, memory.Kind] = {
    "interests": "interest",
    "open_questions": "open_question",
    "orders": "order",
    "topics": "topic",
    "difficulties": "difficulty",
}
_PREFERENCE_KEYS = ("size", "colour", "budget", "language")


@dataclass
class ConsolidationReport:
    shop: str
    consolidated: int = 0  # conversations whose messages were read into memory
    failed: int = 0  # dead-lettered
    remaining: int = 0  # still waiting when the budget ran out (at least; more may follow)
    dead_letters: list[str] = field(default_factory=list)
    cursor: str | None = None  # where the next run resumes, when the budget ran out

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "consolidated": self.consolidated,
            "failed": self.failed,
            "remaining": self.remaining,
            "dead_letters": self.dead_letters,
            "cursor": self.cursor,
        }


@dataclass(frozen=True)
class Extraction:
    notes: list[memory.Note]
    summary: str | None = None  # the LLM's rewritten summary (None: only lines added)
    summary_lines: list[str] = field(default_factory=list)


# --- running ---------------------------------------------------------------------------------


def consolidate(
    app: App,
    shop: str,
    now: float,
    budget_s: float,
    *,
    cursor: str | None = None,
    progress: Callable[[ConsolidationReport], None] | None = None,
) -> ConsolidationReport:
    """Consolidate the shop's conversations marked at or before ``now``, oldest first, page
    after page from ``cursor``, until none is left or ``budget_s`` seconds have passed; then
    the report's ``cursor`` says where to resume. At least one conversation is read whatever
    the budget, so a resumed run always moves on. ``progress`` sees the report after each page.
    """
    deadline = time.monotonic() + budget_s
    report = ConsolidationReport(shop)
    settings = app.shops.get(shop)
    while True:
        page = app.store.query(
            shop, conversations.CONVERSATIONS, order_by=PENDING, limit=BATCH, cursor=cursor
        )
        due = [doc for doc in page.items if float(doc.data[PENDING]) <= now]
        more = page.cursor is not None and len(due) == len(page.items)  # a later page is due
        for position, doc in enumerate(due):
            if report.consolidated + report.failed and time.monotonic() >= deadline:
                report.remaining = len(due) - position + more
                report.cursor = cursor
                break
            conversation = Conversation.from_doc(doc)
            try:
                _consolidate(app, settings, conversation, doc.version)
                report.consolidated += 1
            except Exception as exc:  # noqa: BLE001 - one conversation never stops the others
                report.failed += 1
                report.dead_letters.append(_dead_letter(app, shop, conversation, exc))
                _retry_later(app, shop, conversation, doc.version)
            cursor = cursor_after(doc, PENDING)
        if progress is not None:
            progress(report)
        if report.cursor is not None or not more:
            break
        cursor = page.cursor
    log_event(
        "memory_consolidated",
        shop=shop,
        consolidated=report.consolidated,
        failed=report.failed,
        remaining=report.remaining,
    )
    return report


def consolidate_conversation(app: App, shop: str, conversation_id: str) -> bool:
    """Consolidate one conversation now; whether it had messages past its watermark."""
    loaded = conversations.load(app.store, shop, conversation_id)
    if loaded is None:
        raise NotFoundError("no such conversation")
    return _consolidate(app, app.shops.get(shop), *loaded)


def consolidate_task(app: App, now: float) -> dict[str, Any]:
    """The ``consolidate`` task: one work item per shop of the index (``shops.all_shop_ids``),
    each consolidating its shop in a worker delivery (``handle_shop``)."""
    shop_ids = all_shop_ids(app.store, app.settings.default_shop)
    for shop in shop_ids:
        app.queue.send(shop_item(shop, now))
    return {"queued": shop_ids}


def shop_item(
    shop: str, now: float, *, cursor: str | None = None, part: int = 0,
    budget_s: float = DEFAULT_BUDGET,
) -> WorkItem:  # fmt: skip
    """The work item consolidating ``shop``'s conversations marked by ``now``, from ``cursor``.
    One per shop and tick minute (a scheduler's repeated call queues it once), ``part``
    numbering its continuations; one group per shop, so no two run at once."""
    return WorkItem(
        kind=SHOP_KIND,
        shop=shop,
        group=f"{SHOP_KIND}:{shop}",
        dedup_id=f"{SHOP_KIND}:{shop}:{int(now // 60)}:{part}",
        payload={"now": now, "cursor": cursor, "part": part, "budget_s": budget_s},
    )


def handle_shop(app: App, item: WorkItem) -> None:
    """The worker's ``consolidate_shop`` kind: the shop's conversations within the item's
    budget; when it runs out, the rest in a continuation (the same item from the cursor where
    this one stopped)."""
    payload = item.payload
    now, budget_s = float(payload["now"]), float(payload.get("budget_s", DEFAULT_BUDGET))
    try:
        report = consolidate(app, item.shop, now, budget_s, cursor=payload.get("cursor"))
    except UnknownShopError:  # listed, but its creation did not finish: nothing to read
        log_event("memory_shop_missing", shop=item.shop)
        return
    if report.cursor is not None:
        part = int(payload.get("part", 0)) + 1
        app.queue.send(
            shop_item(item.shop, now, cursor=report.cursor, part=part, budget_s=budget_s)
        )


def handle(app: App, item: WorkItem) -> None:
    """The worker's ``consolidate`` kind: a dead-lettered consolidation, replayed."""
    consolidate_conversation(app, item.shop, str(item.payload["conversation_id"]))


def _dead_letter(app: App, shop: str, conversation: Conversation, exc: BaseException) -> str:
    from shared.worker import failure_reason, record_dead_letter

    item = WorkItem(
        kind=KIND,
        shop=shop,
        group=f"memory:{conversation.id}",
        dedup_id=f"{KIND}:{conversation.id}:{conversation.memory_watermark or ''}",
        payload={"conversation_id": conversation.id},
    )
    return record_dead_letter(app.store, item, failure_reason(exc))


def _retry_later(app: App, shop: str, conversation: Conversation, version: int) -> None:
    """Move a conversation that failed RETRY_AFTER_S later in the queue of those waiting, so
    that failures never crowd the first page and the next runs reach the others first."""
    later = time.time() + RETRY_AFTER_S

    def postponed(c: Conversation) -> Conversation:
        if c.memory_pending_at is None:  # consolidated meanwhile
            return c
        return c.model_copy(update={"memory_pending_at": max(c.memory_pending_at, later)})

    try:
        mutate(
            app.store, shop, conversations.CONVERSATIONS, conversation.id, Conversation,
            postponed, start=(conversation, version),
        )  # fmt: skip
    except ComptoirError:  # the store refuses: the cursor moves past it all the same
        log_event("memory_retry_not_postponed", shop=shop)


def _consolidate(app: App, shop: Shop, conversation: Conversation, version: int) -> bool:
    store = app.store
    new = _past_watermark(app, shop.id, conversation)
    if new:
        customer = crm.conversation_customer(store, shop.id, conversation)
        extraction = _extract(app, shop, customer, new)
        if extraction.notes or extraction.summary or extraction.summary_lines:
            if customer is None:
                customer, conversation = crm.own_contact(store, shop.id, conversation)
                version = -1  # the link wrote it: read it again below
            memory.save(
                store,
                shop.id,
                customer,
                extraction.notes,
                source=conversation.id,
                at=new[-1].at,
                summary=extraction.summary,
                summary_lines=extraction.summary_lines,
                llm=app.llm_for(shop),
            )
    watermark = new[-1].id if new else conversation.memory_watermark

    def moved(c: Conversation) -> Conversation:
        newest = c.recent[-1].id if c.recent else ""
        waiting = newest > (watermark or "")  # a message came after the ones read
        return c.model_copy(
            update={
                "memory_watermark": watermark,
                "memory_pending_at": c.memory_pending_at if waiting else None,
            }
        )

    start = (conversation, version) if version >= 0 else None
    mutate(
        store, shop.id, conversations.CONVERSATIONS, conversation.id, Conversation, moved,
        start=start,
    )
    return bool(new)


def _past_watermark(app: App, shop: str, conversation: Conversation) -> list[Message]:
    """The conversation's messages after its watermark, oldest first (the newest MAX_MESSAGES)."""
    page = app.store.query(
        shop, conversations.messages_of(conversation.id), descending=True, limit=MAX_MESSAGES
    )
    after = conversation.memory_watermark or ""
    return [Message.from_doc(d) for d in reversed(page.items) if d.id > after]


# --- reading a conversation ------------------------------------------------------------------


def _extract(app: App, shop: Shop, customer: Customer | None, new: list[Message]) -> Extraction:
    llm = app.llm_for(shop)
    if app.offline_for(shop):
        return extractive(new, app.chat.catalog.get(shop))
    kept = memory.load(app.store, shop.id, customer)[0] if customer is not None else None
    request = render_named(
        "consolidate.j2",
        shop=shop,
        summary=quoted(kept.summary if kept else "", memory.SUMMARY_CHARS),
        known=[quoted(f"{i.kind}: {i.text}", memory.ITEM_CHARS) for i in kept.items]
        if kept
        else [],
        transcript=[f"{m.role}: {quoted(m.text, TRANSCRIPT_CHARS)}" for m in new],
        summary_chars=memory.SUMMARY_CHARS,
    )
    completion = llm.complete(LLMRequest([ChatMessage("user", request)]))
    return parsed(completion.text)


def parsed(text: str) -> Extraction:
    """The LLM's JSON answer as notes; raises LLMRequestError when it is not the object asked
    for (the conversation is then dead-lettered and tried again on the next run)."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if start >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LLMRequestError("the consolidation answer is not a JSON object")
    notes: list[memory.Note] = []
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        notes.append(memory.Note(f"name {name.strip()}", "fact", "name"))
    for preference in data.get("preferences") or []:
        if isinstance(preference, dict) and preference.get("key") in _PREFERENCE_KEYS:
            key, value = str(preference["key"]), str(preference.get("value", "")).strip()
            if value:
                notes.append(memory.Note(f"{key} {value}", "preference", key))
    for field_name, kind in _LISTS.items():
        values = data.get(field_name) or []
        for value in values if isinstance(values, list) else []:
            if isinstance(value, str) and value.strip():
                notes.append(memory.Note(value, kind))
    summary = data.get("summary")
    return Extraction(notes, summary if isinstance(summary, str) else None)


def extractive(new: list[Message], index: CatalogIndex) -> Extraction:
    """What the offline provider keeps of a conversation: the preferences and name the customer
    stated, and the catalogue's products they named (a product whose title's words are mostly in
    their message); the summary gains one dated line of it."""
    notes: list[memory.Note] = []
    for message in new:
        if message.role != "user":
            continue
        notes += memory.notes_in(message.text)
        for product, _ in index.search_products(message.text, 1):
            title = set(tokens(product.title))
            if title and len(title & set(tokens(message.text))) * 2 >= len(title):
                notes.append(memory.Note(f"interested in {product.title}", "interest"))
    notes = list({(n.kind, n.key, n.text): n for n in notes}.values())  # the latest of each
    if not notes:
        return Extraction([])
    day = datetime.fromtimestamp(new[-1].at, UTC).strftime("%Y-%m-%d")
    line = f"{day}: " + "; ".join(note.text for note in notes)
    return Extraction(notes, summary_lines=[line])


# --- CLI -------------------------------------------------------------------------------------

COMMANDS = ("consolidate",)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "consolidate", help="read the conversations waiting into their customers' memory"
    )
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument(
        "--budget", type=float, default=math.inf,
        help="seconds the run may take (default: until every conversation waiting is read)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from shared.app import get_app

    def progress(report: ConsolidationReport) -> None:
        print(
            f"consolidated {report.consolidated}, failed {report.failed}", file=sys.stderr
        )

    try:
        app = get_app()
        shop = args.shop or app.settings.default_shop
        report = consolidate(app, shop, time.time(), args.budget, progress=progress)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.failed else 0
