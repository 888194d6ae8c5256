"""The worker: the in-process queue running real deliveries, dead letters and their replay, the
SQS batch adapter (partial batch failures), the Pub/Sub push adapter, and the whole path through
SQS on moto's server with the test acting as Lambda's event source mapping."""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from functions.worker import lambda_handler
from shared import worker
from shared.app import App
from shared.exceptions import InvalidInputError, NotFoundError, QueueError
from shared.queue import Queue, WorkItem, open_queue
from shared.queue import cli as queue_cli
from shared.queue.inprocess import InProcessQueue
from shared.queue.sqs import SqsQueue
from shared.store import Store
from shared.worker import REPLAY_SUFFIX, deliver, list_dead_letters, replay
from tests.eventlib import load_event
from tests.fixtures.sqs import poll_until_empty
from tests.queue.handlers import PHONE, Recorder

ROOT = Path(__file__).resolve().parents[2]
SHOP = "teranga"


def work(kind: str, group: str, n: int, **payload: Any) -> WorkItem:
    return WorkItem(
        kind=kind, shop=SHOP, group=group, dedup_id=f"{group}:m{n}", payload={"n": n, **payload}
    )


@pytest.fixture
def queue(app: App, recorder: Recorder) -> Iterator[InProcessQueue]:
    """The in-process queue as the App builds it, with a short backoff."""
    made = open_queue("inprocess://", process=partial(deliver, app=app), retry_delay=0.01)
    assert isinstance(made, InProcessQueue)
    yield made
    made.close()


# --- in-process queue + worker ---------------------------------------------------------------


def test_two_quick_messages_of_a_conversation_run_in_order_never_together(
    queue: InProcessQueue, recorder: Recorder
) -> None:
    first, second = (work("test_record", "whatsapp:c1", n, sleep=0.1) for n in (1, 2))
    queue.send(first)
    queue.send(second)
    queue.send(work("test_record", "whatsapp:c2", 1, sleep=0.1))
    assert queue.drain(5)
    assert recorder.done("whatsapp:c1") == [first.dedup_id, second.dedup_id]
    assert recorder.overlaps == 0


def test_three_conversations_run_in_parallel(queue: InProcessQueue, recorder: Recorder) -> None:
    # Each handler waits until three are running at once: this passes only in parallel.
    for group in ("a", "b", "c"):
        queue.send(work("test_record", group, 1, barrier="three", parties=3))
    assert queue.drain(10)
    assert recorder.max_running == 3
    assert [attempt for _, _, attempt in recorder.runs] == [1, 1, 1]


def test_a_failure_is_retried_and_the_conversation_waits_for_it(
    queue: InProcessQueue, recorder: Recorder, app: App
) -> None:
    flaky = work("test_record", "c1", 1, fail_attempts=2)
    queue.send(flaky)
    queue.send(work("test_record", "c1", 2))
    assert queue.drain(5)
    assert recorder.runs == [
        ("c1", "c1:m1", 1),
        ("c1", "c1:m1", 2),
        ("c1", "c1:m1", 3),
        ("c1", "c1:m2", 1),
    ]
    assert list_dead_letters(app.store, SHOP) == []


def test_a_poison_item_becomes_a_dead_letter_after_the_last_attempt(
    make_app: Callable[..., App], recorder: Recorder, logs: io.StringIO
) -> None:
    app = make_app(WORKER_MAX_ATTEMPTS="3")
    queue = open_queue("inprocess://", process=partial(deliver, app=app), retry_delay=0.01)
    queue.send(work("test_poison", "c1", 1, text=f"appelez-moi au {PHONE}"))
    queue.send(work("test_record", "c1", 2))  # runs once the poison is given up
    queue.close()
    assert recorder.runs == [("c1", "c1:m1", n) for n in (1, 2, 3)] + [("c1", "c1:m2", 1)]
    [letter] = list_dead_letters(app.store, SHOP)
    assert letter.status == "pending"
    assert letter.kind == "test_poison"
    assert letter.attempts == 3
    assert letter.reason.startswith("ValueError: unexpected error at handlers.py:")
    stored = app.store.get(SHOP, worker.COLLECTION, letter.id)
    assert stored is not None
    assert WorkItem.model_validate(stored.data["item"]).payload["text"].endswith(PHONE)
    logs = logs.getvalue()
    assert '"event":"work_dead_lettered"' in logs
    for forbidden in (PHONE, "77 123", "appelez"):
        assert forbidden not in logs
        assert forbidden not in letter.reason


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (
            "test_permanent",
            "ChannelError: A channel API (WhatsApp Graph API, Telegram Bot API) failed "
            "(code 131047)",
        ),
        ("no_such_kind", "UnknownWorkKindError: No handler is registered for this kind of work"),
    ],
)
def test_what_retrying_cannot_fix_is_dead_lettered_at_once(
    queue: InProcessQueue, recorder: Recorder, app: App, kind: str, reason: str
) -> None:
    queue.send(work(kind, "c1", 1))
    assert queue.drain(5)
    assert len(recorder.runs) == (1 if kind == "test_permanent" else 0)
    [letter] = list_dead_letters(app.store, SHOP)
    assert (letter.reason, letter.attempts) == (reason, 1)


