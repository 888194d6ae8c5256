"""Scheduled jobs: a message sent at a time or on a cron, to one customer or to a campaign
segment, and the reminders customers ask for in chat (``created_by="customer"``).

A job (``jobs/{id}`` in the shop's scope) is registered with the schedule runner as kind
``"job"``; the runner claims each fire once and the worker calls ``on_schedule``. A run is
recorded create-only (``job_runs/{job}~{slot}``, kept when a redelivered fire comes back so the
run resumes), and each message is claimed create-only BEFORE the provider is called
(``job_sends/{job}~{slot}~{customer}``), as campaign sends are: a redelivery, a second worker or
a resumed run never sends twice. A message goes:

* on the channel the job names, else the one the customer last wrote on (a reminder: the
  conversation it was asked in); the message joins that conversation;
* on WhatsApp, as free text inside the 24-hour window, else as the shop's
  ``whatsapp_template`` (``Channel.send_marketing``); skipped when the shop has none;
* for an operator's job, only to customers who did not opt out of marketing (it is marketing,
  and ends with the shop's opt-out hint). A reminder the customer asked for is not marketing:
  it goes even to a customer who opted out of offers, without the hint.

A fixed ``text`` goes as written; a ``prompt`` is written by the shop's model for each customer
(``campaigns.render.personalised``, with its price guard; the offline model sends the prompt's
text as it is).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator

from shared import conversations, crm, marketing, schedules
from shared.campaigns import audience, render
from shared.campaigns.models import (
    Campaign,
    CampaignChannel,
    CampaignMessage,
    CampaignSchedule,
    Recipient,
    Segment,
)
from shared.campaigns.pace import pace_for
from shared.campaigns.runner import FREE_TEXT_SECONDS
from shared.exceptions import (
    AlreadyExistsError,
    ChannelError,
    ComptoirError,
    InvalidInputError,
    NotFoundError,
    UnknownSessionError,
)
from shared.hours import zone
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.models import Conversation, Customer, Message, Model, mutate
from shared.queue.base import WorkItem

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop
    from shared.store import Store

JOBS = "jobs"
RUNS = "job_runs"
SENDS = "job_sends"
KIND = "job"  # the schedule runner's kind (schedules.SCHEDULED)
_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Job(Model):
    id: str = Field(default_factory=lambda: f"job-{new_sortable_id()}", pattern=_ID)
    shop: str
    schedule: schedules.ScheduleSpec
    customer_id: str | None = None  # the target: one customer...
    segment: Segment | None = None  # ...or a campaign segment
    channel: CampaignChannel | None = None  # None: where the customer last wrote
    text: str = Field(default="", max_length=2000)  # sent as written...
    prompt: str = Field(default="", max_length=2000)  # ...or written by the shop's model
    enabled: bool = True
    last_run_at: float | None = None
    created_by: Literal["operator", "customer"] = "operator"
    conversation_id: str | None = None  # a reminder: the conversation it was asked in
    created_at: float
    updated_at: float

    @model_validator(mode="after")
    def _complete(self) -> Job:
        if (self.customer_id is None) == (self.segment is None):
            raise ValueError("give one target: customer_id or segment")
        if bool(self.text.strip()) == bool(self.prompt.strip()):
            raise ValueError("give a text or a prompt, not both")
        if self.created_by == "customer" and self.customer_id is None:
            raise ValueError("a customer's reminder targets that customer")
        return self

    @property
    def marketing(self) -> bool:
        """An operator's message is marketing; a reminder the customer asked for is not."""
        return self.created_by == "operator"


class JobRun(Model):
    id: str  # "{job}~{slot}"
    job_id: str
    slot: float | None = None  # the schedule's fire; None: run by hand
    statuses: dict[str, int] = Field(default_factory=dict)
    started_at: float
    finished_at: float | None = None
    created_at: float
    updated_at: float


# --- jobs ---------------------------------------------------------------------------------------


