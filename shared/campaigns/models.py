"""What a campaign is (a segment, a message, a schedule) and what its runs leave behind."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.models import Model, OrderStatus
from shared.schedules import QuietHours

CampaignChannel = Literal["whatsapp", "telegram"]
SendStatus = Literal["sending", "sent", "failed", "skipped", "unknown"]
RunStatus = Literal["planning", "sending", "done"]
# What a variable of a WhatsApp template may name (see render.variables).
FIELDS = (
    "customer.name",
    "customer.first_name",
    "shop.name",
    "shop.url",
    "shop.contact",
    "order.id",
    "order.product",
    "order.variant",
    "order.quantity",
    "order.total",
    "product.title",
    "product.url",
    "product.price",
)
CAMPAIGN_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class Segment(Model):
    """Who a campaign speaks to. Every condition given must hold; opted-out customers, erased
    numbers and customers no channel can reach are never in it."""

    order_status: list[OrderStatus] = Field(default_factory=list)  # has an order in one of these
    order_idle_hours: float | None = Field(default=None, gt=0)  # ...unchanged this long
    no_order_days: int | None = Field(default=None, ge=1)  # ordered before, not in N days
    products: list[str] = Field(default_factory=list)  # ordered or was shown one of these
    categories: list[str] = Field(default_factory=list)  # ...or a product of these categories
    restocked: bool = False  # such a product is back in stock since the customer saw it
    channels: list[CampaignChannel] = Field(default_factory=list)
    inactive_days: int | None = Field(default=None, ge=1)  # last wrote more than N days ago
    created_after: float | None = None  # the customer's creation time, epoch seconds
    created_before: float | None = None
    tags: list[str] = Field(default_factory=list)  # has every one of these tags
    languages: list[str] = Field(default_factory=list)


class TemplateMessage(Model):
    """An approved WhatsApp template, its body variables mapped from the customer's fields."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="fr", min_length=2, max_length=15)
    variables: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("variables")
    @classmethod
    def _known_fields(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in FIELDS:
                raise ValueError(
                    f"{name!r} is not a field a variable can name ({', '.join(FIELDS)})"
                )
        return names


class CampaignMessage(Model):
    """The text (a Jinja2 brief, personalised by the model unless ``personalise`` is off) and
    the WhatsApp template sent where free text is not allowed (outside the 24-hour window)."""

    brief: str = Field(default="", max_length=2000)
    personalise: bool = True
    template: TemplateMessage | None = None

    @model_validator(mode="after")
    def _something_to_send(self) -> CampaignMessage:
        if not self.brief.strip() and self.template is None:
            raise ValueError("give a brief, a WhatsApp template, or both")
        return self


class CampaignSchedule(Model):
    """When it runs, in the shop's timezone: once (``at``, epoch seconds), on a cron
    expression, or only when run by hand (neither)."""

    at: float | None = None
    cron: str | None = None
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)  # None: any time
    max_per_run: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_way(self) -> CampaignSchedule:
        if self.at is not None and self.cron is not None:
            raise ValueError("give `at` or `cron`, not both")
        return self


class Campaign(Model):
    id: str = Field(pattern=CAMPAIGN_ID)
    name: str = Field(min_length=1, max_length=100)
    recipe: str | None = None  # shared/campaigns/recipes.py: what filled the defaults
    segment: Segment = Field(default_factory=Segment)
    message: CampaignMessage
    schedule: CampaignSchedule = Field(default_factory=CampaignSchedule)
    # "run": each run may reach a customer again; "once": never the same customer twice
    # ("order": never twice about the same order) whatever the runs.
    repeat: Literal["run", "once", "order"] = "run"
    enabled: bool = True
    created_at: float
    updated_at: float

    def to_doc(self) -> dict[str, Any]:
        doc = super().to_doc()
        if self.schedule.quiet_hours is None:  # "any time", kept: leaving it out is the default
            doc["schedule"]["quiet_hours"] = None
        return doc


class Recipient(Model):
    """Where one customer of the audience is reached, and what their message is about."""

    customer_id: str
    channel: CampaignChannel
    address: str  # a WhatsApp wa_id (digits), a Telegram chat id
    conversation_id: str | None = None  # the conversation the message joins, when there is one
    name: str = ""
    lang: str = "fr"
    last_inbound_at: float | None = None
    order_id: str | None = None  # the order the message is about (abandoned order)
    product_id: str | None = None  # the product it is about (back in stock)
    subject: str  # what "once" counts: the customer, the order, or the product's restock


class Run(Model):
    id: str  # "{campaign}~{slot}"
    campaign_id: str
    slot: float | None = None  # the schedule's fire time; None: run by hand
    status: RunStatus = "planning"
    audience: int = 0
    by_channel: dict[str, int] = Field(default_factory=dict)
    left_out: dict[str, int] = Field(default_factory=dict)  # reason -> customers not reached
    batches: int = 0
    started_at: float
    finished_at: float | None = None
    created_at: float
    updated_at: float


class Batch(Model):
    """Up to BATCH_SIZE recipients of a run, sent by one worker invocation."""

    id: str  # "{run}~{number}"
    run_id: str
    campaign_id: str
    status: Literal["pending", "sending", "done"] = "pending"
    lease_until: float | None = None  # while "sending": when another worker may take it over
    recipients: list[Recipient]
    created_at: float
    updated_at: float


class Send(Model):
    """One message of a campaign to one customer, created before the provider is called."""

    id: str
    campaign_id: str
    run_id: str
    customer_id: str
    channel: CampaignChannel
    conversation_id: str | None = None
    order_id: str | None = None
    status: SendStatus = "sending"
    reason: str = ""  # why it failed or was skipped
    error_code: int | None = None
    message_id: str | None = None  # the provider's
    template: bool = False
    text: str = ""
    at: float  # when it was claimed
    sent_at: float | None = None
    created_at: float
    updated_at: float
