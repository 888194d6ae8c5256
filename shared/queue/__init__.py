"""The queue port and the factory that picks a backend from ``QUEUE_URL``.

Keys derived from an item: the group and the dedup id are caller data (a conversation id may
hold a phone number, a WhatsApp message id encodes one), so backends send digests of them, never
the values, as SQS group and deduplication ids and Pub/Sub ordering keys. A digest also fits the
backends' alphabets and lengths, and is scoped by shop (Telegram update ids of two bots collide).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from shared.backends import choose, load_target
from shared.exceptions import ConfigError
from shared.queue.base import Queue, WorkItem

BACKENDS = {
    "inprocess": "shared.queue.inprocess:InProcessQueue",
    "sqs": "shared.queue.sqs:SqsQueue",
    "pubsub": "shared.queue.pubsub:PubSubQueue",
}


def open_queue(url: str, *, process: Callable[[WorkItem], None], **clients: Any) -> Queue:
    """Open the backend named by the URL's scheme.

    ``process(item)`` is what the in-process backend runs for each item (raising means: deliver
    it again); the cloud backends only send (and ignore it), their platform delivers to
    ``functions/worker.py``. SDK clients may be injected (tests).
    """
    scheme = url.split(":", 1)[0]
    unsupported = (
        f"QUEUE_URL: unsupported URL {url!r} (expected one of "
        f"{', '.join(s + '://' for s in BACKENDS)})"
    )
    if "://" not in url:
        raise ConfigError(unsupported)
    backend = load_target(choose(BACKENDS, scheme, unsupported))
    queue: Queue = backend.from_url(url, process=process, **clients)
    return queue


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def group_key(item: WorkItem) -> str:
    """The ordering key sent for ``item.group`` (64 hex characters)."""
    return _digest(item.shop, item.group)


def dedup_key(item: WorkItem) -> str:
    """The deduplication key sent for ``item.dedup_id`` (64 hex characters)."""
    return _digest(item.shop, item.kind, item.dedup_id)


__all__ = ["Queue", "WorkItem", "dedup_key", "group_key", "open_queue"]