def build(shop: Shop, description: Mapping[str, Any], now: float) -> Job:
    """An operator's job from its JSON description (``jobs add``'s file, the console's form):
    ``{schedule: {cron | at, timezone?}, customer_id | segment, channel?, text | prompt,
    enabled?}``, ``at`` epoch seconds or an ISO local time in the shop's timezone. Checked
    whole: InvalidInputError naming the problem."""
    if not isinstance(description, Mapping):
        raise InvalidInputError("a job is a JSON object")
    schedule = description.get("schedule") or {}
    if not isinstance(schedule, Mapping):
        raise InvalidInputError("schedule: expected an object")
    schedule = {"timezone": shop.timezone, **schedule}
    if isinstance(schedule.get("at"), str):
        schedule["at"] = _iso_local(schedule["at"], schedule["timezone"])
    try:
        return Job.model_validate(
            {
                **description,
                "schedule": schedule,
                "shop": shop.id,
                "created_by": "operator",
                "created_at": now,
                "updated_at": now,
            }
        )
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'job'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidInputError("; ".join(problems[:5])) from None


def _iso_local(text: str, timezone: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"schedule.at: {text!r} is not an ISO date and time") from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=zone(timezone))
        except ValueError as exc:
            raise InvalidInputError(f"schedule.timezone: {exc}") from None
    return moment.timestamp()


def save_job(store: Store, job: Job, now: float) -> Job:
    """Store ``job`` (a new one, or a change) and (re)schedule it."""
    job = job.model_copy(update={"updated_at": now})
    store.put(job.shop, JOBS, job.id, job.to_doc())
    schedules.save_entry(store, job.shop, KIND, job.id, job.schedule, now, enabled=job.enabled)
    return job


def load_job(store: Store, shop: str, job_id: str) -> Job:
    doc = store.get(shop, JOBS, job_id) if re.fullmatch(_ID, job_id) else None
    if doc is None:
        raise NotFoundError(f"no job {job_id!r}")
    return Job.from_doc(doc)


def list_jobs(store: Store, shop: str, *, conversation_id: str | None = None) -> list[Job]:
    where = {"conversation_id": conversation_id} if conversation_id is not None else None
    return sorted(
        (Job.from_doc(d) for d in store.scan(shop, JOBS, where=where)), key=lambda j: j.id
    )


def set_enabled(store: Store, shop: str, job_id: str, enabled: bool, now: float) -> Job:
    """Stop a job (it stays listed, disabled, and its schedule is gone) or start it again."""
    load_job(store, shop, job_id)  # NotFoundError naming it
    job, _ = mutate(
        store,
        shop,
        JOBS,
        job_id,
        Job,
        lambda j: j.model_copy(update={"enabled": enabled, "updated_at": now}),
    )
    if enabled:
        schedules.save_entry(store, shop, KIND, job_id, job.schedule, now)
    else:
        schedules.remove_entry(store, shop, KIND, job_id)
    return job


def disable(store: Store, shop: str, job_id: str, now: float) -> Job:
    return set_enabled(store, shop, job_id, False, now)


def pending(job: Job, now: float) -> bool:
    """Whether the job has a fire to come."""
    return job.enabled and schedules.next_fire(job.schedule, now) is not None


# --- running ------------------------------------------------------------------------------------


def on_schedule(app: App, shop_id: str, job_id: str, slot: float | None) -> None:
    """The schedule's call (``schedules.SCHEDULED["job"]``): run the fire ``slot``."""
    if slot is None:
        return  # jobs never ask to be woken
    with suppress(NotFoundError):
        job = load_job(app.store, shop_id, job_id)
        if job.enabled:
            run(app, app.shops.get(shop_id), job, slot, time.time())


