"""Deployable functions: each module parses its trigger, calls the library, shapes the response.

``FUNCTIONS`` is the one list of them and of what each needs to deploy. The Google Cloud deploy
(``infra/gcp/deploy.py``), the dev server (``shared/devserver.py``) and the tests read it;
``serverless.yml`` stays hand-written for osls, and ``tests/deploy/test_aws_package.py`` proves
that the packaged template says exactly the same. Plain data, importing nothing of the project:
every function's package ships this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LLM_SECRETS = (
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "DEEPSEEK_API_KEY",
    "DASHSCOPE_API_KEY",
    "MISTRAL_API_KEY",
    "ZAI_API_KEY",
    "GEMINI_API_KEY",
)
# Who makes payment links needs the providers' API keys; only the IPN reads their webhook
# secrets. The worker's channel turns make links too, but two more secrets would take its
# environment past Lambda's 4 KB (tests/deploy/test_aws_package.py): until the keys are read at
# run time, a WhatsApp or Telegram order of a Wave or Stripe shop gets no link (the shop calls).
PAYMENT_API_SECRETS = ("WAVE_API_KEY", "STRIPE_API_KEY")


@dataclass(frozen=True)
class Schedule:
    """A task a function runs on a schedule, called with ``POST {"task": task}``."""

    task: str
    cron: str  # five fields, in time_zone; name the weekdays (AWS counts them from 1, cron 0)
    time_zone: str = "Africa/Dakar"


@dataclass(frozen=True)
class Function:
    """``functions/<name>.py``, with the targets ``lambda_handler`` (AWS) and ``<name>``
    (functions-framework), and ``handler`` (an ``HTTPFunction``) when it has routes."""

    name: str
    short: str  # in Google service account ids (at most 30 characters with the stage prefix)
    memory_mb: int
    # A function's limit differs by platform: API Gateway answers 503 at 30 s, whatever the
    # Lambda's own; SQS wants its visibility timeout at least the worker's (serverless.yml).
    aws_timeout_s: int
    gcp_timeout_s: int
    gcp_max_instances: int
    routes: tuple[str, ...] = ()  # "METHOD /path" on the HTTP API; a {name} is one segment
    queue_trigger: bool = False  # the queue delivers its work (SQS event source, Pub/Sub push)
    schedules: tuple[Schedule, ...] = ()
    secrets: tuple[str, ...] = ()  # from Secrets Manager / Secret Manager, only its own
    settings: tuple[str, ...] = ()  # other variables it alone reads (per-stage parameters)
    # "read_write": the store's documents; "heartbeat": reads, and writes only the health
    # heartbeat (AWS can narrow a role that far; Firestore's IAM cannot).
    store: Literal["read_write", "heartbeat"] = "read_write"
    publishes: bool = False  # sends work to the queue

    @property
    def public(self) -> bool:
        """Reachable without a cloud identity (browsers, Meta, Telegram): it has routes."""
        return bool(self.routes)


FUNCTIONS: tuple[Function, ...] = (
    # A widget handoff queues the operator's notification, hence publishes.
    Function(
        "chat", "chat", memory_mb=1024, aws_timeout_s=29, gcp_timeout_s=60, gcp_max_instances=20,
        routes=(
            "POST /chat", "GET /chat/history",
            "POST /chat/voice/session", "POST /chat/voice/tools", "POST /chat/voice/transcript",
        ),
        secrets=(*LLM_SECRETS, *PAYMENT_API_SECRETS),
        settings=("SEARXNG_URL",), publishes=True,
    ),
    Function(
        "health", "health", memory_mb=256, aws_timeout_s=6, gcp_timeout_s=10, gcp_max_instances=5,
        routes=("GET /healthz",), store="heartbeat",
    ),
    # Meta and Telegram want a 200 quickly: the turn itself runs in the worker.
    Function(
        "webhook_whatsapp", "whatsapp", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=20, routes=("GET /webhooks/whatsapp", "POST /webhooks/whatsapp"),
        secrets=("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"),
        settings=("WHATSAPP_PHONE_NUMBER_ID",), publishes=True,
    ),
    Function(
        "webhook_telegram", "telegram", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=20, routes=("POST /webhooks/telegram",),
        secrets=("TELEGRAM_WEBHOOK_SECRET",), publishes=True,
    ),
    # The MCP server: agents call the shop's tools (payment links included) with an API key.
    Function(
        "mcp_server", "mcp", memory_mb=512, aws_timeout_s=29, gcp_timeout_s=60,
        gcp_max_instances=10, routes=("POST /mcp", "GET /mcp"), secrets=PAYMENT_API_SECRETS,
    ),
    Function(
        "webhook_nextcloud", "nextcloud", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=20, routes=("POST /webhooks/nextcloud",),
        secrets=("NEXTCLOUD_BOT_SECRET",), settings=("NEXTCLOUD_ALLOWED_BACKENDS",),
        publishes=True,
    ),
    # SES (through SNS) and any signed forwarder post received mail; the reply goes from the
    # worker. The SNS signing certificate is fetched, so no secret but the inbound one.
    Function(
        "webhook_email", "email", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=10, routes=("POST /webhooks/email/ses", "POST /webhooks/email/inbound"),
        secrets=("EMAIL_INBOUND_SECRET",), settings=("EMAIL_ADDRESS", "EMAIL_SNS_TOPIC_ARN"),
        publishes=True,
    ),
    Function(
        "webhook_messenger", "messenger", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=20, routes=("GET /webhooks/messenger", "POST /webhooks/messenger"),
        secrets=("MESSENGER_VERIFY_TOKEN", "MESSENGER_APP_SECRET"),
        settings=("MESSENGER_PAGE_ID", "INSTAGRAM_ACCOUNT_ID"), publishes=True,
    ),
    # Providers want a 200 quickly: the customer's confirmation goes through the queue.
    Function(
        "payments", "payments", memory_mb=512, aws_timeout_s=10, gcp_timeout_s=30,
        gcp_max_instances=10, routes=("POST /webhooks/payments/{provider}",),
        secrets=("PAYMENT_TEST_SECRET", "WAVE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"),
        publishes=True,
    ),
    # Scheduled work: the tick fires the due schedules (campaigns, reminders) and the
    # consolidation each shop's memory consolidation, onto the queue; retention erases
    # conversations past their shop's retention_days itself (store work only).
    # Public (it has a route): TASKS_SECRET guards it; the scheduler on AWS invokes it directly.
    Function(
        "tasks", "tasks", memory_mb=512, aws_timeout_s=60, gcp_timeout_s=60,
        gcp_max_instances=2, routes=("POST /tasks/{name}",),
        schedules=(
            Schedule("tick", "*/5 * * * *"),
            Schedule("consolidate", "17 * * * *"),
            Schedule("retention", "40 3 * * *"),
        ),
        secrets=("TASKS_SECRET",), publishes=True,
    ),
    # The operator console's API (shared/admin): replies go out through the channels, a launch
    # or a human reply may queue work, hence the channel tokens and publishes.
    Function(
        "admin", "admin", memory_mb=512, aws_timeout_s=29, gcp_timeout_s=60,
        gcp_max_instances=5,
        routes=(
            "POST /admin/api/login", "POST /admin/api/login/link", "POST /admin/api/logout",
            "GET /admin/api/me", "POST /admin/api/password", "GET /admin/api/audit",
            "GET /admin/api/conversations", "GET /admin/api/conversations/{id}",
            "POST /admin/api/conversations/{id}/reply",
            "POST /admin/api/conversations/{id}/takeover",
            "POST /admin/api/conversations/{id}/release",
            "POST /admin/api/conversations/{id}/read",
            "GET /admin/api/events",
            "GET /admin/api/orders", "GET /admin/api/orders/{id}",
            "POST /admin/api/orders/{id}/status",
            "GET /admin/api/customers", "GET /admin/api/customers/{id}",
            "GET /admin/api/customers/{id}/export", "POST /admin/api/customers/{id}/erase",
            "GET /admin/api/shop", "POST /admin/api/shop", "POST /admin/api/catalog",
            "POST /admin/api/faq", "GET /admin/api/health",
            "GET /admin/api/campaigns", "POST /admin/api/campaigns",
            "GET /admin/api/campaigns/{id}", "POST /admin/api/campaigns/{id}/preview",
            "POST /admin/api/campaigns/{id}/launch", "GET /admin/api/campaigns/{id}/report",
            "POST /admin/api/campaigns/{id}/enabled",
            "GET /admin/api/jobs", "POST /admin/api/jobs", "POST /admin/api/jobs/{id}/enabled",
            "POST /admin/api/jobs/{id}/run",
        ),
        secrets=(
            "ADMIN_SESSION_SECRET", "WHATSAPP_ACCESS_TOKEN", "TELEGRAM_BOT_TOKEN",
            "NEXTCLOUD_BOT_SECRET", "MESSENGER_PAGE_ACCESS_TOKEN",
        ),
        settings=(
            "WHATSAPP_PHONE_NUMBER_ID", "NEXTCLOUD_ALLOWED_BACKENDS",
            "EMAIL_ADDRESS", "EMAIL_SEND_MODE", "EMAIL_SMTP_HOST", "EMAIL_SMTP_USER",
        ),
        publishes=True,
    ),
    # Not public: only the queue calls it. A turn may queue more work (handing a conversation
    # to the operator), hence publishes.
    Function(
        "worker", "worker", memory_mb=1024, aws_timeout_s=90, gcp_timeout_s=240,
        gcp_max_instances=20, queue_trigger=True,
        # EMAIL_SMTP_PASSWORD would take the environment past Lambda's 4 KB (as the payment
        # keys would): e-mail replies go through SES or a relay that needs no password.
        secrets=(
            *LLM_SECRETS, "WHATSAPP_ACCESS_TOKEN", "TELEGRAM_BOT_TOKEN", "NEXTCLOUD_BOT_SECRET",
            "MESSENGER_PAGE_ACCESS_TOKEN",
        ),
        settings=(
            "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_OPERATOR", "TELEGRAM_OPERATOR_CHAT_ID",
            "NEXTCLOUD_ALLOWED_BACKENDS", "SEARXNG_URL", "TTS_PROVIDER",
            "EMAIL_ADDRESS", "EMAIL_SEND_MODE", "EMAIL_SMTP_HOST", "EMAIL_SMTP_USER",
        ),
        publishes=True,
    ),
)  # fmt: skip
