"""The LLM port and the factory that picks a provider from settings."""

from __future__ import annotations

from shared.exceptions import ConfigError
from shared.llm.base import LLM, LLMReply, LLMRequest

PROVIDERS = {
    "offline": "shared.llm.offline:OfflineResponder",
}


def open_llm(provider: str) -> LLM:
    target = PROVIDERS.get(provider)
    if target is None:
        raise ConfigError(
            f"LLM_PROVIDER: {provider!r} is not available yet (have: {', '.join(PROVIDERS)})"
        )
    module_name, class_name = target.split(":")
    module = __import__(module_name, fromlist=[class_name])  # lazy: only the provider in use
    llm: LLM = getattr(module, class_name)()
    return llm


__all__ = ["LLM", "LLMReply", "LLMRequest", "open_llm"]
