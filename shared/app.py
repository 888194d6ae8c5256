"""The services a warm instance keeps: settings, store, LLM and the chat service.

Built on first use from the environment and kept for the life of the instance; tests install
their own with ``use_app``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from shared import log
from shared.chat import ChatService
from shared.llm import LLM, open_llm
from shared.settings import Settings
from shared.store import Store, open_store


@dataclass
class App:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings.store_url)

    @cached_property
    def llm(self) -> LLM:
        return open_llm(self.settings.llm_provider)

    @cached_property
    def chat(self) -> ChatService:
        return ChatService(self.settings, self.store, self.llm)

    @property
    def store_backend(self) -> str:
        return self.settings.store_url.split(":", 1)[0]


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
