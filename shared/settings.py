"""Settings: one pydantic model read from the environment, and from a ``.env`` file in dev.

The environment wins over the file. A malformed value fails at start with a message naming the
variable; so does an unknown variable in the ``.env`` file (a typo there would otherwise be
silently ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from shared.exceptions import ConfigError

# The store's URL schemes and the LLM providers, as the ports' tables name them
# (tests/test_settings.py keeps the three in step: the settings import no port).
StoreScheme = Literal["sqlite", "dynamodb", "firestore"]
LLMProvider = Literal["offline", "openai", "deepseek", "qwen", "mistral", "ollama", "zai", "gemini"]
TTSProvider = Literal["offline", "openai", "gemini"]  # shared.speech PROVIDERS


DEV_PAYMENT_TEST_SECRET = "comptoir-dev-payment-test-secret"  # noqa: S105 - public, on purpose
# Set by the platforms in every deployed function: AWS Lambda, and Cloud Run, on which Cloud
# Functions gen 2 run (not FUNCTION_TARGET: functions-framework sets it wherever it runs).
CLOUD_VARIABLES = ("AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE")
# The chat function ends at 29 s on AWS (``functions/__init__.py``: API Gateway answers 503 at
# 30 s). A turn's model calls end by LLM_TURN_BUDGET; the seconds left over are for what comes
# after them (the price guard's safe answer, the reply's save), so the customer gets an answer.
CHAT_TIMEOUT_SECONDS = 29
AFTER_MODEL_SECONDS = 4
MAX_TURN_BUDGET = CHAT_TIMEOUT_SECONDS - AFTER_MODEL_SECONDS


def deployed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a deployed function rather than a laptop or a test."""
    environ = os.environ if environ is None else environ
    return any(environ.get(variable) for variable in CLOUD_VARIABLES)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    store_url: str = Field("sqlite:///.data/comptoir.db", alias="STORE_URL")
    default_shop: str = Field("demo", alias="DEFAULT_SHOP", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    llm_provider: LLMProvider = Field("offline", alias="LLM_PROVIDER")
    llm_model: str = Field("", alias="LLM_MODEL")
    llm_embed_model: str = Field("", alias="LLM_EMBED_MODEL")
    # At most the vector index's MAX_DIMENSIONS (shared.catalog.embeddings).
    llm_embed_dimensions: int | None = Field(None, alias="LLM_EMBED_DIMENSIONS", ge=1, le=8_192)
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY")
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL", pattern=r"^https?://")
    llm_timeout: float = Field(15.0, alias="LLM_TIMEOUT", gt=0, le=300)
    llm_fallbacks: tuple[str, ...] = Field((), alias="LLM_FALLBACKS")
    llm_retries: int = Field(2, alias="LLM_RETRIES", ge=0, le=5)
    llm_max_steps: int = Field(4, alias="LLM_MAX_STEPS", ge=1, le=10)
    llm_turn_budget: float = Field(12.0, alias="LLM_TURN_BUDGET", gt=0)
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    deepseek_api_key: SecretStr | None = Field(None, alias="DEEPSEEK_API_KEY")
    dashscope_api_key: SecretStr | None = Field(None, alias="DASHSCOPE_API_KEY")
    mistral_api_key: SecretStr | None = Field(None, alias="MISTRAL_API_KEY")
    zai_api_key: SecretStr | None = Field(None, alias="ZAI_API_KEY")
    gemini_api_key: SecretStr | None = Field(None, alias="GEMINI_API_KEY")
    # Live voice (shared/voice.py): the realtime APIs that mint the browser's short-lived keys.
    voice_api_base: str = Field(
        "https://api.openai.com", alias="VOICE_API_BASE", pattern=r"^https?://"
    )
    voice_gemini_api_base: str = Field(
        "https://generativelanguage.googleapis.com",
        alias="VOICE_GEMINI_API_BASE",
        pattern=r"^https?://",
    )
    # Voice notes out (shared/speech): who speaks the replies to voice notes. The key is the
    # provider's own variable (OPENAI_API_KEY, GEMINI_API_KEY), or LLM_API_KEY when LLM_PROVIDER
    # is the same provider; TTS_API_BASE replaces the provider's root (a local stub).
    tts_provider: TTSProvider = Field("offline", alias="TTS_PROVIDER")
    tts_model: str = Field("", alias="TTS_MODEL")
    tts_api_base: str | None = Field(None, alias="TTS_API_BASE", pattern=r"^https?://")
    tts_timeout: float = Field(20.0, alias="TTS_TIMEOUT", gt=0, le=120)
    # Where the voice notes sent are kept (under voice-notes/YYYY-MM-DD/): see README.
    media_blob_url: str = Field(".data/media", alias="MEDIA_BLOB_URL")
    allowed_origins: tuple[str, ...] = Field(("*",), alias="ALLOWED_ORIGINS")
    rate_limit_per_minute: int = Field(20, alias="RATE_LIMIT_PER_MINUTE", ge=1)
    client_rate_limit_per_minute: int = Field(60, alias="CLIENT_RATE_LIMIT_PER_MINUTE", ge=1)
    max_message_chars: int = Field(4000, alias="MAX_MESSAGE_CHARS", ge=1, le=4000)
    context_message_limit: int = Field(12, alias="CONTEXT_MESSAGE_LIMIT", ge=0, le=100)
    # A conversation handed to the shop comes back to the assistant when the customer writes
    # this long after the handoff with no reply from the shop; 0: only the release command.
    handoff_release_minutes: int = Field(30, alias="HANDOFF_RELEASE_MINUTES", ge=0, le=10080)
    queue_url: str = Field("inprocess://", alias="QUEUE_URL", pattern=r"^(inprocess|sqs|pubsub)://")
    worker_max_attempts: int = Field(5, alias="WORKER_MAX_ATTEMPTS", ge=1, le=20)
    public_base_url: str = Field(
        "http://127.0.0.1:8080", alias="PUBLIC_BASE_URL", pattern=r"^https?://"
    )
    whatsapp_verify_token: SecretStr | None = Field(None, alias="WHATSAPP_VERIFY_TOKEN")
    whatsapp_app_secret: SecretStr | None = Field(None, alias="WHATSAPP_APP_SECRET")
    whatsapp_access_token: SecretStr | None = Field(None, alias="WHATSAPP_ACCESS_TOKEN")
    whatsapp_phone_number_id: str | None = Field(None, alias="WHATSAPP_PHONE_NUMBER_ID")
    whatsapp_api_base: str = Field(
        "https://graph.facebook.com/v21.0", alias="WHATSAPP_API_BASE", pattern=r"^https?://"
    )
    whatsapp_operator: str | None = Field(None, alias="WHATSAPP_OPERATOR")
    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base: str = Field(
        "https://api.telegram.org", alias="TELEGRAM_API_BASE", pattern=r"^https?://"
    )
    telegram_operator_chat_id: str | None = Field(None, alias="TELEGRAM_OPERATOR_CHAT_ID")
    # Nextcloud Talk bots (shared/channels/nextcloud): the secret given to `occ talk:bot:install`
    # (40 to 128 characters) signs both ways; only posts from these servers are answered.
    nextcloud_bot_secret: SecretStr | None = Field(
        None, alias="NEXTCLOUD_BOT_SECRET", min_length=40, max_length=128
    )
    nextcloud_allowed_backends: tuple[str, ...] = Field((), alias="NEXTCLOUD_ALLOWED_BACKENDS")
    # E-mail (shared/channels/email): the shop's mailbox belongs to DEFAULT_SHOP. The inbound
    # secret signs the generic inbound posts and keys e-mail conversation ids (set it for SES
    # too); replies go through SMTP or SES's SendRawEmail.
    email_address: str | None = Field(None, alias="EMAIL_ADDRESS", pattern=r"^[^@\s]+@[^@\s]+$")
    email_inbound_secret: SecretStr | None = Field(None, alias="EMAIL_INBOUND_SECRET")
    email_sns_topic_arn: str | None = Field(None, alias="EMAIL_SNS_TOPIC_ARN")
    email_send_mode: Literal["smtp", "ses"] = Field("smtp", alias="EMAIL_SEND_MODE")
    email_smtp_host: str | None = Field(None, alias="EMAIL_SMTP_HOST")
    email_smtp_port: int = Field(587, alias="EMAIL_SMTP_PORT", ge=1, le=65535)
    email_smtp_starttls: bool = Field(True, alias="EMAIL_SMTP_STARTTLS")
    email_smtp_user: str | None = Field(None, alias="EMAIL_SMTP_USER")
    email_smtp_password: SecretStr | None = Field(None, alias="EMAIL_SMTP_PASSWORD")
    email_ses_region: str | None = Field(None, alias="EMAIL_SES_REGION")
    email_ses_endpoint: str | None = Field(None, alias="EMAIL_SES_ENDPOINT", pattern=r"^https?://")
    # Messenger and Instagram messaging (shared/channels/messenger): one Meta app, one Page.
    messenger_verify_token: SecretStr | None = Field(None, alias="MESSENGER_VERIFY_TOKEN")
    messenger_app_secret: SecretStr | None = Field(None, alias="MESSENGER_APP_SECRET")
    messenger_page_access_token: SecretStr | None = Field(None, alias="MESSENGER_PAGE_ACCESS_TOKEN")
    messenger_page_id: str | None = Field(None, alias="MESSENGER_PAGE_ID")
    instagram_account_id: str | None = Field(None, alias="INSTAGRAM_ACCOUNT_ID")
    messenger_api_base: str = Field(
        "https://graph.facebook.com/v21.0", alias="MESSENGER_API_BASE", pattern=r"^https?://"
    )
    # Payments (shared/payments): the test provider's secret has a dev default, as it pays
    # nothing; a real provider's keys have none. A deployed function refuses the test provider
    # while its secret is that public default (``shared.checkout.Payments.provider``).
    payment_test_secret: SecretStr = Field(
        SecretStr(DEV_PAYMENT_TEST_SECRET), alias="PAYMENT_TEST_SECRET", min_length=16
    )
    wave_api_key: SecretStr | None = Field(None, alias="WAVE_API_KEY")
    wave_webhook_secret: SecretStr | None = Field(None, alias="WAVE_WEBHOOK_SECRET")
    wave_api_base: str = Field("https://api.wave.com", alias="WAVE_API_BASE", pattern=r"^https?://")
    stripe_api_key: SecretStr | None = Field(None, alias="STRIPE_API_KEY")
    stripe_webhook_secret: SecretStr | None = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    # POST /tasks/{name} (functions/tasks.py) wants it in X-Tasks-Secret; unset, it answers 401.
    tasks_secret: SecretStr | None = Field(None, alias="TASKS_SECRET", min_length=16)
    # The operator console (shared/admin): signs its session cookies; unset, the console is off.
    admin_session_secret: SecretStr | None = Field(
        None, alias="ADMIN_SESSION_SECRET", min_length=32
    )
    admin_session_hours: float = Field(12.0, alias="ADMIN_SESSION_HOURS", gt=0, le=24 * 30)
    # Browsers keep a Secure cookie only over HTTPS (and on http://localhost / 127.0.0.1).
    admin_cookie_secure: bool = Field(True, alias="ADMIN_COOKIE_SECURE")
    # Where operators open the console: the sign-in links `python -m shared operator` prints.
    admin_url: str = Field(
        "http://127.0.0.1:8080/admin/", alias="ADMIN_URL", pattern=r"^https?://\S+$"
    )
    # The largest catalogue or FAQ file the console takes (POST /admin/api/catalog, /faq).
    admin_upload_max_bytes: int = Field(4 * 1024 * 1024, alias="ADMIN_UPLOAD_MAX_BYTES", ge=1024)
    stripe_api_base: str = Field(
        "https://api.stripe.com", alias="STRIPE_API_BASE", pattern=r"^https?://"
    )
    widget_blob_url: str = Field(".data/blob", alias="WIDGET_BLOB_URL")
    # A SearXNG instance for the web_search tool (its JSON format enabled), offered to the shops
    # that turn web search on; unset: no shop searches the web.
    searxng_url: str | None = Field(None, alias="SEARXNG_URL", pattern=r"^https?://")
    # Where each catalogue version's snapshot is written (shared.catalog.snapshot).
    catalog_blob_url: str = Field(".data/catalog", alias="CATALOG_BLOB_URL")
    media_max_bytes: int = Field(16 * 1024 * 1024, alias="MEDIA_MAX_BYTES", ge=1024)
    # Whether a response reaches the client as it is written (SSE). False by default on AWS
    # Lambda, whose HTTP API buffers: /chat then answers JSON and the widget shows its typing
    # indicator until the whole reply comes.
    http_streaming: bool = Field(True, alias="HTTP_STREAMING")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    port: int = Field(8080, alias="PORT", ge=1, le=65535)
    host: str = Field("127.0.0.1", alias="HOST")
    # Seconds the dev server waits on a silent client (idle keep-alive, stalled request).
    dev_read_timeout: float = Field(20.0, alias="DEV_READ_TIMEOUT", gt=0)
    # Seconds between the dev server's schedule ticks (0: none); deployed, a scheduler ticks.
    dev_tick_seconds: float = Field(60.0, alias="DEV_TICK_SECONDS", ge=0)

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = url.split(":", 1)[0]
        schemes = get_args(StoreScheme)
        if "://" not in url or scheme not in schemes:
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}://")
        return url

    @field_validator("llm_turn_budget")
    @classmethod
    def _fits_the_gateway(cls, budget: float) -> float:
        if budget > MAX_TURN_BUDGET:
            raise ValueError(
                f"at most {MAX_TURN_BUDGET} s: the chat function ends at {CHAT_TIMEOUT_SECONDS} s"
                f" and needs {AFTER_MODEL_SECONDS} s after the model calls to answer and save"
            )
        return budget

    @field_validator("llm_fallbacks", mode="before")
    @classmethod
    def _fallback_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(entry.strip() for entry in value.split(",") if entry.strip())
        for entry in value if isinstance(value, tuple | list) else ():
            provider = entry.split("@", 1)[0].split(":", 1)[0]
            if provider not in get_args(LLMProvider):
                raise ValueError(f"unknown provider {provider!r} in {entry!r}")
        return value

    @field_validator("allowed_origins", "nextcloud_allowed_backends", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Settings from ``env_file`` (if it exists), overridden by ``environ`` (os.environ)."""
        environ = os.environ if environ is None else environ
        aliases = {f.alias for f in cls.model_fields.values()}
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            file_values = read_env_file(Path(env_file))
            unknown = sorted(set(file_values) - aliases - _OTHER_KNOWN_VARIABLES)
            if unknown:
                raise ConfigError(f"{env_file}: unknown variable(s) {', '.join(unknown)}")
            values.update({k: v for k, v in file_values.items() if k in aliases})
        values.update({k: v for k, v in environ.items() if k in aliases})
        if not values.get("HTTP_STREAMING") and environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            # API Gateway's HTTP API sends a Lambda's response whole: nothing streams there.
            values["HTTP_STREAMING"] = "false"
        # An empty value means "not set" (as .env.example lists them), so the default applies.
        values = {k: v for k, v in values.items() if v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


# Variables read by SDKs or other parts (not by Settings itself) that a .env file may hold.
_OTHER_KNOWN_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
    }
)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and # comments are skipped; quotes are stripped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _describe(exc: ValidationError) -> str:
    fields = Settings.model_fields
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        alias = fields[name].alias if name in fields else name
        problems.append(f"{alias}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)