def test_replay_sends_the_work_again_as_new_and_marks_it(
    queue: InProcessQueue, recorder: Recorder, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue.send(work("test_permanent", "c1", 1))
    assert queue.drain(5)
    [letter] = list_dead_letters(app.store, SHOP)
    # The fix is deployed: the kind now succeeds.
    monkeypatch.setitem(worker.HANDLERS, "test_permanent", "tests.queue.handlers:record")
    again = replay(app.store, queue, SHOP, letter.id)
    assert queue.drain(5)
    assert again.dedup_id == "c1:m1" + REPLAY_SUFFIX
    assert recorder.runs[-1] == ("c1", again.dedup_id, 1)
    [replayed] = list_dead_letters(app.store, SHOP)
    assert replayed.status == "replayed"
    assert replayed.replayed_at is not None
    assert replayed.replayed_as == worker.dead_letter_id(again)
    with pytest.raises(InvalidInputError, match="replayed"):
        replay(app.store, queue, SHOP, letter.id)
    with pytest.raises(NotFoundError):
        replay(app.store, queue, SHOP, "0" * 24)


def test_a_replay_that_cannot_be_sent_stays_pending(
    queue: InProcessQueue, app: App, recorder: Recorder
) -> None:
    queue.send(work("test_permanent", "c1", 1))
    assert queue.drain(5)
    [letter] = list_dead_letters(app.store, SHOP)
    queue.close()
    with pytest.raises(QueueError):
        replay(app.store, queue, SHOP, letter.id)
    assert list_dead_letters(app.store, SHOP)[0].status == "pending"


def test_the_operator_commands_list_and_replay(
    app: App, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    worker.record_dead_letter(app.store, work("test_record", "c1", 1), "TimeoutError: test")
    parser = argparse.ArgumentParser()
    queue_cli.add_commands(parser.add_subparsers(dest="command"))

    assert queue_cli.run(parser.parse_args(["deadletters", "list"])) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["status"] == "pending"
    assert listed["reason"] == "TimeoutError: test"
    assert listed["at"].endswith("+00:00")

    # In-process, the command runs the replayed work before it exits.
    args = parser.parse_args(["deadletters", "replay", listed["id"], "--shop", SHOP])
    assert queue_cli.run(args) == 0
    assert "replayed" in capsys.readouterr().out
    assert recorder.runs == [("c1", "c1:m1" + REPLAY_SUFFIX, 1)]
    assert queue_cli.run(parser.parse_args(["deadletters", "list"])) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "replayed"
    assert queue_cli.run(parser.parse_args(["deadletters", "replay", listed["id"]])) == 2
    assert "only pending ones replay" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb", "firestore"])
def test_dead_letters_list_and_replay_on_every_store(
    backend: str, request: pytest.FixtureRequest
) -> None:
    store: Store = request.getfixturevalue(f"{backend}_store")
    sent: list[WorkItem] = []

    class Recording(Queue):
        backend = "recording"

        def send(self, item: WorkItem) -> None:
            sent.append(item)

    older = worker.record_dead_letter(store, work("k", "c1", 1), "TimeoutError: test")
    time.sleep(0.01)
    newer = worker.record_dead_letter(store, work("k", "c2", 1), "ValueError: test")
    assert [letter.id for letter in list_dead_letters(store, SHOP)] == [newer, older]
    again = replay(store, Recording(), SHOP, older)
    assert sent == [again]
    assert [letter.status for letter in list_dead_letters(store, SHOP)] == ["pending", "replayed"]


# --- AWS: an SQS batch event -----------------------------------------------------------------


def _set_body(record: dict[str, Any], **changes: Any) -> None:
    body = json.loads(record["body"])
    body.update(changes)
    record["body"] = json.dumps(body)


def test_an_sqs_batch_reports_only_what_sqs_should_deliver_again(
    app: App, recorder: Recorder
) -> None:
    event = load_event("sqs_batch")
    good, failing, poison, malformed, behind = event["Records"]
    _set_body(good, kind="test_record")
    _set_body(failing, kind="test_record", payload={"fail_attempts": 1})
    _set_body(poison, kind="test_poison")  # received for the 5th time: WORKER_MAX_ATTEMPTS
    _set_body(behind, kind="test_record")  # same group as `failing`, later in the batch
    assert poison["attributes"]["ApproximateReceiveCount"] == "5"
    assert behind["attributes"]["MessageGroupId"] == failing["attributes"]["MessageGroupId"]

    result = lambda_handler(event, None)

    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": failing["messageId"]},
            {"itemIdentifier": behind["messageId"]},  # not run: it waits for `failing`
        ]
    }
    assert [(dedup, attempt) for _, dedup, attempt in recorder.runs] == [
        ("telegram:update:700000101", 1),
        ("telegram:update:700000102", 1),
        ("telegram:update:700000103", 5),
    ]
    letters = {letter.status: letter for letter in list_dead_letters(app.store, SHOP)}
    assert letters["pending"].kind == "test_poison"
    assert letters["pending"].attempts == 5
    assert letters["unreadable"].reason == "ValidationError: not a work item: json_invalid at body"
    stored = app.store.get(SHOP, worker.COLLECTION, letters["unreadable"].id)
    assert stored is not None
    assert stored.data["body"] == malformed["body"]


