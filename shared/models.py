"""Domain models. Documents in the store are these models dumped to JSON-compatible dicts."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared import hours
from shared.backoff import Backoff
from shared.exceptions import NotFoundError, PreconditionFailedError
from shared.store import Doc, Store

Money = Decimal
Role = Literal["user", "assistant"]
Channel = Literal["web", "whatsapp", "telegram", "nextcloud", "email", "messenger", "instagram"]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_doc(cls, doc: Doc) -> Self:
        return cls.model_validate({**doc.data, "id": doc.id})


M = TypeVar("M", bound=Model)
CONFLICT_ATTEMPTS = 10  # conditional writes tried before a conflict is reported
CONFLICT_BACKOFF = Backoff(attempts=CONFLICT_ATTEMPTS, base_delay=0.005, max_delay=0.05)


def mutate(
    store: Store,
    shop: str,
    collection: str,
    doc_id: str,
    model: type[M],
    change: Callable[[M], M],
    *,
    start: tuple[M, int] | None = None,
) -> tuple[M, int]:
    """Apply ``change`` to a stored document with optimistic concurrency: re-read and re-apply
    while another writer gets in first (the one such loop: every model goes through it). Skips
    the write when nothing changes; stamps ``updated_at``. ``start`` is the document and version
    the caller already holds, tried before reading it. Returns the document as saved and its
    version. Raises NotFoundError if it does not exist, PreconditionFailedError if it kept
    changing."""
    for _ in CONFLICT_BACKOFF:  # between tries, let the winner finish
        if start is None:
            doc = store.get(shop, collection, doc_id)
            if doc is None:
                raise NotFoundError(f"{collection}/{doc_id} does not exist")
            start = model.from_doc(doc), doc.version
        (current, version), start = start, None
        changed = change(current)
        if changed == current:
            return current, version
        changed = changed.model_copy(update={"updated_at": time.time()})
        try:
            saved = store.update(shop, collection, doc_id, changed.to_doc(), if_version=version)
        except PreconditionFailedError:
            continue
        return changed, saved.version
    raise PreconditionFailedError(f"{collection} kept changing; try again")


class WhatsAppTemplate(Model):
    """An approved WhatsApp template: the only message allowed outside the 24-hour window."""

    name: str = "hello_world"
    language: str = "en_US"
    components: list[dict[str, Any]] = Field(default_factory=list)  # as the Graph API takes them


GEMINI_LIVE_MODEL = "gemini-live-2.5-flash-preview"
GEMINI_LIVE_VOICE = "Puck"


class VoiceSettings(Model):
    """Live voice in the widget (``shared/voice.py``): the realtime provider, its model and the
    voice it speaks with. The provider's key is the server's (OPENAI_API_KEY, GEMINI_API_KEY)."""

    enabled: bool = False
    provider: Literal["openai", "gemini"] = "openai"
    model: str = Field(default="gpt-realtime", min_length=1, max_length=100, pattern=r"^\S+$")
    voice: str = Field(default="alloy", min_length=1, max_length=40, pattern=r"^[\w-]+$")

    @model_validator(mode="before")
    @classmethod
    def _gemini_defaults(cls, data: Any) -> Any:
        """Gemini Live's own model and voice when the shop names the provider only (the
        fields' defaults are OpenAI's, which Gemini would refuse)."""
        if isinstance(data, dict) and data.get("provider") == "gemini":
            return {"model": GEMINI_LIVE_MODEL, "voice": GEMINI_LIVE_VOICE, **data}
        return data


class Plan(Model):
    """An access plan a shop sells (the tutor persona's use case): ``daily_messages`` a day for
    ``period_days`` days, for ``price`` in ``currency``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1, max_length=60)
    price: Money = Field(gt=0, decimal_places=2)
    currency: str  # ISO 4217
    period_days: int = Field(ge=1, le=366)
    daily_messages: int = Field(ge=1)

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        return " ".join(name.split())  # a line of the limit message

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        return _iso_currency(code)


class Subscription(Model):
    """A customer's paid plan (``id`` is the customer key, see ``shared/quotas.py``), with the
    plan's terms as bought: a plan changed or removed later leaves it as it was paid for."""

    id: str
    plan_id: str
    plan_name: str
    daily_messages: int
    started_at: float
    expires_at: float
    payment_events: list[str] = Field(default_factory=list)  # the latest, for idempotency
    created_at: float
    updated_at: float


