"""An App wired to the loopback Graph API and Telegram servers, a queue that records what the
webhooks enqueue (and runs it on demand through the worker), a retry policy that records its
sleeps instead of sleeping, helpers to post signed webhooks, and a store and a queue that fail
on the calls a test chooses."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

import shared.channels
from functions import webhook_telegram, webhook_whatsapp
from shared import events
from shared.app import App
from shared.channels.base import Retry
from shared.exceptions import QueueError, StoreUnavailableError
from shared.http import Request
from shared.queue import dedup_key
from shared.queue.base import Queue, WorkItem
from shared.store import Store
from shared.store.base import Doc, Key, QuerySpec, Write
from shared.store.sqlite import SQLiteStore
from shared.worker import process
from tests.eventlib import load_event
from tests.fixtures.app import Client, Result
from tests.fixtures.graph_server import TOKEN, GraphServer
from tests.fixtures.telegram_server import BOT_TOKEN, TelegramServer

APP_SECRET = "wa-app-secret-5f1c0e9d"
VERIFY_TOKEN = "verify-token-8d2a"
PHONE_NUMBER_ID = "106540352242922"
OPERATOR = "+221 70 999 88 77"
TG_SECRET = "tg_webhook_secret-42"
TG_OPERATOR = "700999888"
WA_ID = "221771234567"  # the customer in tests/events/whatsapp_*.json
SECRETS = (APP_SECRET, VERIFY_TOKEN, TOKEN, BOT_TOKEN, TG_SECRET)


class RecordingQueue(Queue):
    """Keeps what is sent, dropping a copy of an item already sent (same dedup id), as every
    backend does within its window; ``run`` delivers it to the worker in order, as a FIFO queue
    would, again and again while it raises (up to ``attempts``)."""

    backend = "recording"

    def __init__(self) -> None:
        self.items: list[WorkItem] = []
        self.failures: list[BaseException] = []
        self.refuse = 0  # the next sends that fail, as an unreachable queue would
        self.sends = 0  # accepted sends, copies included
        self._seen: set[str] = set()

    def send(self, item: WorkItem) -> None:
        if self.refuse:
            self.refuse -= 1
            raise QueueError("queue unavailable")
        self.sends += 1
        if dedup_key(item) not in self._seen:
            self._seen.add(dedup_key(item))
            self.items.append(item)

    def kinds(self) -> list[str]:
        return [item.kind for item in self.items]

    def run(self, app: App, *, attempts: int = 1) -> None:
        """Process every item (including those queued meanwhile); failures are kept."""
        while self.items:
            item = self.items.pop(0)
            for attempt in range(1, attempts + 1):
                try:
                    process(item.model_copy(update={"attempt": attempt}), app=app)
                    break
                except Exception as exc:  # noqa: BLE001 - recorded for the test to assert
                    self.failures.append(exc)


@dataclass
class Faults:
    """Numbers the calls made through a ``FaultyStore`` and a ``FaultyQueue`` (from 0) and makes
    call ``fail_at`` fail; with ``outage``, every call after it too, until ``recover``."""

    fail_at: int | None = None
    outage: bool = False
    calls: int = 0

    def check(self, error: Callable[[str], Exception]) -> None:
        index, self.calls = self.calls, self.calls + 1
        if self.fail_at is None or index < self.fail_at:
            return
        if index == self.fail_at or self.outage:
            raise error("injected failure")

    def recover(self) -> None:
        self.fail_at = None


class FaultyStore(Store):
    """The real store behind ``Faults``; ``before_write(key, data)``, if set, runs before each
    write (a test holds a write there to interleave deliveries)."""

    backend = "faulty"
    max_document_bytes = SQLiteStore.max_document_bytes

    def __init__(self, inner: Store, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.before_write: Callable[[Key, dict[str, Any]], None] | None = None

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        self.faults.check(StoreUnavailableError)
        return self.inner._get_many(keys)

    def _write(self, write: Write) -> Doc:
        # An event log write that fails is dropped by design (tests/test_events.py): not a call
        # whose failure a delivery must survive.
        if write.key.collection != events.COLLECTION:
            self.faults.check(StoreUnavailableError)
        if self.before_write is not None:
            self.before_write(write.key, write.data)
        return self.inner._write(write)

    def _delete(self, key: Key, if_version: int | None) -> bool:
        self.faults.check(StoreUnavailableError)
        return self.inner._delete(key, if_version)

    def _query(self, spec: QuerySpec) -> list[Doc]:
        self.faults.check(StoreUnavailableError)
        return self.inner._query(spec)

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        self.faults.check(StoreUnavailableError)
        return self.inner._increment(key, field, amount, expires_at, now)


class FaultyQueue(Queue):
    """The real queue behind ``Faults``; ``sends`` counts the sends it accepted."""

    backend = "faulty"

    def __init__(self, inner: Queue, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.sends = 0

    def send(self, item: WorkItem) -> None:
        self.faults.check(QueueError)
        self.inner.send(item)
        self.sends += 1

    def close(self) -> None:
        self.inner.close()


def channel_settings(graph: GraphServer, telegram: TelegramServer) -> dict[str, str]:
    return {
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_API_BASE": graph.base_url,
        "WHATSAPP_OPERATOR": OPERATOR,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
        "TELEGRAM_API_BASE": telegram.base_url,
        "TELEGRAM_OPERATOR_CHAT_ID": TG_OPERATOR,
        "PUBLIC_BASE_URL": "https://comptoir.example",
    }


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The senders' backoff sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(shared.channels, "RETRY", Retry(sleep=slept.append))
    return slept


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def app(
    make_app: Callable[..., App],
    graph_server: GraphServer,
    telegram_server: TelegramServer,
    sleeps: list[float],
    queue: RecordingQueue,
) -> App:
    """Overrides the project's ``app``: the same small shop, with both channels configured."""
    instance = make_app(**channel_settings(graph_server, telegram_server))
    instance.queue = queue  # in place of the App's own (cached) in-process queue
    return instance


