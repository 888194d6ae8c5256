"""Settings: one pydantic model read from the environment, and from a ``.env`` file in dev.

The environment wins over the file. A malformed value fails at start with a message naming the
variable; so does an unknown variable in the ``.env`` file (a typo there would otherwise be
silently ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.exceptions import ConfigError

STORE_SCHEMES = ("sqlite", "dynamodb", "firestore")
LLMProvider = Literal["offline", "openai", "deepseek", "qwen", "mistral", "ollama", "zai", "gemini"]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    store_url: str = Field("sqlite:///.data/comptoir.db", alias="STORE_URL")
    default_shop: str = Field("demo", alias="DEFAULT_SHOP", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    llm_provider: LLMProvider = Field("offline", alias="LLM_PROVIDER")
    allowed_origins: tuple[str, ...] = Field(("*",), alias="ALLOWED_ORIGINS")
    rate_limit_per_minute: int = Field(20, alias="RATE_LIMIT_PER_MINUTE", ge=1)
    client_rate_limit_per_minute: int = Field(60, alias="CLIENT_RATE_LIMIT_PER_MINUTE", ge=1)
    max_message_chars: int = Field(4000, alias="MAX_MESSAGE_CHARS", ge=1, le=4000)
    context_message_limit: int = Field(12, alias="CONTEXT_MESSAGE_LIMIT", ge=0, le=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    port: int = Field(8080, alias="PORT", ge=1, le=65535)
    host: str = Field("127.0.0.1", alias="HOST")

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = url.split(":", 1)[0]
        if "://" not in url or scheme not in STORE_SCHEMES:
            raise ValueError(f"expected a URL starting with one of {', '.join(STORE_SCHEMES)}://")
        return url

    @field_validator("allowed_origins", mode="before")
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
