"""``schedule_reminder``, ``list_reminders``, ``cancel_reminder``: reminders a customer asks for
in chat, sent back on their channel at the time they said (``shared.jobs``, ``shared.when``).

A reminder is not marketing: it goes even to a customer who opted out of offers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from shared import conversations, crm, hours, when
from shared.exceptions import NotFoundError, ToolError
from shared.tools.base import Tool, TurnContext

if TYPE_CHECKING:
    from shared.jobs import Job

TEXT_CHARS = 300
MAX_PENDING = 10  # reminders waiting per conversation
MAX_AHEAD_DAYS = 366
LABELS = {"fr": "Rappel : {text}", "en": "Reminder: {text}"}


class ScheduleReminderArgs(BaseModel):
    when: str = Field(
        description="When, as the customer said it, in their language: 'demain à 9h', "
        "'dans 2 heures', 'vendredi', 'next Monday at 2:30pm'."
    )
    text: str = Field(description=f"What to remind them of (at most {TEXT_CHARS} characters).")


class ListRemindersArgs(BaseModel):
    pass


class CancelReminderArgs(BaseModel):
    id: str = Field(description="A reminder id returned by schedule_reminder or list_reminders.")


def _shown(ctx: TurnContext, job: Job) -> dict[str, Any]:
    at = job.schedule.at or 0.0
    moment = datetime.fromtimestamp(at, hours.zone(ctx.shop.timezone))
    return {"id": job.id, "when": hours.when(moment, ctx.now, ctx.lang), "text": job.text}


def _pending(ctx: TurnContext) -> list[Job]:
    from shared import jobs  # lazy: a turn that sets no reminder never loads the job runner

    found = jobs.list_jobs(ctx.store, ctx.shop.id, conversation_id=ctx.conversation.id)
    return [j for j in found if j.created_by == "customer" and jobs.pending(j, ctx.now)]


class ScheduleReminder(Tool):
    name = "schedule_reminder"
    description = (
        "Set a reminder the customer asked for ('rappelle-moi demain à 9h de payer', 'remind me "
        "on Friday'): it is sent here at that time. Pass their words for when; if the result "
        "says the time is not understood, ask them for a day and an hour."
    )
    Args = ScheduleReminderArgs

    def offered(self, ctx: TurnContext) -> bool:
        # The widget has no way to be reached later; Messenger and Instagram let the bot write
        # only within 24 hours of the customer's message.
        return ctx.conversation.channel in ("whatsapp", "telegram")

    def run(self, ctx: TurnContext, args: ScheduleReminderArgs) -> dict[str, Any]:
        channel = ctx.conversation.channel
        if channel != "whatsapp" and channel != "telegram":
            raise ToolError("reminders are sent on WhatsApp or Telegram only, not in this chat")
        text = " ".join(args.text.split())
        if not text:
            raise ToolError("text is empty: ask what to remind them of")
        if len(text) > TEXT_CHARS:
            raise ToolError(f"text is over {TEXT_CHARS} characters: keep the essential")
        at = when.parse(args.when, ctx.now, ctx.shop.timezone)
        if at is None:
            raise ToolError("when not understood: ask the customer for a day and an hour")
        if at.timestamp() > ctx.now + MAX_AHEAD_DAYS * 86400:
            raise ToolError("when is more than a year ahead")
        if len(_pending(ctx)) >= MAX_PENDING:
            raise ToolError(f"already {MAX_PENDING} reminders waiting: cancel one first")
        from shared import jobs
        from shared.schedules import ScheduleSpec

        customer, ctx.conversation = crm.own_contact(ctx.store, ctx.shop.id, ctx.conversation)
        label = LABELS.get(ctx.lang, LABELS["en"])
        job = jobs.Job(
            shop=ctx.shop.id,
            schedule=ScheduleSpec(at=at.timestamp(), timezone=ctx.shop.timezone),
            customer_id=customer.id,
            channel=channel,
            text=label.format(text=text),
            created_by="customer",
            conversation_id=ctx.conversation.id,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        saved = jobs.save_job(ctx.store, job, ctx.now)
        ctx.conversation = conversations.update(
            ctx.store,
            ctx.shop.id,
            ctx.conversation.id,
            lambda c: c.model_copy(update={"reminders_set": c.reminders_set + 1}),
        )
        return {"scheduled": True, **_shown(ctx, saved)}


class ListReminders(Tool):
    name = "list_reminders"
    description = "List the reminders the customer set in this conversation that are still to come."
    Args = ListRemindersArgs

    def offered(self, ctx: TurnContext) -> bool:
        return ctx.conversation.reminders_set > 0

    def run(self, ctx: TurnContext, args: ListRemindersArgs) -> dict[str, Any]:
        return {"reminders": [_shown(ctx, job) for job in _pending(ctx)]}


class CancelReminder(Tool):
    name = "cancel_reminder"
    description = "Cancel one of the customer's reminders (its id from list_reminders)."
    Args = CancelReminderArgs

    def offered(self, ctx: TurnContext) -> bool:
        return ctx.conversation.reminders_set > 0

    def run(self, ctx: TurnContext, args: CancelReminderArgs) -> dict[str, Any]:
        # Only a reminder asked in this conversation: an id from elsewhere is unknown here.
        if args.id not in {job.id for job in _pending(ctx)}:
            raise ToolError("no such reminder to come: call list_reminders")
        from shared import jobs

        try:
            jobs.disable(ctx.store, ctx.shop.id, args.id, ctx.now)
        except NotFoundError as exc:
            raise ToolError("no such reminder to come: call list_reminders") from exc
        return {"cancelled": True, "id": args.id}
