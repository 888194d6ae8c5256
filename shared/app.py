"""The services a warm instance keeps: settings, store, shops, LLMs and the chat service.

Built on first use from the environment and kept for the life of the instance; tests install
their own with ``use_app``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property, partial

from shared import log
from shared.chat import ChatService
from shared.llm import LLM, open_llm
from shared.llm.resilient import ResilientLLM
from shared.models import Shop
from shared.queue import Queue, open_queue
from shared.settings import Settings
from shared.shops import Shops
from shared.store import Store, open_store
from shared.worker import deliver


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
    def chat(self) -> ChatService:
        # The queue is opened on first use (a web handoff), not with every chat instance.
        return ChatService(
            self.settings, self.store, self.llm_for, enqueue=lambda item: self.queue.send(item)
        )

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
                    chain = [open_llm(c) for c in self.settings.llm_chain(*key)]
                    llm = ResilientLLM(
                        chain,
                        retries=self.settings.llm_retries,
                        budget=self.settings.llm_turn_budget,
                    )
                    self._llms[key] = llm
        return llm


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
    return _app


def use_app(app: App | None) -> None:
    """Install ``app`` (or forget the current one, with None) for the functions to use."""
    global _app
    with _lock:
        _app = app
