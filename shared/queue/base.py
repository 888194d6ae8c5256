"""The queue port: inbound work handed from a fast webhook to a worker.

Items of one ``group`` (a conversation) are handled in order and never concurrently; an item
sent twice with the same ``dedup_id`` is delivered once (within the backend's window; the
webhooks also dedupe in the store). Consumption belongs to the platform (an SQS event source,
a Pub/Sub push subscription) or, embedded, to a worker thread in the same process: every
backend ends in ``shared.worker.process``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, Field


class WorkItem(BaseModel):
    kind: str  # what to do: a key of shared.worker.HANDLERS
    shop: str
    group: str  # ordering key: items of one group run one at a time, in order
    dedup_id: str  # the provider's message or update id
    payload: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 1  # 1 on the first delivery


class Queue(ABC):
    backend: ClassVar[str]

    @abstractmethod
    def send(self, item: WorkItem) -> None:
        """Enqueue ``item``; raises QueueError when the backend refuses or cannot be reached."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Stop workers and release connections."""