def test_a_failing_store_makes_the_message_come_back(
    app: App, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.exceptions import StoreUnavailableError

    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("down")

    monkeypatch.setattr(app.store, "put", down)
    event = load_event("sqs_batch")
    event["Records"] = [event["Records"][3]]  # unreadable: kept at once, if the store can
    assert lambda_handler(event, None) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }


# --- Google: a Pub/Sub push ------------------------------------------------------------------


@pytest.fixture
def push_client(app: App) -> Any:
    from functions_framework import create_app

    return create_app("worker", str(ROOT / "functions" / "worker.py")).test_client()  # type: ignore[no-untyped-call]


def _push(client: Any, item: WorkItem | bytes, attempt: int | None = None) -> int:
    envelope = load_event("pubsub_push")
    data = item if isinstance(item, bytes) else item.model_dump_json().encode()
    envelope["message"]["data"] = base64.b64encode(data).decode()
    if attempt is None:
        del envelope["deliveryAttempt"]  # a subscription without a dead-letter policy
    else:
        envelope["deliveryAttempt"] = attempt
    status: int = client.post("/", json=envelope).status_code
    return status


def test_a_pubsub_push_acks_done_work_and_nacks_what_should_come_back(
    push_client: Any, recorder: Recorder, app: App
) -> None:
    assert _push(push_client, work("test_record", "c1", 1), attempt=1) == 204
    flaky = work("test_record", "c2", 1, fail_attempts=1)
    assert _push(push_client, flaky, attempt=None) == 500  # nack: Pub/Sub delivers it again
    assert _push(push_client, flaky, attempt=2) == 204
    assert _push(push_client, work("test_poison", "c3", 1), attempt=5) == 204  # the last
    assert _push(push_client, b"\xff not json") == 204  # unreadable: kept, not retried
    assert [(group, attempt) for group, _, attempt in recorder.runs] == [
        ("c1", 1),
        ("c2", 1),
        ("c2", 2),
        ("c3", 5),
    ]
    assert sorted(letter.status for letter in list_dead_letters(app.store, SHOP)) == [
        "pending",
        "unreadable",
    ]


def test_a_request_that_is_not_a_pubsub_push_is_refused(push_client: Any) -> None:
    assert push_client.post("/", data=b"{}", content_type="application/json").status_code == 400
    assert push_client.post("/", data=b"[1]", content_type="application/json").status_code == 400
    envelope = load_event("pubsub_push")
    envelope["message"]["data"] = "not base64!"
    assert push_client.post("/", json=envelope).status_code == 400


# --- the whole path through SQS on moto's server ---------------------------------------------


def test_through_sqs_work_runs_in_order_and_a_poison_item_ends_as_a_dead_letter(
    make_app: Callable[..., App],
    recorder: Recorder,
    sqs_queue: SqsQueue,
    sqs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(WORKER_MAX_ATTEMPTS="3")
    for sent in [
        work("test_record", "c1", 1),
        work("test_poison", "c1", 2),
        work("test_record", "c1", 3),
        work("test_record", "c2", 1),
    ]:
        sqs_queue.send(sent)
    sqs_queue.send(work("test_record", "c1", 1))  # a duplicate: dropped by SQS

    poll_until_empty(sqs_client, sqs_queue.queue_url)

    assert recorder.done("c1") == ["c1:m1", "c1:m2", "c1:m2", "c1:m2", "c1:m3"]
    assert recorder.done("c2") == ["c2:m1"]
    assert recorder.overlaps == 0
    [letter] = list_dead_letters(app.store, SHOP)
    assert (letter.kind, letter.attempts, letter.status) == ("test_poison", 3, "pending")
    # Replayed through SQS: the dedup id differs, so SQS's 5-minute window does not drop it.
    monkeypatch.setitem(worker.HANDLERS, "test_poison", "tests.queue.handlers:record")
    replay(app.store, sqs_queue, SHOP, letter.id)
    poll_until_empty(sqs_client, sqs_queue.queue_url)
    assert recorder.done("c1")[-1] == "c1:m2" + REPLAY_SUFFIX
