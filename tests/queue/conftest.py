"""Queue fixtures: test-only work kinds, and a fresh SQS FIFO queue on moto's server per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared import worker
from shared.queue.sqs import SqsQueue
from tests.queue import handlers


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> handlers.Recorder:
    """Registers the test kinds and returns what their handlers record."""
    monkeypatch.setattr(worker, "HANDLERS", {**worker.HANDLERS, **handlers.KINDS})
    fresh = handlers.Recorder()
    monkeypatch.setattr(handlers, "RECORDER", fresh)
    return fresh


@pytest.fixture
def sqs_client(moto_endpoint: str) -> Iterator[Any]:
    import boto3

    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    yield client
    client.close()


@pytest.fixture
def sqs_queue(sqs_client: Any) -> Iterator[SqsQueue]:
    """An SqsQueue on its own FIFO queue. Visibility timeout 0: a message not deleted comes
    back at once, as after the real timeout (tests that need the group lock raise it)."""
    name = f"comptoir-test-{uuid.uuid4().hex[:12]}.fifo"
    url = sqs_client.create_queue(
        QueueName=name, Attributes={"FifoQueue": "true", "VisibilityTimeout": "0"}
    )["QueueUrl"]
    yield SqsQueue(name, client=sqs_client)
    sqs_client.delete_queue(QueueUrl=url)


def receive(client: Any, queue_url: str, limit: int = 10) -> list[dict[str, Any]]:
    """One ReceiveMessage as Lambda's poller makes it: every system and message attribute.
    No long polling: the test moto server handles one request at a time."""
    response = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=limit,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages
