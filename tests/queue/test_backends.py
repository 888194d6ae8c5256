"""What is particular to each backend: URLs, error translation, SQS's queue URL lookup, Pub/Sub's
retries and credentials, the in-process queue's drain, close and dedup window."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.exceptions import ConfigError, QueueError
from shared.queue import WorkItem, open_queue
from shared.queue.inprocess import InProcessQueue
from shared.queue.pubsub import PubSubQueue
from shared.queue.sqs import SqsQueue
from tests.fixtures.pubsub_server import FakePubSub


def item(n: int = 1, group: str = "g") -> WorkItem:
    return WorkItem(kind="channel_turn", shop="teranga", group=group, dedup_id=f"m{n}")


def _nothing(item: WorkItem) -> None:
    pass


@pytest.mark.parametrize(
    "url",
    [
        "kafka://topic",
        "inprocess",
        "inprocess://somewhere",
        "inprocess://?workers=0",
        "inprocess://?workers=many",
        "inprocess://?colour=blue",
        "sqs://not-fifo",
        "sqs://work.fifo/extra",
        "sqs://work.fifo?region=eu-west-1&colour=blue",
        "pubsub://comptoir-demo",
        "pubsub://comptoir-demo/a/b",
        "pubsub://Bad_Project/work",
        "pubsub://comptoir-demo/work?colour=blue",
    ],
)
def test_a_malformed_queue_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match="QUEUE_URL"):
        open_queue(url, process=_nothing)


# --- SQS -------------------------------------------------------------------------------------


def test_sqs_asks_for_the_queue_url_once(sqs_queue: SqsQueue) -> None:
    calls: list[str] = []
    sqs_queue.client.meta.events.register(
        "before-call.sqs.GetQueueUrl", lambda **kwargs: calls.append("GetQueueUrl")
    )
    for n in range(3):
        sqs_queue.send(item(n))
    assert calls == ["GetQueueUrl"]


def test_sqs_errors_become_queue_errors(aws_credentials: None) -> None:
    queue = open_queue(
        "sqs://work.fifo?region=us-east-1&endpoint_url=http://127.0.0.1:9", process=_nothing
    )
    with pytest.raises(QueueError, match="sqs get_queue_url: EndpointConnectionError"):
        queue.send(item())
    queue.close()


# --- Pub/Sub ---------------------------------------------------------------------------------


def _pubsub(server: FakePubSub) -> PubSubQueue:
    return PubSubQueue.from_url(
        f"pubsub://comptoir-test/work?endpoint={server.endpoint}", token=lambda: "test-token"
    )


def test_pubsub_retries_a_server_error(pubsub_server: FakePubSub) -> None:
    pubsub_server.errors.extend([503, 500])
    queue = _pubsub(pubsub_server)
    queue.send(item())
    assert [r.headers["x-answered"] for r in pubsub_server.requests] == ["503", "500", "200"]
    assert len(pubsub_server.messages()) == 1


def test_pubsub_does_not_retry_a_refusal(pubsub_server: FakePubSub) -> None:
    pubsub_server.errors.append(403)
    with pytest.raises(QueueError, match=r"pubsub publish: HTTP 403 UNAVAILABLE"):
        _pubsub(pubsub_server).send(item())
    assert len(pubsub_server.requests) == 1


def test_pubsub_unreachable_is_a_queue_error() -> None:
    queue = PubSubQueue("comptoir-test", "work", endpoint="http://127.0.0.1:9", token=lambda: "t")
    with pytest.raises(QueueError, match="ConnectError"):
        queue.send(item())
    queue.close()


def test_pubsub_honours_the_emulator_variable(
    pubsub_server: FakePubSub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.endpoint.removeprefix("http://"))
    queue = open_queue("pubsub://comptoir-test/work", process=_nothing)
    queue.send(item())
    queue.close()
    assert "authorization" not in pubsub_server.requests[0].headers


def test_missing_credentials_are_a_queue_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(scopes: list[str]) -> Any:
        raise DefaultCredentialsError("no credentials here")  # type: ignore[no-untyped-call]

    monkeypatch.setattr(google.auth, "default", no_credentials)
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    queue = open_queue("pubsub://comptoir-demo/work", process=_nothing)
    with pytest.raises(QueueError, match="pubsub credentials: DefaultCredentialsError"):
        queue.send(item())
    queue.close()


# --- in-process ------------------------------------------------------------------------------


def test_drain_says_when_work_is_still_running_and_close_finishes_it() -> None:
    release = threading.Event()
    done: list[str] = []

    def slow(work: WorkItem) -> None:
        release.wait(5)
        done.append(work.dedup_id)

    queue = InProcessQueue(slow)
    queue.send(item(1))
    queue.send(item(2, group="other"))
    assert queue.drain(0.05) is False
    release.set()
    queue.close()
    assert sorted(done) == ["m1", "m2"]


def test_close_gives_up_on_work_that_does_not_finish_in_time() -> None:
    release = threading.Event()

    def stuck(work: WorkItem) -> None:
        release.wait(5)

    queue = InProcessQueue(stuck, close_timeout=0.05)
    queue.send(item())
    queue.close()  # returns although the item is still running
    release.set()
    with pytest.raises(QueueError, match="closed"):
        queue.send(item(2))


def test_a_dedup_id_is_forgotten_after_the_window() -> None:
    seen: list[int] = []
    queue = InProcessQueue(lambda work: seen.append(work.attempt), dedup_seconds=0)
    queue.send(item())
    queue.send(item())
    queue.close()
    assert seen == [1, 1]