def whatsapp_text(text: str, wamid: str = "wamid.T1", at: int | None = None) -> dict[str, Any]:
    """The recorded text message with another text, id and (if given) time."""
    event = load_event("whatsapp_text")
    message = event["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id=wamid, text={"body": text})
    if at is not None:
        message["timestamp"] = str(at)
    return event


def arrive(payload: dict[str, Any]) -> int:
    """Post ``payload``, signed, to the WhatsApp function (no adapter); the status."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature(body)}
    return webhook_whatsapp.handler(
        Request("POST", "/webhooks/whatsapp", headers=headers, body=body)
    ).status


def arrive_telegram(payload: dict[str, Any]) -> int:
    """Post ``payload`` with the secret header to the Telegram function (no adapter)."""
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TG_SECRET}
    return webhook_telegram.handler(
        Request("POST", "/webhooks/telegram", headers=headers, body=json.dumps(payload).encode())
    ).status


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_whatsapp(
    client: Client, payload: Any, *, sign: bool = True, forged: str | None = None
) -> Result:
    """Post ``payload`` (or raw bytes) signed with the app secret, or with ``forged``."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if sign:
        headers["x-hub-signature-256"] = forged or signature(body)
    return client.request("POST", "/webhooks/whatsapp", headers=headers, body=body)


def post_telegram(client: Client, payload: Any, secret: str | None = TG_SECRET) -> Result:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return client.request(
        "POST", "/webhooks/telegram", headers=headers, body=json.dumps(payload).encode()
    )


def assert_clean(text: str, *forbidden: str) -> None:
    """No secret, phone number or customer text in ``text`` (a log)."""
    phones = (WA_ID, "77 123 45 67", "771234567", OPERATOR, "70 999 88 77", "709998877")
    for value in (*SECRETS, *phones, *forbidden):
        assert value not in text, f"{value!r} leaked into the logs"
