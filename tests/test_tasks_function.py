"""The tasks function (functions/tasks.py): POST /tasks/{name} behind TASKS_SECRET through both
adapters, EventBridge Scheduler's direct invocation, `python -m shared tick`, and the dev
server's tick thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from functions import tasks as tasks_function
from shared import schedules
from shared.app import App
from shared.devserver import start_ticker
from shared.schedules import PLATFORM, RUNS, ScheduleSpec, save_entry
from shared.tasks import TASKS_HEADER, run_task
from tests.fixtures.app import FunctionsFrameworkClient, LambdaClient, post_json

SECRET = "tasks-secret-for-the-tests-0123"
CALLS: list[tuple[str, str, float | None]] = []


def on_schedule(app: App, shop: str, target: str, slot: float | None) -> None:
    CALLS.append((shop, target, slot))


@pytest.fixture
def kind(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(schedules.SCHEDULED, "test_kind", f"{__name__}:on_schedule")
    CALLS.clear()
    return "test_kind"


def due_entry(app: App, kind: str) -> None:
    """An entry whose one-off fire is already past: the next tick fires it."""
    now = time.time()
    spec = ScheduleSpec(at=now + 0.5, timezone="Africa/Dakar")
    save_entry(app.store, "teranga", kind, "c1", spec, now)
    time.sleep(0.6)


@pytest.mark.parametrize("client_type", [LambdaClient, FunctionsFrameworkClient])
def test_post_tick_wants_the_secret(
    make_app: Callable[..., App], kind: str, client_type: Callable[[], Any]
) -> None:
    app = make_app(TASKS_SECRET=SECRET)
    due_entry(app, kind)
    client = client_type()
    for headers in ({}, {TASKS_HEADER: "wrong-secret-of-the-same-size"}):
        refused = post_json(client, "/tasks/tick", {}, **headers)
        assert refused.status == 401
        assert refused.json()["error"]["code"] == "unauthorized"
    assert [doc.id for doc in app.store.scan(PLATFORM, RUNS)] == []  # nothing ran
    ran = post_json(client, "/tasks/tick", {}, **{TASKS_HEADER: SECRET})
    assert ran.status == 200
    assert ran.json()["task"] == "tick" and ran.json()["summary"]["queued"] == 1
    unknown = post_json(client, "/tasks/nope", {}, **{TASKS_HEADER: SECRET})
    assert (unknown.status, unknown.json()["error"]["code"]) == (404, "unknown_task")
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert [(shop, target) for shop, target, _ in CALLS] == [("teranga", "c1")]


def test_without_a_configured_secret_every_call_is_refused(make_app: Callable[..., App]) -> None:
    make_app()
    refused = post_json(LambdaClient(), "/tasks/tick", {}, **{TASKS_HEADER: ""})
    assert refused.status == 401
    refused = post_json(LambdaClient(), "/tasks/tick", {}, **{TASKS_HEADER: "anything-at-all-0"})
    assert refused.status == 401


def test_the_scheduler_invokes_the_lambda_directly(
    make_app: Callable[..., App], kind: str
) -> None:
    app = make_app()  # no secret needed: only the scheduler's role may invoke the Lambda
    due_entry(app, kind)
    out = tasks_function.lambda_handler({"task": "tick"}, None)
    assert out["task"] == "tick" and out["summary"]["queued"] == 1
    assert tasks_function.lambda_handler({"task": "tick"}, None)["summary"]["queued"] == 0
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert len(CALLS) == 1


def test_the_dev_server_ticker_ticks_until_stopped(make_app: Callable[..., App], kind: str) -> None:
    app = make_app()
    due_entry(app, kind)
    summaries: list[dict[str, Any]] = []
    ticked = threading.Event()

    def tick() -> None:
        summaries.append(run_task(app, "tick", time.time()))
        ticked.set()

    stop = start_ticker(tick, 0.05)
    assert ticked.wait(5)
    time.sleep(0.2)
    stop.set()
    time.sleep(0.1)
    count = len(summaries)
    time.sleep(0.2)
    assert len(summaries) == count >= 2  # ticked more than once, then no more
    assert sum(s["queued"] for s in summaries) == 1
    app.queue.drain(5)  # type: ignore[attr-defined]
    assert len(CALLS) == 1


def test_a_failing_tick_does_not_stop_the_ticker() -> None:
    attempts: list[int] = []
    second = threading.Event()

    def failing() -> None:
        attempts.append(1)
        if len(attempts) >= 2:
            second.set()
        raise RuntimeError("store down")

    stop = start_ticker(failing, 0.02)
    assert second.wait(5)
    stop.set()


def test_python_m_shared_tick_prints_the_summary(
    make_app: Callable[..., App], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.cli import main

    app = make_app()
    due_entry(app, kind)
    assert main(["tick"]) == 0
    assert '"queued": 1' in capsys.readouterr().out
    assert len(CALLS) == 1  # the in-process queue finished before the command returned