def queue_run(app: App, shop: str, job_id: str, now: float) -> str:
    """Have the worker run the job now, as a fire of its schedule (the console's "run now":
    nothing is sent in the request); the id of the run it makes."""
    slot = float(int(now))
    app.queue.send(
        WorkItem(
            kind="scheduled",
            shop=shop,
            group=f"{KIND}:{job_id}",
            dedup_id=f"{schedules.entry_id(shop, KIND, job_id)}~now{slot:.0f}",
            payload={"kind": KIND, "target": job_id, "slot": slot},
        )
    )
    return run_id_for(job_id, slot)


def run_id_for(job_id: str, slot: float | None) -> str:
    return f"{job_id}~{int(slot)}" if slot is not None else f"{job_id}~m{new_sortable_id()}"


def run(app: App, shop: Shop, job: Job, slot: float | None, now: float) -> JobRun:
    """Send the job's messages for ``slot`` (None: now, by hand, a run of its own); a run
    delivered again finishes what is left and sends nobody twice."""
    store = app.store
    run_id = run_id_for(job.id, slot)
    record = JobRun(
        id=run_id, job_id=job.id, slot=slot, started_at=now, created_at=now, updated_at=now
    )
    with suppress(AlreadyExistsError):  # a redelivered fire: resume it
        store.create(shop.id, RUNS, run_id, record.to_doc())
    statuses: Counter[str] = Counter()
    sender = _Sender(app, shop, job, run_id, now)
    for recipient in recipients(store, shop, job, now):
        statuses[sender.send(recipient)] += 1
    finished = record.model_copy(
        update={"statuses": dict(statuses), "finished_at": time.time(), "updated_at": time.time()}
    )
    store.put(shop.id, RUNS, run_id, finished.to_doc())
    mutate(store, shop.id, JOBS, job.id, Job, lambda j: j.model_copy(update={"last_run_at": now}))
    log_event("job_run", shop=shop.id, job=job.id, **statuses)
    return finished


def recipients(store: Store, shop: Shop, job: Job, now: float) -> list[Recipient]:
    """Who the job reaches now: its customer where they can be reached, or its segment's
    audience (``campaigns.audience``, which leaves out the opted-out)."""
    if job.segment is not None:
        channels = [job.channel] if job.channel else job.segment.channels
        like = Campaign(
            id="job",
            name=job.id,
            segment=job.segment.model_copy(update={"channels": channels}),
            message=CampaignMessage(brief=job.text or job.prompt),
            schedule=CampaignSchedule(quiet_hours=None),
            created_at=job.created_at,
            updated_at=job.updated_at,
        )
        return audience.select(store, shop, like, now).recipients
    customer = crm.get_customer(store, shop.id, job.customer_id)
    if customer is None:
        return []
    ids = [i.split(":", 1)[1] for i in customer.identities if ":" in i]
    talks = [
        Conversation.from_doc(d)
        for d in store.get_many(shop.id, conversations.CONVERSATIONS, ids).values()
    ]
    reachable = [
        c
        for c in talks
        if c.channel in ("whatsapp", "telegram")
        and c.channel_user
        and c.customer_id == customer.id
        and (job.channel is None or c.channel == job.channel)
    ]
    # A reminder answers where it was asked; otherwise where the customer last wrote.
    reachable.sort(key=lambda c: (c.id == job.conversation_id, c.last_inbound_at or 0.0))
    if not reachable:
        return []
    talk = reachable[-1]
    lang = next((m.lang for m in reversed(talk.recent) if m.lang), shop.languages[0])
    return [
        Recipient(
            customer_id=customer.id,
            channel="whatsapp" if talk.channel == "whatsapp" else "telegram",
            address=talk.channel_user or "",
            conversation_id=talk.id,
            name=customer.name,
            lang=lang,
            last_inbound_at=talk.last_inbound_at,
            subject=customer.id,
        )
    ]


