"""The LLM providers a turn may use, from the settings: the primary (a shop's override first)
and the fallbacks, each with its key. Here rather than in the settings, which import no port,
and rather than in the LLM port, which reads no settings."""

from __future__ import annotations

from pydantic import SecretStr

from shared.llm import PROVIDERS, LLMConfig
from shared.settings import Settings


def llm_chain(
    settings: Settings, provider: str | None = None, model: str | None = None
) -> list[LLMConfig]:
    """The primary provider (a shop's override first) and the fallbacks, in order."""
    primary = provider or settings.llm_provider
    own = primary == settings.llm_provider
    chain = [
        LLMConfig(
            provider=primary,
            model=model or (settings.llm_model if own else ""),
            embed_model=settings.llm_embed_model if own else "",
            embed_dimensions=settings.llm_embed_dimensions if own else None,
            # LLM_API_KEY belongs to LLM_PROVIDER: never send it to a shop's other provider.
            api_key=(_secret(settings.llm_api_key) if own else None)
            or provider_key(settings, primary),
            base_url=settings.llm_base_url if own else None,
            timeout=settings.llm_timeout,
        )
    ]
    for entry in settings.llm_fallbacks:
        spec, _, base_url = entry.partition("@")
        name, _, fallback_model = spec.partition(":")
        chain.append(
            LLMConfig(
                provider=name,
                model=fallback_model,
                api_key=provider_key(settings, name),
                base_url=base_url or None,
                timeout=settings.llm_timeout,
            )
        )
    return chain


def missing_llm_key(config: LLMConfig) -> str | None:
    """The variable to set when ``config``'s provider needs a key and has none (every call
    would be refused); None when it has one, takes none (offline, ollama), or is reached at a
    base URL of one's own (a server that may take none)."""
    variable = PROVIDERS[config.provider].key_variable if config.provider in PROVIDERS else ""
    if not variable or config.api_key or config.base_url:
        return None
    return variable


def provider_key(settings: Settings, provider: str) -> str | None:
    """The key ``provider`` reads from its own variable (OPENAI_API_KEY…), if set."""
    variable = PROVIDERS[provider].key_variable if provider in PROVIDERS else ""
    field = next((n for n, f in Settings.model_fields.items() if f.alias == variable), None)
    return _secret(getattr(settings, field)) if field else None


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
