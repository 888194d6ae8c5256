"""Google Cloud backend: Pub/Sub with ordering keys, published through the REST API.

Why Pub/Sub and not Cloud Tasks: what a conversation needs is order. A message published with
an ordering key is delivered after the earlier ones of that key, and a push subscription with
message ordering enabled keeps one message per key outstanding at a time, so one customer's
messages are handled in order and never concurrently while other conversations run in parallel;
a nacked message is delivered again before the ones behind it. Cloud Tasks dispatches a queue's
tasks in parallel with no order per key: serialising a conversation there would take a queue
per conversation, or one dispatch at a time for every shop. What Cloud Tasks has and Pub/Sub
lacks is deduplication at enqueue (named tasks); here duplicates are stopped before the queue,
by the webhooks' create-only write in the store.

- ``orderingKey`` is the digest of the item's group (see ``shared.queue``); the attributes are
  ``kind``, ``shop`` and ``dedup`` (the digest of the dedup id); ``data`` is the item's JSON.
- Order holds within one region: publish through a locational endpoint
  (``?endpoint=https://europe-west1-pubsub.googleapis.com``) when publishers run in several.
- The subscription (``infra/``) pushes to the ``worker`` target with message ordering enabled
  and a dead-letter policy: without one, Pub/Sub sends no ``deliveryAttempt`` and the worker
  cannot tell the last attempt. Its ``max_delivery_attempts`` must exceed
  ``WORKER_MAX_ATTEMPTS``, at which the worker records a dead letter with its reason itself.
- ``PUBSUB_EMULATOR_HOST`` is honoured as by Google's clients (plain HTTP, no credentials).

No ``google-cloud-pubsub``: one REST call with httpx and a token from google-auth (both
imported lazily) keeps a webhook's cold start light.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared.backoff import Backoff
from shared.exceptions import ConfigError, QueueError
from shared.gcp import GoogleToken
from shared.queue import dedup_key, group_key
from shared.queue.base import Queue, WorkItem

if TYPE_CHECKING:
    import httpx
    from google.auth.exceptions import GoogleAuthError

DEFAULT_ENDPOINT = "https://pubsub.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/pubsub"
_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_TOPIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# A webhook waits on this: a short retry, then the caller's own error path.
_BACKOFF = Backoff(attempts=3, base_delay=0.1, max_delay=0.2)

TokenProvider = Callable[[], str]  # a bearer token; raises QueueError when it cannot get one


class PubSubQueue(Queue):
    backend = "pubsub"

    def __init__(
        self,
        project: str,
        topic: str,
        *,
        endpoint: str | None = None,
        http: httpx.Client | None = None,
        token: TokenProvider | None = None,
    ) -> None:
        if not _PROJECT_RE.match(project) or not _TOPIC_RE.match(topic):
            raise ConfigError(f"QUEUE_URL: {project!r}/{topic!r} is not a Pub/Sub project/topic")
        emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
        if endpoint is None and emulator:
            endpoint = f"http://{emulator}"
        elif token is None:
            token = GoogleToken(_SCOPE, _no_credentials)
        base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.url = f"{base}/v1/projects/{project}/topics/{topic}:publish"
        self._token = token
        self._owns_http = http is None
        if http is None:
            import httpx

            http = httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0))
        self._http = http

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        http: httpx.Client | None = None,
        token: TokenProvider | None = None,
        **_clients: Any,
    ) -> PubSubQueue:
        """``pubsub://PROJECT/TOPIC`` or ``pubsub://PROJECT/TOPIC?endpoint=https://...``."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        topic = parts.path.strip("/")
        if not parts.netloc or not topic or "/" in topic or set(options) - {"endpoint"}:
            raise ConfigError(
                f"QUEUE_URL: expected pubsub://PROJECT/TOPIC[?endpoint=...], got {url!r}"
            )
        return cls(parts.netloc, topic, endpoint=options.get("endpoint"), http=http, token=token)

    def send(self, item: WorkItem) -> None:
        message = {
            "data": base64.b64encode(item.model_dump_json().encode()).decode(),
            "orderingKey": group_key(item),
            "attributes": {"kind": item.kind, "shop": item.shop, "dedup": dedup_key(item)},
        }
        headers = {"Authorization": f"Bearer {self._token()}"} if self._token else {}
        self._publish({"messages": [message]}, headers)

    def close(self) -> None:
        if self._owns_http:  # an injected client belongs to its owner
            self._http.close()

    def _publish(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        import httpx

        problem = ""
        for _ in _BACKOFF:
            try:
                response = self._http.post(self.url, json=body, headers=headers)
            except httpx.HTTPError as exc:  # unreachable, timeouts
                problem = type(exc).__name__
                continue
            if response.status_code == 200:
                return
            problem = f"HTTP {response.status_code} {_google_status(response)}".rstrip()
            if response.status_code not in _RETRY_STATUSES:
                break
        raise QueueError(f"pubsub publish: {problem}")


def _no_credentials(exc: GoogleAuthError) -> QueueError:
    return QueueError(f"pubsub credentials: {type(exc).__name__}")


def _google_status(response: httpx.Response) -> str:
    """Google's error status (``NOT_FOUND``, ``PERMISSION_DENIED``...), never its message."""
    try:
        status = response.json()["error"]["status"]
    except (ValueError, KeyError, TypeError):
        return ""
    return status if isinstance(status, str) else ""