class _Sender:
    """One run's messages, each claimed before it is sent (see the module docstring)."""

    def __init__(self, app: App, shop: Shop, job: Job, run_id: str, now: float) -> None:
        from shared.channels import open_channel

        self.app, self.shop, self.job, self.run_id, self.now = app, shop, job, run_id, now
        self.writer = None if app.offline_for(shop) else app.llm_for(shop)
        self._open = open_channel

    def send(self, recipient: Recipient) -> str:
        store, shop, job = self.app.store, self.shop, self.job
        send_id = f"{self.run_id}~{recipient.customer_id}"
        customer = crm.get_customer(store, shop.id, recipient.customer_id)
        skip = "customer_gone" if customer is None else ""
        if not skip and job.marketing and _refused(store, shop.id, customer, recipient):
            skip = "opted_out"
        record = {
            "job_id": job.id,
            "run_id": self.run_id,
            "customer_id": recipient.customer_id,
            "channel": recipient.channel,
            "status": "skipped" if skip else "sending",
            "reason": skip,
            "at": self.now,
        }
        try:
            created = store.create(shop.id, SENDS, send_id, record)
        except AlreadyExistsError:
            return "duplicate"
        if skip:
            return "skipped"
        try:
            text = self._text(recipient, customer)
            window = recipient.channel != "whatsapp" or (
                recipient.last_inbound_at is not None
                and recipient.last_inbound_at > self.now - FREE_TEXT_SECONDS
            )
            pace_for(shop, recipient.channel).wait()
            channel = self._open(self.app, shop, recipient.channel)
            sent = channel.send_marketing(
                recipient.address, text if window else None, shop.whatsapp_template
            )
        except ChannelError as error:
            reason = "outside_window" if error.code == 131047 else "refused"
            failed = {**record, "status": "failed", "reason": reason, "error_code": error.code}
            store.update(shop.id, SENDS, send_id, failed, if_version=created.version)
            return "failed"
        except ComptoirError as error:  # the model could not write it
            failed = {**record, "status": "failed", "reason": type(error).__name__}
            store.update(shop.id, SENDS, send_id, failed, if_version=created.version)
            return "failed"
        done = {**record, "status": "sent", "message_id": sent.id, "template": sent.template}
        store.update(shop.id, SENDS, send_id, done, if_version=created.version)
        self._join_conversation(recipient, text, sent.id, sent.template)
        return "sent"

    def _text(self, recipient: Recipient, customer: Customer | None) -> str:
        job = self.job
        text = job.text.strip()
        if not text:
            like = Campaign(
                id="job",
                name=job.id,
                message=CampaignMessage(brief=job.prompt),
                created_at=job.created_at,
                updated_at=job.updated_at,
            )
            subject = render.Subject(self.shop, recipient, customer, None, None)
            text = render.personalised(self.writer, like, subject, job.prompt.strip())
        return render.with_hint(self.shop, recipient.lang, text) if job.marketing else text

    def _join_conversation(
        self, recipient: Recipient, text: str, message_id: str, template: bool
    ) -> None:
        if recipient.conversation_id is None:
            return
        message = Message(
            id=new_sortable_id(),
            role="assistant",
            text=text,
            at=time.time(),
            lang=recipient.lang,
            external_ids=[message_id],
            delivery="template" if template else "sent",
        )
        store, shop = self.app.store, self.shop.id
        conversations.add_message_once(
            store, shop, recipient.conversation_id, message, channel=recipient.channel
        )
        with suppress(UnknownSessionError):  # the conversation was erased meanwhile
            conversations.update(
                store,
                shop,
                recipient.conversation_id,
                lambda c: c.model_copy(
                    update={"recent": conversations.appended(c.recent, [message])}
                ),
            )


def _refused(store: Store, shop: str, customer: Customer | None, recipient: Recipient) -> bool:
    """Whether the customer or their address said STOP to marketing."""
    if customer is not None and customer.marketing_opt_out:
        return True
    address = marketing.address_of(recipient.channel, recipient.address)
    return address is not None and address in marketing.opted_out(store, shop, [address])
