"""SQS FIFO backend: one message per item, consumed by ``functions/worker.py`` through a Lambda
event source mapping (``ReportBatchItemFailures``).

- ``MessageGroupId`` is the digest of the item's group: SQS hands out one group's messages in
  order and holds the next back while one is in flight, so a conversation is never handled
  concurrently.
- ``MessageDeduplicationId`` is the digest of the item's dedup id: a resend within SQS's
  5-minute window is accepted and dropped.
- The body is the item's JSON in ASCII (SQS refuses some Unicode code points); ``kind`` and
  ``shop`` ride along as message attributes for the console and metrics.

The queue's redrive policy (its own dead-letter queue) is a safety net for a worker that dies
before it records its failure: its ``maxReceiveCount`` must exceed ``WORKER_MAX_ATTEMPTS``, at
which the worker records a dead letter with its reason itself.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared.aws import AWSClientOwner
from shared.exceptions import ConfigError, QueueError
from shared.queue import dedup_key, group_key
from shared.queue.base import Queue, WorkItem

if TYPE_CHECKING:
    from botocore.client import BaseClient

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,75}\.fifo$")
_URL_OPTIONS = {"region", "endpoint_url"}


class SqsQueue(AWSClientOwner, Queue):
    backend = "sqs"

    def __init__(
        self,
        name: str,
        *,
        client: BaseClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not _NAME_RE.match(name):
            raise ConfigError(f"QUEUE_URL: {name!r} is not an SQS FIFO queue name (NAME.fifo)")
        # A webhook acknowledges in well under Meta's timeout: fail fast.
        self._use_client(
            client,
            "sqs",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=2,
            read_timeout=5,
        )
        self.name = name
        self._queue_url: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, client: BaseClient | None = None, **_clients: Any) -> SqsQueue:
        """``sqs://NAME.fifo?region=eu-west-1&endpoint_url=http://127.0.0.1:5000``."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        if parts.path not in ("", "/") or set(options) - _URL_OPTIONS:
            raise ConfigError(
                f"QUEUE_URL: expected sqs://NAME.fifo?region=...&endpoint_url=..., got {url!r}"
            )
        return cls(
            parts.netloc,
            client=client,
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
        )

    @property
    def queue_url(self) -> str:
        """The queue's URL, asked of SQS once per instance."""
        if self._queue_url is None:
            with self._lock:
                if self._queue_url is None:
                    response = _call(self.client, "get_queue_url", QueueName=self.name)
                    self._queue_url = str(response["QueueUrl"])
        return self._queue_url

    def send(self, item: WorkItem) -> None:
        body = json.dumps(item.model_dump(mode="json"), ensure_ascii=True, separators=(",", ":"))
        _call(
            self.client,
            "send_message",
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageGroupId=group_key(item),
            MessageDeduplicationId=dedup_key(item),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": item.kind},
                "shop": {"DataType": "String", "StringValue": item.shop},
            },
        )


def _call(client: BaseClient, operation: str, **request: Any) -> Any:
    """Invoke the SDK and translate its errors: the one place vendor errors cross."""
    from botocore.exceptions import BotoCoreError, ClientError  # loaded with the client

    try:
        return getattr(client, operation)(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise QueueError(
            f"sqs {operation}: {error.get('Code', '')}: {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:  # unreachable endpoint, timeouts, credentials
        raise QueueError(f"sqs {operation}: {type(exc).__name__}") from exc
