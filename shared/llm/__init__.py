"""The LLM port and the factory that picks a provider (and its fallbacks) from settings.

The ``offline`` provider is the domain's rules responder (``shared.rules``): the table names it
as a string, imported only when chosen, so the port itself imports nothing of the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.backends import choose, load_target
from shared.llm.base import (
    LLM,
    MIN_CALL_SECONDS,
    ChatMessage,
    Completion,
    Image,
    LLMRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)


@dataclass(frozen=True)
class Provider:
    target: str  # "module:Class", imported only when the provider is used
    base_url: str | None  # None: the SDK's own default
    key_variable: str  # the provider's usual environment variable for its key
    default_model: str
    default_embed_model: str = ""  # empty: no embeddings unless LLM_EMBED_MODEL names one


_OPENAI_COMPAT = "shared.llm.openai_compat:OpenAICompatLLM"
PROVIDERS: dict[str, Provider] = {
    "offline": Provider("shared.rules:RulesResponder", None, "", "offline"),
    "openai": Provider(
        _OPENAI_COMPAT,
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        "gpt-4o-mini",
        "text-embedding-3-small",
    ),
    "deepseek": Provider(
        _OPENAI_COMPAT, "https://api.deepseek.com", "DEEPSEEK_API_KEY", "deepseek-chat"
    ),
    "qwen": Provider(
        _OPENAI_COMPAT,
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        "qwen-plus",
        "text-embedding-v3",
    ),
    "mistral": Provider(
        _OPENAI_COMPAT,
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        "mistral-small-latest",
        "mistral-embed",
    ),
    "ollama": Provider(
        _OPENAI_COMPAT, "http://127.0.0.1:11434/v1", "", "llama3.1", "nomic-embed-text"
    ),
    "zai": Provider(
        _OPENAI_COMPAT,
        "https://api.z.ai/api/paas/v4",
        "ZAI_API_KEY",
        "glm-4.5-flash",
        "embedding-3",
    ),
    "gemini": Provider(
        "shared.llm.gemini:GeminiLLM",
        None,
        "GEMINI_API_KEY",
        "gemini-2.5-flash",
        "gemini-embedding-001",
    ),
}


@dataclass(frozen=True)
class LLMConfig:
    provider: str
    model: str = ""  # empty: the provider's default model
    api_key: str | None = None
    base_url: str | None = None  # None: the provider's default
    timeout: float = 30.0
    embed_model: str = ""  # empty: the provider's default embeddings model (if it has one)
    embed_dimensions: int | None = None  # None: the embeddings model's own length


def open_llm(config: LLMConfig, **clients: Any) -> LLM:
    """Build one provider's LLM; an SDK client may be injected (tests)."""
    unknown = f"LLM_PROVIDER: unknown provider {config.provider!r} (have: {', '.join(PROVIDERS)})"
    provider = choose(PROVIDERS, config.provider, unknown)
    llm: LLM = load_target(provider.target)(
        provider=config.provider,
        model=config.model or provider.default_model,
        embed_model=config.embed_model or provider.default_embed_model,
        embed_dimensions=config.embed_dimensions,
        api_key=config.api_key,
        base_url=config.base_url or provider.base_url,
        timeout=config.timeout,
        **clients,
    )
    return llm


__all__ = [
    "LLM",
    "MIN_CALL_SECONDS",
    "PROVIDERS",
    "ChatMessage",
    "Completion",
    "Image",
    "LLMConfig",
    "LLMRequest",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "open_llm",
]
