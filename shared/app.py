"""The services a warm instance keeps: settings, store, shops, LLMs and the chat service.

Built on first use from the environment and kept for the life of the instance; tests install
their own with ``use_app``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, ClassVar

from shared import log
from shared.exceptions import LLMRequestError
from shared.llm import LLM, Completion, LLMConfig, LLMRequest, open_llm
from shared.llm.resilient import ResilientLLM
from shared.llm_chain import llm_chain, missing_llm_key
from shared.models import Shop
from shared.queue import Queue, open_queue
from shared.settings import Settings
from shared.shops import Shops
from shared.store import Store, open_store
from shared.worker import deliver

if TYPE_CHECKING:
    from shared.blob import Blob
    from shared.catalog.snapshot import CatalogSnapshots
    from shared.chat import ChatService
    from shared.checkout import Payments
    from shared.speech import Speech
    from shared.voice import Voice


@dataclass
class App:
    settings: Settings
    llm_override: LLM | None = None  # answers every shop when set (tests: a scripted provider)
    _llms: dict[tuple[str | None, str | None], LLM] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings.store_url)

    @cached_property
    def queue(self) -> Queue:
        """Where webhooks hand work to the worker; in-process, the worker threads run here."""
        return open_queue(self.settings.queue_url, process=partial(deliver, app=self))

    @cached_property
    def shops(self) -> Shops:
        """The shops this instance has read, kept a minute."""
        return Shops(self.store, self.settings.default_shop)

    @cached_property
    def payments(self) -> Payments:
        """The payment providers and the orders' payment links."""
        from shared.checkout import Payments  # lazy: the webhooks never make one

        return Payments(self.store, self.settings)

    @cached_property
    def catalog_snapshots(self) -> CatalogSnapshots:
        """Each shop's catalogue as one object: what a cold instance builds its index from."""
        from shared.catalog.snapshot import CatalogSnapshots

        return CatalogSnapshots(self.store, self.settings.catalog_blob_url)

    @cached_property
    def speech(self) -> Speech:
        """Text-to-speech for the replies to voice notes (TTS_PROVIDER)."""
        from shared.channels.voice_notes import speech_config  # lazy: only the worker speaks
        from shared.speech import open_speech

        return open_speech(speech_config(self.settings))

    @cached_property
    def media_blob(self) -> Blob:
        """Where the voice notes sent are kept (MEDIA_BLOB_URL)."""
        from shared.blob import open_blob

        return open_blob(self.settings.media_blob_url)

    @cached_property
    def chat(self) -> ChatService:
        # Imported here: the webhooks and the tasks function never answer a turn (cold start).
        # The queue is opened on first use (a web handoff), not with every chat instance.
        from shared.chat import ChatService

        return ChatService(
            self.settings,
            self.store,
            self.llm_for,
            enqueue=lambda item: self.queue.send(item),
            payments=self.payments,
            catalog_snapshots=self.catalog_snapshots,
        )

    @cached_property
    def voice(self) -> Voice:
        """Live voice in the widget: its provider keys, tool calls and transcripts."""
        from shared.voice import Voice

        return Voice(self.chat)

    @property
    def store_backend(self) -> str:
        return self.settings.store_url.split(":", 1)[0]

    def llm_for(self, shop: Shop | None = None) -> LLM:
        """The shop's provider and model (its override, else the settings'), with the
        fallbacks; built once per warm instance."""
        if self.llm_override is not None:
            return self.llm_override
        key = (shop.llm_provider, shop.llm_model) if shop else (None, None)
        llm = self._llms.get(key)
        if llm is None:
            with self._lock:
                llm = self._llms.get(key)
                if llm is None:
                    chain = [self._open_llm(c) for c in llm_chain(self.settings, *key)]
                    llm = ResilientLLM(
                        chain,
                        retries=self.settings.llm_retries,
                        budget=self.settings.llm_turn_budget,
                    )
                    self._llms[key] = llm
        return llm

    def offline_for(self, shop: Shop) -> bool:
        """Whether the shop's model is the offline rules responder, which answers turns but
        writes no prose for other tasks (a summary, a personalised message)."""
        if self.llm_override is not None:
            return self.llm_override.name == "offline"
        return (shop.llm_provider or self.settings.llm_provider) == "offline"

    def _open_llm(self, config: LLMConfig) -> LLM:
        missing = missing_llm_key(config)
        return open_llm(config) if missing is None else MissingKeyLLM(config.provider, missing)

    def llm_misconfigured(self, shop: Shop | None = None) -> list[tuple[str, str]]:
        """(provider, missing variable) for each provider of the settings' chain (``shop``'s,
        when given) without its key."""
        key = (shop.llm_provider, shop.llm_model) if shop else (None, None)
        chain = llm_chain(self.settings, *key)
        checked = ((c.provider, missing_llm_key(c)) for c in chain)
        return [(provider, missing) for provider, missing in checked if missing]

    @property
    def llm_status(self) -> str:
        """What /healthz says of the LLM: the provider, or "misconfigured" when a key is missing
        (every reply would then be the holding reply)."""
        return "misconfigured" if self.llm_misconfigured() else self.settings.llm_provider


class MissingKeyLLM(LLM):
    """Stands for a provider whose key is not set: each call is logged and refused at once (the
    provider would refuse it too), so the next provider of the chain answers, or the customer
    gets the holding reply; the log says which variable to set."""

    name: ClassVar[str] = "missing-key"

    def __init__(self, provider: str, variable: str) -> None:
        self.provider = provider
        self.variable = variable

    def complete(self, request: LLMRequest) -> Completion:
        log.log_warning("llm_misconfigured", provider=self.provider, missing=self.variable)
        raise LLMRequestError(f"{self.provider}: {self.variable} is not set")


_lock = threading.Lock()
_app: App | None = None


def get_app() -> App:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                settings = Settings.from_env()
                log.configure(settings.log_level)
                _app = App(settings)
                for provider, missing in _app.llm_misconfigured():
                    # At start, before any customer meets the holding reply.
                    log.log_warning("llm_misconfigured", provider=provider, missing=missing)
    return _app


def use_app(app: App | None) -> None:
    """Install ``app`` (or forget the current one, with None) for the functions to use."""
    global _app
    with _lock:
        _app = app
