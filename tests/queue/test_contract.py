"""The queue contract, run against every backend.

- inprocess: the real worker pool; what ``process`` receives is what was delivered.
- sqs: moto's server; the test is the consumer (ReceiveMessage with every attribute, then
  DeleteMessage for what it took), as Lambda's poller would be.
- pubsub: a loopback server standing in for the REST publish endpoint; what it recorded is what
  a push subscription would deliver. Gaps, written down: ordering and the one-outstanding-
  message-per-key rule happen inside Pub/Sub and cannot be run here (the test checks that each
  message carries its ordering key, in send order); Pub/Sub has no deduplication at publish.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from shared.exceptions import QueueError
from shared.queue import Queue, WorkItem, dedup_key, group_key, open_queue
from shared.queue.inprocess import InProcessQueue
from shared.queue.pubsub import PubSubQueue
from shared.queue.sqs import SqsQueue
from tests.fixtures.pubsub_server import FakePubSub
from tests.fixtures.sqs import receive

BACKENDS = ["inprocess", "sqs", "pubsub"]


class Harness(Protocol):
    queue: Queue

    def delivered(self) -> list[WorkItem]:
        """What the consumer has received so far (each group in its delivery order)."""

    def broken(self) -> Queue:
        """A queue of this backend whose sends fail."""


class InProcessHarness:
    def __init__(self) -> None:
        self.items: list[WorkItem] = []
        self._lock = threading.Lock()
        self.inprocess = InProcessQueue(self._take)
        self.queue: Queue = self.inprocess

    def _take(self, item: WorkItem) -> None:
        with self._lock:
            self.items.append(item)

    def delivered(self) -> list[WorkItem]:
        assert self.inprocess.drain(5)
        with self._lock:
            return list(self.items)

    def broken(self) -> Queue:
        closed = InProcessQueue(self._take)
        closed.close()
        return closed


class SqsHarness:
    def __init__(self, queue: SqsQueue, client: Any) -> None:
        self.sqs = queue
        self.queue: Queue = queue
        self.client = client
        self.messages: list[dict[str, Any]] = []

    def delivered(self) -> list[WorkItem]:
        while batch := receive(self.client, self.sqs.queue_url):
            for message in batch:
                self.messages.append(message)
                self.client.delete_message(
                    QueueUrl=self.sqs.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return [WorkItem.model_validate_json(m["Body"]) for m in self.messages]

    def broken(self) -> Queue:
        return SqsQueue("comptoir-missing.fifo", client=self.client)


class PubSubHarness:
    def __init__(self, server: FakePubSub) -> None:
        self.server = server
        self.queue = open_queue(
            f"pubsub://comptoir-test/work?endpoint={server.endpoint}",
            process=_unused,
            token=lambda: "test-token",
        )

    def delivered(self) -> list[WorkItem]:
        return [WorkItem.model_validate_json(m["data"]) for m in self.server.messages()]

    def broken(self) -> Queue:
        self.server.errors.extend([503, 503, 503])
        return self.queue


def _unused(item: WorkItem) -> None:
    raise AssertionError("only the in-process backend runs items")


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made: Harness
    if request.param == "inprocess":
        made = InProcessHarness()
    elif request.param == "sqs":
        made = SqsHarness(
            request.getfixturevalue("sqs_queue"), request.getfixturevalue("sqs_client")
        )
    else:
        made = PubSubHarness(request.getfixturevalue("pubsub_server"))
    yield made
    made.queue.close()


def item(group: str, n: int, **changes: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "kind": "channel_turn",
        "shop": "teranga",
        "group": group,
        "dedup_id": f"wamid.{group}.{n}",
        "payload": {"n": n},
    }
    return WorkItem(**{**fields, **changes})


def test_an_item_arrives_whole(harness: Harness) -> None:
    sent = item(
        "whatsapp:221770000001",
        1,
        payload={"text": "Bonjour, ça coûte combien ? 👋 \u2028", "nested": {"q": [1, 2.5, None]}},
    )
    harness.queue.send(sent)
    assert harness.delivered() == [sent]


def test_a_group_arrives_in_the_order_sent(harness: Harness) -> None:
    groups = ["whatsapp:a", "whatsapp:b", "telegram:c"]
    for n in range(4):
        for group in groups:
            harness.queue.send(item(group, n))
    delivered = harness.delivered()
    assert len(delivered) == 12
    for group in groups:
        assert [i.payload["n"] for i in delivered if i.group == group] == [0, 1, 2, 3]


def test_a_dedup_id_seen_recently_is_delivered_once(harness: Harness) -> None:
    if isinstance(harness, PubSubHarness):
        pytest.skip("gap: Pub/Sub does not deduplicate at publish; the webhooks' store does")
    first = item("whatsapp:a", 1)
    harness.queue.send(first)
    harness.queue.send(first.model_copy(update={"payload": {"n": "again"}}))
    assert harness.delivered() == [first]


def test_dedup_ids_are_scoped_by_shop_and_kind(harness: Harness) -> None:
    first = item("telegram:1", 1, dedup_id="telegram:update:42")
    others = [
        first.model_copy(update={"shop": "another-shop"}),
        first.model_copy(update={"kind": "status_update"}),
    ]
    for sent in [first, *others]:
        harness.queue.send(sent)
    assert sorted(harness.delivered(), key=lambda i: (i.shop, i.kind)) == [
        others[0],
        first,
        others[1],
    ]


def test_a_failed_send_raises_queue_error(harness: Harness) -> None:
    with pytest.raises(QueueError):
        harness.broken().send(item("whatsapp:a", 1))


def test_sqs_messages_carry_fifo_attributes(sqs_queue: SqsQueue, sqs_client: Any) -> None:
    harness = SqsHarness(sqs_queue, sqs_client)
    sent = item("whatsapp:221770000001", 1, payload={"text": "Sacré-Cœur"})
    sqs_queue.send(sent)
    assert harness.delivered() == [sent]
    message = harness.messages[0]
    attributes = message["Attributes"]
    assert attributes["MessageGroupId"] == group_key(sent)
    assert attributes["MessageDeduplicationId"] == dedup_key(sent)
    assert attributes["SequenceNumber"].isdigit()
    assert attributes["ApproximateReceiveCount"] == "1"
    # Digests, not the conversation id or message id (they may hold a phone number).
    assert "221770000001" not in attributes["MessageGroupId"] + attributes["MessageDeduplicationId"]
    assert message["MessageAttributes"]["kind"]["StringValue"] == "channel_turn"
    assert message["MessageAttributes"]["shop"]["StringValue"] == "teranga"
    assert message["Body"].isascii()


def test_sqs_holds_a_group_back_while_one_of_its_messages_is_in_flight(
    sqs_queue: SqsQueue, sqs_client: Any
) -> None:
    url = sqs_queue.queue_url
    sqs_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    for sent in [item("a", 1), item("a", 2), item("b", 1)]:
        sqs_queue.send(sent)

    def take_one() -> list[dict[str, Any]]:
        return receive(sqs_client, url, limit=1)

    first = take_one()
    assert WorkItem.model_validate_json(first[0]["Body"]) == item("a", 1)
    second = take_one()
    assert WorkItem.model_validate_json(second[0]["Body"]) == item("b", 1)
    assert take_one() == []  # a:2 waits while a:1 is in flight
    sqs_client.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert WorkItem.model_validate_json(take_one()[0]["Body"]) == item("a", 2)


def test_pubsub_publishes_with_ordering_key_and_attributes(
    pubsub_server: FakePubSub,
) -> None:
    queue = PubSubQueue.from_url(
        f"pubsub://comptoir-test/work?endpoint={pubsub_server.endpoint}",
        token=lambda: "test-token",
    )
    sent = [item("whatsapp:221770000001", n) for n in range(3)]
    for one in sent:
        queue.send(one)
    queue.close()
    requests = pubsub_server.requests
    assert [r.path for r in requests] == ["/v1/projects/comptoir-test/topics/work:publish"] * 3
    assert {r.headers["authorization"] for r in requests} == {"Bearer test-token"}
    messages = pubsub_server.messages()
    assert [WorkItem.model_validate_json(m["data"]) for m in messages] == sent
    for one, message in zip(sent, messages, strict=True):
        assert message["orderingKey"] == group_key(one)
        assert message["attributes"] == {
            "kind": "channel_turn",
            "shop": "teranga",
            "dedup": dedup_key(one),
        }