def _iso_currency(code: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{3}", code):
        raise ValueError(f"{code!r} is not an ISO 4217 code (e.g. XOF, EUR, USD)")
    return code.upper()


MAX_PLANS = 6  # the limit message lists them all


# The languages the assistant speaks: its prompts, customer texts and language detection.
LANGUAGES = ("fr", "en")
SYSTEM_PROMPT_ADDITION_CHARS = 2000  # the shop's own instructions stay a small part of the prompt
# The line campaign messages end with, per language (``Shop.marketing_optout_hint``).
OPTOUT_HINTS = {
    "fr": "Répondez STOP pour ne plus recevoir nos offres.",
    "en": "Reply STOP to stop receiving our offers.",
}
OPTOUT_HINT_CHARS = 120


class VoiceNotes(Model):
    """A shop's spoken replies to voice notes (shared/channels/voice_notes.py). The language is
    each reply's own."""

    enabled: bool = True
    voice: str = Field(default="", max_length=50, pattern=r"^[A-Za-z0-9_.+-]*$")  # "": default
    speed: float = Field(default=1.0, ge=0.5, le=2.0)


class Shop(Model):
    """A shop's settings. ``id`` is the store scope of everything the shop owns.

    The checks here are the ones every load can afford; ``shared/shops.py`` checks what needs
    more (the phone region's tables, the personas' templates, the LLM providers) when a setting
    changes.
    """

    id: str
    name: str = Field(max_length=100)
    currency: str = "XOF"  # ISO 4217
    # The first is the default: the language of a message too short to tell.
    languages: list[str] = Field(default_factory=lambda: ["fr", "en"], min_length=1)
    phone_region: str = "SN"  # ISO 3166 region for parsing local phone numbers
    contact: str = Field(default="", max_length=300)
    url: str = ""  # the storefront: product links are url + "/products/" + handle
    persona: str = "sales"  # the prompt templates shared/prompts/{persona}.*.j2
    offer: str = Field(default="", max_length=500)  # offered to a customer hesitating on price
    # The shop's own instructions, added to the system prompt in a delimited section.
    system_prompt_addition: str = Field(default="", max_length=SYSTEM_PROMPT_ADDITION_CHARS)
    llm_provider: str | None = None  # overrides LLM_PROVIDER for this shop
    llm_model: str | None = Field(default=None, max_length=100, pattern=r"^\S+$")
    catalog_version: int = 0  # bumped by every import that changes something; caches key on it
    # Channels (DEFAULT_SHOP takes WHATSAPP_PHONE_NUMBER_ID and the *_OPERATOR settings instead).
    whatsapp_phone_number_id: str | None = None
    whatsapp_template: WhatsAppTemplate | None = None  # sent when a reply is outside the window
    # An approved authentication template whose {{1}} is a one-time code (shared/linking.py):
    # how a code reaches a number outside the window. None: the number must write first.
    whatsapp_code_template: WhatsAppTemplate | None = None
    operator_whatsapp: str | None = None  # the shop's own WhatsApp, told of handoffs
    operator_telegram_chat_id: str | None = None
    # When a person answers a handoff: open-close ranges per weekday, in ``timezone``
    # ({"mon": ["09:00-18:00"], ...}; a day not listed is closed). None: always open.
    business_hours: dict[hours.Weekday, list[str]] | None = None
    timezone: str = "Africa/Dakar"
    # Plans and daily quotas (shared/quotas.py): the plans on sale, and the messages a day of a
    # customer without a plan (None: unlimited, as a sales shop wants).
    plans: list[Plan] = Field(default_factory=list, max_length=MAX_PLANS)
    free_daily_messages: int | None = Field(default=None, ge=0)
    # Who collects the payment links' money (shared/payments PROVIDERS: test, wave, stripe).
    payment_provider: str = "test"
    # Campaigns: the WhatsApp number's messaging tier, in messages a second.
    whatsapp_messages_per_second: int = Field(default=80, ge=1, le=1000)
    # Conversations (and their messages) not written to for this many days are erased by the
    # daily ``retention`` task (shared/retention.py); None: kept.
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    # The line every campaign message ends with, per language; it must name the STOP keyword.
    marketing_optout_hint: dict[str, str] = Field(default_factory=lambda: dict(OPTOUT_HINTS))
    # The web_search tool (shared/tools/web_search.py), when SEARXNG_URL is set too.
    web_search: bool = False
    # Live voice in the widget (shared/voice.py); None: off.
    voice: VoiceSettings | None = None
    # A reply to a customer's voice note goes as a voice note too (TTS_PROVIDER).
    voice_notes: VoiceNotes = Field(default_factory=VoiceNotes)

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        name = " ".join(name.split())
        if not name:
            raise ValueError("give the shop's name")
        return name

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        return _iso_currency(code)

    @field_validator("languages")
    @classmethod
    def _spoken(cls, codes: list[str]) -> list[str]:
        codes = [code.strip().lower() for code in codes]
        for code in codes:
            if code not in LANGUAGES:
                spoken = ", ".join(LANGUAGES)
                raise ValueError(f"{code!r} is not a language the assistant speaks ({spoken})")
        return list(dict.fromkeys(codes))

    @field_validator("marketing_optout_hint")
    @classmethod
    def _hints(cls, hints: dict[str, str]) -> dict[str, str]:
        for lang, hint in hints.items():
            if lang not in LANGUAGES:
                spoken = ", ".join(LANGUAGES)
                raise ValueError(f"{lang!r} is not a language the assistant speaks ({spoken})")
            if len(hint) > OPTOUT_HINT_CHARS:
                raise ValueError(f"{lang}: at most {OPTOUT_HINT_CHARS} characters")
            if not re.search(r"\bSTOP\b", hint):
                raise ValueError(f"{lang}: must tell the customer to send STOP")
        return hints

    @field_validator("phone_region")
    @classmethod
    def _region_code(cls, code: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", code):
            raise ValueError(f"{code!r} is not an ISO 3166 region code (e.g. SN, CI, FR)")
        return code.upper()

    @field_validator("url")
    @classmethod
    def _web_address(cls, url: str) -> str:
        url = url.strip()
        if not url:
            return url
        parts = urlsplit(url)
        web = parts.scheme in ("http", "https") and bool(parts.netloc)
        if not web or any(c.isspace() for c in url):
            raise ValueError(f"{url!r} is not a web address (https://shop.example)")
        return url.rstrip("/")

    @field_validator("business_hours")
    @classmethod
    def _valid_hours(
        cls, value: dict[hours.Weekday, list[str]] | None
    ) -> dict[hours.Weekday, list[str]] | None:
        if value is not None:
            hours.check_hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        hours.zone(name)
        return name

    @field_validator("plans")
    @classmethod
    def _distinct_plans(cls, plans: list[Plan]) -> list[Plan]:
        ids = [plan.id for plan in plans]
        if len(set(ids)) != len(ids):
            raise ValueError("two plans have the same id")
        return plans


class Variant(Model):
    id: str
    title: str = ""
    sku: str | None = None
    price: Money
    compare_at_price: Money | None = None
    available: bool = True
    inventory: int | None = None
    options: dict[str, str] = Field(default_factory=dict)


class Product(Model):
    id: str  # Shopify's handle, or the importer's own id
    title: str
    description: str = ""
    vendor: str = ""
    category: str = ""
    tags: list[str] = Field(default_factory=list)
    url: str = ""
    image: str = ""
    currency: str
    variants: list[Variant] = Field(min_length=1)

    @property
    def price(self) -> Money:
        """The lowest variant price: what 'from X' means in a reply."""
        return min(v.price for v in self.variants)

    @property
    def available(self) -> bool:
        return any(v.available for v in self.variants)


class FaqEntry(Model):
    id: str
    question: str
    answer: str
    lang: str = "fr"
    tags: list[str] = Field(default_factory=list)


MediaKind = Literal["image", "audio", "voice", "video", "document", "sticker"]
Delivery = Literal["pending", "accepted", "template", "sent", "delivered", "read", "failed"]


class Media(Model):
    """An attachment of a channel message, fetched from the channel when it is answered."""

    kind: MediaKind
    ref: str  # the channel's media id (WhatsApp) or file id (Telegram)
    mime_type: str = ""
    filename: str = ""


def card_variant(product: Product, preferred: str | None = None) -> Variant:
    """The variant a product's card offers: ``preferred`` while it is in stock, else the first
    in stock, else the first."""
    in_stock = [v for v in product.variants if v.available]
    chosen = next((v for v in in_stock if v.id == preferred), None)
    return chosen or (in_stock[0] if in_stock else product.variants[0])


class ShownProduct(Model):
    """A product an assistant message showed as a card, and the variant that card offered."""

    id: str
    variant_id: str

    @classmethod
    def of(cls, product: Product) -> ShownProduct:
        return cls(id=product.id, variant_id=card_variant(product).id)


class PaymentButton(Model):
    """A reply's "Pay" button: the order's payment link and what it collects."""

    url: str
    amount: Money
    currency: str


class Message(Model):
    id: str  # sortable by time, so a conversation's messages read back in order
    role: Role
    text: str
    at: float
    tokens_in: int | None = None  # usage of the model call that wrote an assistant message
    tokens_out: int | None = None
    # An assistant message: its cards (the history rebuilds them from today's catalogue) and
    # the language it is written in (the cards' prices are written the same way).
    products: list[ShownProduct] | None = None
    lang: str | None = None
    # Channels: the channel's ids (an inbound message's; each part of a reply, as it is sent),
    # an attachment, the last customer message a reply answers, and where its delivery stands.
    external_ids: list[str] | None = None
    media: Media | None = None
    reply_to: str | None = None
    delivery: Delivery | None = None
    error_code: int | None = None  # the channel's code when delivery failed
    payment: PaymentButton | None = None  # a reply that made a payment link: its button
    campaign_id: str | None = None  # a campaign's message (shared/campaigns)
    operator: str | None = None  # a person's reply from the console: the operator's e-mail
    # True: a line of a live voice call's transcript (shared/voice.py); None keeps docs short.
    voice: bool | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("message text is empty")
        return text


class CampaignTouch(Model):
    """The campaign message a conversation last received: what its replies and orders answer."""

    campaign_id: str
    run_id: str
    send_id: str
    at: float


class PendingLink(Model):
    """A one-time code sent to a WhatsApp number for this conversation (``shared/linking.py``):
    only a keyed hash of the code is kept, never the code."""

    phone: str  # E.164: the number the code went to
    code_hash: str  # empty once used, expired or void: the hourly count below stays
    expires_at: float
    attempts: int = 0  # wrong codes typed so far
    codes_sent: int = 1  # codes sent for this conversation since ``hour_started_at``
    hour_started_at: float


class Conversation(Model):
    id: str  # the session id: at least 128 random bits
    channel: Channel = "web"
    customer_id: str | None = None
    state: Literal["bot", "human"] = "bot"  # "human": handed to the shop; the bot stays silent
    handoff_reason: str = ""
    handoff_at: float | None = None  # when the assistant last handed it to the shop
    operator_replied_at: float | None = None  # the shop's last answer (set by an operator console)
    operator_read_at: float | None = None  # when an operator last read it in the console
    release_reason: str = ""  # why it last came back to the bot on its own ("no_operator_reply")
    pending_retry: bool = False  # every provider failed on the last turn: answer it again
    recent: list[Message] = Field(default_factory=list)  # the last messages, read with the doc
    created_at: float
    updated_at: float
    last_inbound_at: float | None = None
    channel_user: str | None = None  # where channel replies go: a WhatsApp wa_id, a Telegram chat
    campaign: CampaignTouch | None = None
    reminders_set: int = 0  # reminders the customer asked for here (list/cancel offered then)
    # A STOP or START typed before the conversation had a customer: its customer inherits it.
    marketing_opt_out: bool = False
    marketing_changed_at: float | None = None
    # Memory consolidation (shared/consolidator.py): the last message consolidated, and since
    # when messages wait past it (absent: nothing to do, so the consolidator's query skips it).
    memory_watermark: str | None = None
    memory_pending_at: float | None = None
    pending_link: PendingLink | None = None  # a code sent, waiting to be typed back here


class Customer(Model):
    """One person across the channel conversations that proved their phone, or one
    conversation's unverified contact."""

    id: str
    name: str = ""
    phone: str | None = None  # E.164
    # True when the channel gave the phone (WhatsApp): then this customer owns the phone's claim
    # and every identity was linked by the channel. False: an unverified contact, made for the
    # one conversation in ``identities``, its phone only typed there (see shared/crm.py).
    phone_verified: bool = False
    identities: list[str] = Field(default_factory=list)  # "web:<session>", "whatsapp:<cid>"...
    # The identities of other channels linked by a one-time code sent to the verified phone
    # (shared/linking.py): only these count for a web or Telegram conversation (crm.belongs).
    verified_identities: list[str] = Field(default_factory=list)
    memory: list[str] = Field(default_factory=list)  # facts the assistant was asked to keep
    summary: str = ""  # consolidated long-term memory
    marketing_opt_out: bool = False
    marketing_changed_at: float | None = None  # when the customer last said stop or resume
    tags: list[str] = Field(default_factory=list)  # the shop's own labels, for campaign segments
    created_at: float
    updated_at: float


Consenting = TypeVar("Consenting", Customer, Conversation)


def with_marketing_choice(holder: Consenting, opt_out: bool, at: float) -> Consenting:
    """``holder`` with the marketing choice made at ``at``, unless it holds a later one (a
    provider may deliver an old choice after a newer one)."""
    if holder.marketing_changed_at is not None and holder.marketing_changed_at > at:
        return holder
    return holder.model_copy(update={"marketing_opt_out": opt_out, "marketing_changed_at": at})


# An order's life (``shared/orders.py`` says which moves are allowed): "draft" while it is read
# back to the customer, "confirmed" once they agreed (the shop's to handle), "awaiting_payment"
# while a payment link is out, then "paid" (or "payment_failed", or "payment_mismatch" when the
# provider collected another amount or currency), "fulfilled" once delivered, or "cancelled".
# The same conversation's draft becomes its order in place (crm.save_lead).
OrderStatus = Literal[
    "draft",
    "confirmed",
    "awaiting_payment",
    "paid",
    "payment_failed",
    "payment_mismatch",
    "fulfilled",
    "cancelled",
]
LeadStatus = OrderStatus
# Statuses of leads stored before orders had a lifecycle, read as today's.
_LEGACY_STATUS = {
    "new": "confirmed",
    "contacted": "confirmed",
    "won": "fulfilled",
    "lost": "cancelled",
}


class StatusChange(Model):
    """One step of an order's history: the status it moved to, when, and who moved it
    ("customer", "operator", "payment:<provider>", "assistant")."""

    status: OrderStatus
    at: float
    actor: str


class CheckoutRef(Model):
    """The payment link an order has out: the provider's checkout, and what it collects."""

    provider: str
    id: str
    url: str
    expires_at: float | None = None
    amount: Money
    currency: str


class PlanPurchase(Model):
    """A customer's checkouts for one plan (``id``: a digest of the customer key and the plan,
    see ``shared/quotas.py``): the one out, how many were made, and the payment that settled it
    (a settled checkout is handed out no more)."""

    id: str
    customer_key: str
    plan_id: str
    conversation_id: str  # where the customer is told of the payment: the latest that asked
    checkout: CheckoutRef | None = None
    checkouts: int = 0
    settled_by: str | None = None  # the payment id that paid (or mismatched) ``checkout``
    settlement: Literal["paid", "mismatch"] | None = None
    created_at: float
    updated_at: float


class Lead(Model):
    """An order, from its draft in the conversation to its payment and delivery."""

    id: str
    customer_id: str
    conversation_id: str
    channel: Channel
    name: str
    phone: str  # E.164
    address: str
    product_id: str
    product_title: str
    variant_id: str | None = None
    variant_title: str | None = None
    quantity: int = Field(ge=1)
    unit_price: Money
    currency: str
    total: Money
    notes: str = ""
    status: OrderStatus = "confirmed"
    history: list[StatusChange] = Field(default_factory=list)  # oldest first
    checkout: CheckoutRef | None = None  # the live payment link, if one was made
    checkouts: int = 0  # payment links made so far: the next one's claim key
    payment_id: str | None = None  # the payment record that paid it (``payments`` collection)
    campaign_id: str | None = None  # the campaign its conversation was answering (attribution)
    created_at: float
    updated_at: float

    @field_validator("status", mode="before")
    @classmethod
    def _current_name(cls, status: Any) -> Any:
        return _LEGACY_STATUS.get(status, status) if isinstance(status, str) else status
