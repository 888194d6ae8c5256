"""Running a campaign, exactly once per customer, resumable after a crash.

A run (``campaign_runs/{campaign}~{slot}``, created create-only: a duplicate trigger finds it
taken) selects the audience once and writes it in batches (``campaign_batches``), each a work
item of its own (``campaign_batch``), so one invocation never holds more than a batch. A worker
takes a batch with a lease and sends each message through this sequence:

1. the send record ``campaign_sends/{run}~{subject}`` (``{campaign}~{subject}`` for a campaign
   that reaches a customer once) is created create-only, BEFORE the provider is called: a
   second worker, a redelivery or a resumed run finds it and sends nothing;
2. the provider is called, paced at the number's rate (``pace.py``);
3. the record is marked sent (with the provider's message id) or failed/skipped with a reason,
   and the message joins the customer's conversation, which records the campaign it answers.

A process killed between 1 and 3 leaves a record "sending": it is never sent again (the provider
may have taken it) and reads "unknown" in the report once its lease is over. A batch whose worker
died is taken over when its lease ends: the schedule wakes the campaign (``on_schedule``) until
its runs are done. Quiet hours put a batch back and wake the campaign when they end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared import events, schedules
from shared.campaigns import audience, render
from shared.campaigns.definitions import SCHEDULE_KIND, load_campaign
from shared.campaigns.models import Batch, Campaign, Recipient, Run, Send, SendStatus
from shared.campaigns.pace import pace_for
from shared.catalog import PRODUCTS
from shared.conversations import CONVERSATIONS, appended
from shared.crm import CUSTOMERS, LEADS
from shared.exceptions import (
    AlreadyExistsError,
    ChannelError,
    ComptoirError,
    NotFoundError,
    PreconditionFailedError,
)
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.memory import COLLECTION as MEMORY
from shared.memory import CustomerMemory
from shared.models import CampaignTouch, Conversation, Customer, Lead, Message, Product, mutate
from shared.progress import Progress
from shared.queue.base import WorkItem

if TYPE_CHECKING:
    from shared.app import App
    from shared.channels.base import Channel
    from shared.models import Shop, WhatsAppTemplate

RUNS = "campaign_runs"
BATCHES = "campaign_batches"
SENDS = "campaign_sends"
DONE_COUNTS = "campaign_run_done"  # batches done per run: the last one closes the run
BATCH_SIZE = 100
LEASE_SECONDS = 600.0  # a batch's worker is presumed dead after this long
SEND_THREADS = 8  # messages of a batch in flight at once (the pace still holds)
# Free text on WhatsApp only well inside the 24-hour window; a template outside it.
FREE_TEXT_SECONDS = 23 * 3600.0
# Graph (undeliverable, own number, not allowed) and Bot API (blocked by the user) answers that
# mean the address cannot take the message.
UNREACHABLE_CODES = frozenset({131026, 131021, 131030, 403})


# --- starting and resuming a run --------------------------------------------------------------


def run_id_for(campaign: Campaign, slot: float | None) -> str:
    return (
        f"{campaign.id}~{int(slot)}" if slot is not None else f"{campaign.id}~m{new_sortable_id()}"
    )


def start(app: App, shop: Shop, campaign: Campaign, slot: float | None, now: float) -> Run | None:
    """Create the run for ``slot`` (None: a run by hand) and its batches; None when that slot's
    run exists already (a duplicate trigger)."""
    run = _new_run(app, shop.id, campaign, slot, now)
    return None if run is None else _plan(app, shop, campaign, run, now)


def _new_run(app: App, shop: str, campaign: Campaign, slot: float | None, now: float) -> Run | None:
    run = Run(
        id=run_id_for(campaign, slot),
        campaign_id=campaign.id,
        slot=slot,
        started_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        app.store.create(shop, RUNS, run.id, run.to_doc())
    except AlreadyExistsError:
        return None
    return run


def _plan(app: App, shop: Shop, campaign: Campaign, run: Run, now: float) -> Run:
    """Select the audience and write it in batches (create-only: a plan interrupted and made
    again keeps the batches written; the send records keep anyone from being sent twice)."""
    store = app.store
    selected = audience.select(store, shop, campaign, now)
    recipients = _not_reached_yet(app, shop.id, campaign, run, selected)
    numbers = range(0, len(recipients), BATCH_SIZE)
    for number, start_at in enumerate(numbers):
        batch = Batch(
            id=f"{run.id}~{number:05d}",
            run_id=run.id,
            campaign_id=campaign.id,
            recipients=recipients[start_at : start_at + BATCH_SIZE],
            created_at=now,
            updated_at=now,
        )
        with suppress(AlreadyExistsError):
            store.create(shop.id, BATCHES, batch.id, batch.to_doc())
    planned = run.model_copy(
        update={
            "status": "sending" if recipients else "done",
            "audience": len(recipients),
            "by_channel": dict(Counter(r.channel for r in recipients)),
            "left_out": dict(selected.left_out),
            "batches": len(numbers),
            "finished_at": None if recipients else now,
        }
    )
    saved, _ = mutate(store, shop.id, RUNS, run.id, Run, lambda _: planned)
    log_event(
        "campaign_run_planned",
        shop=shop.id,
        campaign=campaign.id,
        run=run.id,
        audience=len(recipients),
        batches=len(numbers),
    )
    return saved


def _not_reached_yet(
    app: App, shop: str, campaign: Campaign, run: Run, selected: audience.Audience
) -> list[Recipient]:
    """The audience without whom a campaign that reaches once has reached already (their
    send record would keep them from a second message anyway: this keeps the run's figures
    true)."""
    if campaign.repeat == "run":
        return selected.recipients
    kept: list[Recipient] = []
    for first in range(0, len(selected.recipients), BATCH_SIZE):
        part = selected.recipients[first : first + BATCH_SIZE]
        ids = [send_id_for(campaign, run, r) for r in part]
        reached = app.store.get_many(shop, SENDS, ids)
        kept.extend(r for r, i in zip(part, ids, strict=True) if i not in reached)
    if len(kept) < len(selected.recipients):
        selected.left_out["reached_before"] += len(selected.recipients) - len(kept)
    return kept


def unfinished_runs(app: App, shop: str, campaign_id: str) -> list[Run]:
    runs = [Run.from_doc(d) for d in app.store.scan(shop, RUNS, where={"campaign_id": campaign_id})]
    return [r for r in runs if r.status != "done"]


def open_batches(app: App, shop: str, run_id: str) -> list[Batch]:
    docs = app.store.scan(shop, BATCHES, where={"run_id": run_id})
    return [b for b in (Batch.from_doc(d) for d in docs) if b.status != "done"]


def queue_batches(app: App, shop: str, batches: Sequence[Batch], now: float) -> int:
    """Hand ``batches`` to the worker; a batch a live worker holds is left to it."""
    queued = 0
    for batch in batches:
        if batch.status == "sending" and (batch.lease_until or 0.0) > now:
            continue
        app.queue.send(
            WorkItem(
                kind="campaign_batch",
                shop=shop,
                group=f"campaign:{batch.run_id}",  # a run's batches one at a time, in order
                # Each hand-over its own id, or the queue's dedupe window would drop a batch
                # handed over again soon after (two copies are harmless: the lease and the send
                # records keep them from sending twice).
                dedup_id=f"{batch.id}~{new_sortable_id()}",
                payload={"batch": batch.id},
            )
        )
        queued += 1
    return queued


def on_schedule(app: App, shop_id: str, campaign_id: str, slot: float | None) -> None:
    """The schedule's call: start the run of ``slot`` (if any), hand the campaign's unfinished
    batches to the worker, and ask to be woken while a run is not done."""
    now = time.time()
    shop = app.shops.get(shop_id)
    campaign = load_campaign(app.store, shop_id, campaign_id)
    if not campaign.enabled:
        return  # stopped: its unsent batches wait until it is enabled again
    if slot is not None:
        start(app, shop, campaign, slot, now)
    unfinished = unfinished_runs(app, shop_id, campaign_id)
    for run in unfinished:
        if run.status == "planning" and run.started_at < now - LEASE_SECONDS:
            run = _plan(app, shop, campaign, run, now)  # its planner died
        queue_batches(app, shop_id, open_batches(app, shop_id, run.id), now)
    if unfinished:
        _wake(app, shop_id, campaign_id, now + LEASE_SECONDS)


def launch(app: App, shop: Shop, campaign: Campaign, now: float) -> Run | None:
    """Start a run by hand and hand its batches to the worker, as the schedule does (the
    console's launch: nothing is sent here); None while a run of the campaign is not done."""
    if unfinished_runs(app, shop.id, campaign.id):
        return None
    run = _new_run(app, shop.id, campaign, None, now)
    assert run is not None  # a run by hand has an id of its own
    # Two launches at once may both have found none: each then sees the other and gives way
    # (at worst neither runs and the operator launches again; never two runs).
    if any(other.id != run.id for other in unfinished_runs(app, shop.id, campaign.id)):
        app.store.delete(shop.id, RUNS, run.id)
        return None
    run = _plan(app, shop, campaign, run, now)
    queue_batches(app, shop.id, open_batches(app, shop.id, run.id), now)
    if run.status != "done":
        _wake(app, shop.id, campaign.id, now + LEASE_SECONDS)  # a dead worker's batch goes again
    return run


def _wake(app: App, shop: str, campaign_id: str, at: float) -> None:
    """Have the schedule call the campaign at ``at``; a campaign run only by hand has no
    schedule: its operator runs it again."""
    with suppress(NotFoundError):
        schedules.wake(app.store, shop, SCHEDULE_KIND, campaign_id, at)


def handle_batch(app: App, item: WorkItem) -> None:
    """The worker's ``campaign_batch``."""
    send_batch(app, app.shops.get(item.shop), str(item.payload["batch"]), time.time())


# --- a batch ----------------------------------------------------------------------------------


@dataclass
class BatchResult:
    statuses: Counter[str] = field(default_factory=Counter)
    deferred_until: float | None = None  # quiet hours: the batch goes again then
    skipped_batch: bool = False  # another worker holds it, or it is done


def send_batch(
    app: App,
    shop: Shop,
    batch_id: str,
    now: float,
    *,
    take_over: bool = False,
    ignore_quiet_hours: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Send a batch's messages (see the module docstring). ``take_over`` takes a batch whose
    lease is not over (an operator resuming a run they know is dead)."""
    store = app.store
    result = BatchResult()
    doc = store.get(shop.id, BATCHES, batch_id)
    if doc is None:
        raise NotFoundError(f"no campaign batch {batch_id!r}")
    batch = Batch.from_doc(doc)
    held = batch.status == "sending" and (batch.lease_until or 0.0) > now and not take_over
    if batch.status == "done" or held:
        result.skipped_batch = True
        return result
    campaign = load_campaign(store, shop.id, batch.campaign_id)
    if not campaign.enabled:
        result.skipped_batch = True  # stopped by its operator: left pending
        return result
    quiet = campaign.schedule.quiet_hours
    until = (
        None
        if quiet is None or ignore_quiet_hours
        else schedules.quiet_until(quiet, shop.timezone, now)
    )
    if until is not None:
        _wake(app, shop.id, campaign.id, until)
        result.deferred_until = until
        return result
    leased = batch.model_copy(update={"status": "sending", "lease_until": now + LEASE_SECONDS})
    try:
        lease = store.update(shop.id, BATCHES, batch.id, leased.to_doc(), if_version=doc.version)
    except PreconditionFailedError:
        result.skipped_batch = True  # another worker took it first
        return result
    run_doc = store.get(shop.id, RUNS, batch.run_id)
    if run_doc is None:
        raise NotFoundError(f"no campaign run {batch.run_id!r}")
    run = Run.from_doc(run_doc)
    sender = _Sender(BatchContext(app, shop, campaign, batch.recipients, now), run)
    with ThreadPoolExecutor(max_workers=SEND_THREADS) as pool:
        for status in pool.map(sender.send, batch.recipients):
            result.statuses[status] += 1
            if progress is not None:
                progress(1)
    # One event per batch, not per message: a send costs 3.15 store operations of its 4 allowed.
    events.record(store, shop.id, "campaign_send", campaign=campaign.id, run=run.id,
                  batch=batch.id, statuses=dict(result.statuses))  # fmt: skip
    finished = leased.model_copy(update={"status": "done", "lease_until": None})
    try:  # only the batch's last holder counts it done (another may have taken it over)
        store.update(shop.id, BATCHES, batch.id, finished.to_doc(), if_version=lease.version)
    except PreconditionFailedError:
        return result
    if store.increment(shop.id, DONE_COUNTS, run.id, "n") >= run.batches:
        _close(app, shop.id, run.id)
    log_event(
        "campaign_batch_sent",
        shop=shop.id,
        campaign=campaign.id,
        run=run.id,
        **{status: count for status, count in result.statuses.items()},
    )
    return result


def _close(app: App, shop: str, run_id: str) -> None:
    def close(run: Run) -> Run:
        if run.status == "done":
            return run
        return run.model_copy(update={"status": "done", "finished_at": time.time()})

    mutate(app.store, shop, RUNS, run_id, Run, close)


class BatchContext:
    """What the messages of some recipients need, read once for all of them: their customers,
    conversations, orders and products, and who opted out since the run was planned."""

    def __init__(
        self, app: App, shop: Shop, campaign: Campaign, recipients: Sequence[Recipient], now: float
    ) -> None:
        from shared import marketing

        store = app.store
        self.app, self.shop, self.campaign, self.now = app, shop, campaign, now
        ids = [r.customer_id for r in recipients]
        self.customers = {
            i: Customer.from_doc(d) for i, d in store.get_many(shop.id, CUSTOMERS, ids).items()
        }
        talks = [r.conversation_id for r in recipients if r.conversation_id]
        self.conversations = {
            i: (Conversation.from_doc(d), d.version)
            for i, d in store.get_many(shop.id, CONVERSATIONS, talks).items()
        }
        self.refused = marketing.opted_out(
            store, shop.id, [marketing.address_of(r.channel, r.address) for r in recipients]
        )
        orders = [r.order_id for r in recipients if r.order_id]
        self.orders = {
            i: Lead.from_doc(d) for i, d in store.get_many(shop.id, LEADS, orders).items()
        }
        products = [r.product_id for r in recipients if r.product_id]
        self.products = {
            i: Product.from_doc(d) for i, d in store.get_many(shop.id, PRODUCTS, products).items()
        }
        self.has_brief = bool(campaign.message.brief.strip())
        self.writer = None if app.offline_for(shop) else app.llm_for(shop)  # offline: as written
        # The model personalises from what the shop remembers of each customer.
        self.memories = (
            {i: CustomerMemory.from_doc(d) for i, d in store.get_many(shop.id, MEMORY, ids).items()}
            if self.writer is not None and self.has_brief
            else {}
        )

    def message(self, recipient: Recipient) -> tuple[str | None, WhatsAppTemplate | None, str]:
        """The free text (None where only a template may go), the template, and how the
        template reads in a preview or a conversation."""
        message = self.campaign.message
        subject = render.Subject(
            shop=self.shop,
            recipient=recipient,
            customer=self.customers.get(recipient.customer_id),
            order=self.orders.get(recipient.order_id or ""),
            product=self.products.get(recipient.product_id or ""),
            memory=_remembered(self.memories.get(recipient.customer_id)),
        )
        template = render.template_for(message.template, subject) if message.template else None
        preview = render.template_preview(message.template, subject) if message.template else ""
        window = recipient.channel != "whatsapp" or (
            recipient.last_inbound_at is not None
            and recipient.last_inbound_at > self.now - FREE_TEXT_SECONDS
        )
        text = None
        if self.has_brief and window:
            rendered = render.brief_text(self.campaign, subject)
            written = render.personalised(self.writer, self.campaign, subject, rendered)
            text = render.with_hint(self.shop, recipient.lang, written)
        return text, template, preview


class _Sender:
    """Sends one batch's messages (see the module docstring)."""

    def __init__(self, context: BatchContext, run: Run) -> None:
        self.context, self.run = context, run
        self.app, self.shop, self.campaign, self.now = (
            context.app,
            context.shop,
            context.campaign,
            context.now,
        )
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()

    def channel(self, name: str) -> Channel:
        from shared.channels import open_channel

        with self._lock:
            if name not in self._channels:
                self._channels[name] = open_channel(self.app, self.shop, name)
            return self._channels[name]

    def send(self, recipient: Recipient) -> str:
        from shared import marketing

        store, shop, context = self.app.store, self.shop, self.context
        send_id = send_id_for(self.campaign, self.run, recipient)
        customer = context.customers.get(recipient.customer_id)
        address = marketing.address_of(recipient.channel, recipient.address)
        skip = ""
        if customer is None:
            skip = "customer_gone"
        elif customer.marketing_opt_out or address in context.refused:
            skip = "opted_out"  # since the run was planned
        record = Send(
            id=send_id,
            campaign_id=self.campaign.id,
            run_id=self.run.id,
            customer_id=recipient.customer_id,
            channel=recipient.channel,
            conversation_id=recipient.conversation_id,
            order_id=recipient.order_id,
            status="skipped" if skip else "sending",
            reason=skip,
            at=self.now,
            created_at=self.now,
            updated_at=self.now,
        )
        # A channel the shop has not configured stops the batch before any record is claimed:
        # the customer is reached once it is configured, not marked failed for good.
        channel = None if skip else self.channel(recipient.channel)
        try:
            created = store.create(shop.id, SENDS, send_id, record.to_doc())
        except AlreadyExistsError:
            return self._already(send_id)
        if skip:
            return "skipped"
        try:
            text, template, preview = context.message(recipient)
            pace_for(shop, recipient.channel).wait()
            assert channel is not None
            sent = channel.send_marketing(recipient.address, text, template)
        except ChannelError as error:
            status, reason = _failure(error)
            failed = record.model_copy(
                update={"status": status, "reason": reason, "error_code": error.code}
            )
            store.update(shop.id, SENDS, send_id, failed.to_doc(), if_version=created.version)
            return status
        except ComptoirError as error:  # a brief that does not render for this customer
            failed = record.model_copy(update={"status": "failed", "reason": type(error).__name__})
            store.update(shop.id, SENDS, send_id, failed.to_doc(), if_version=created.version)
            return "failed"
        done = record.model_copy(
            update={
                "status": "sent",
                "message_id": sent.id,
                "template": sent.template,
                "text": preview if sent.template else (text or preview),
                "sent_at": time.time(),
            }
        )
        store.update(shop.id, SENDS, send_id, done.to_doc(), if_version=created.version)
        self._join_conversation(recipient, done)
        return "sent"

    def _already(self, send_id: str) -> str:
        """A send record found in place: nothing is sent again. One left "sending" past its
        lease is a send whose worker died: marked unknown (the provider may have it)."""
        store = self.app.store
        doc = store.get(self.shop.id, SENDS, send_id)
        if doc is None:
            return "duplicate"
        existing = Send.from_doc(doc)
        if existing.status == "sending" and existing.at < self.now - LEASE_SECONDS:
            gone = existing.model_copy(update={"status": "unknown", "reason": "worker_died"})
            with suppress(PreconditionFailedError):
                store.update(self.shop.id, SENDS, send_id, gone.to_doc(), if_version=doc.version)
        return "duplicate"

    def _join_conversation(self, recipient: Recipient, send: Send) -> None:
        """The message joins the customer's conversation (what the next turn reads), which
        records the campaign its replies answer."""
        loaded = self.context.conversations.get(recipient.conversation_id or "")
        if loaded is None or recipient.conversation_id is None:
            return
        message = Message(
            id=new_sortable_id(),
            role="assistant",
            text=send.text,
            at=send.sent_at or self.now,
            lang=recipient.lang,
            external_ids=[send.message_id] if send.message_id else None,
            delivery="sent",
            campaign_id=self.campaign.id,
        )
        touch = CampaignTouch(
            campaign_id=self.campaign.id, run_id=self.run.id, send_id=send.id, at=message.at
        )
        mutate(
            self.app.store,
            self.shop.id,
            CONVERSATIONS,
            recipient.conversation_id,
            Conversation,
            lambda c: c.model_copy(
                update={"recent": appended(c.recent, [message]), "campaign": touch}
            ),
            start=loaded,
        )


def _remembered(memory: CustomerMemory | None, items: int = 5) -> str:
    if memory is None:
        return ""
    newest = [item.text for item in memory.items[-items:]]
    return " ".join([memory.summary, *newest]).strip()[: render.MEMORY_CHARS]


def send_id_for(campaign: Campaign, run: Run, recipient: Recipient) -> str:
    if campaign.repeat == "run":
        return f"{run.id}~{recipient.subject}"
    return f"{campaign.id}~{recipient.subject}"


def _failure(error: ChannelError) -> tuple[SendStatus, str]:
    if error.code == 131047:
        return "skipped", "outside_window"
    if error.code in UNREACHABLE_CODES:
        return "skipped", "unreachable"
    return "failed", "provider_error" if error.retryable else "refused"


# --- by hand: preview, dry run, run --------------------------------------------------------------


@dataclass
class Preview:
    audience: int
    by_channel: dict[str, int]
    left_out: dict[str, int]
    messages: list[tuple[Recipient, str]]  # the first ones, as they would read
    rendered: int  # messages rendered (all of them on a dry run)
    seconds: float


def preview(app: App, shop: Shop, campaign: Campaign, now: float, limit: int | None) -> Preview:
    """The audience and its messages, rendered as they would go (the first ``limit``; all when
    None: a dry run); nothing is sent or written."""
    started = time.perf_counter()
    selected = audience.select(app.store, shop, campaign, now)
    chosen = selected.recipients if limit is None else selected.recipients[:limit]
    messages: list[tuple[Recipient, str]] = []
    for first in range(0, len(chosen), BATCH_SIZE):
        part = chosen[first : first + BATCH_SIZE]
        context = BatchContext(app, shop, campaign, part, now)
        for recipient in part:
            text, _, template_preview = context.message(recipient)
            shown = text or template_preview or "(nothing can go: outside the window, no template)"
            if len(messages) < (limit or 20):
                messages.append((recipient, shown))
    return Preview(
        audience=len(selected.recipients),
        by_channel=selected.by_channel,
        left_out=dict(selected.left_out),
        messages=messages,
        rendered=len(chosen),
        seconds=time.perf_counter() - started,
    )


def run_by_hand(
    app: App,
    shop: Shop,
    campaign: Campaign,
    now: float,
    *,
    ignore_quiet_hours: bool = False,
    progress: Progress | None = None,
) -> tuple[Run, Counter[str]]:
    """Resume the campaign's unfinished run, else start one, and send its batches here (not
    through the queue). A batch another worker holds is taken over: its send records still keep
    anyone from being sent twice."""
    unfinished = unfinished_runs(app, shop.id, campaign.id)
    run = unfinished[0] if unfinished else start(app, shop, campaign, None, now)
    if run is None:  # a manual run id is unique: never taken
        raise AlreadyExistsError("the run exists")
    if run.status == "planning":
        run = _plan(app, shop, campaign, run, now)
    statuses: Counter[str] = Counter()
    handled = run.audience - sum(len(b.recipients) for b in open_batches(app, shop.id, run.id))

    def step(count: int) -> None:
        nonlocal handled
        handled += count
        if progress is not None:
            progress(handled, run.audience)

    for batch in open_batches(app, shop.id, run.id):
        result = send_batch(
            app,
            shop,
            batch.id,
            time.time(),
            take_over=True,
            ignore_quiet_hours=ignore_quiet_hours,
            progress=step,
        )
        if result.deferred_until is not None:
            statuses["deferred"] += len(batch.recipients)
            break
        statuses.update(result.statuses)
    loaded = app.store.get(shop.id, RUNS, run.id)
    return (Run.from_doc(loaded) if loaded is not None else run), statuses
