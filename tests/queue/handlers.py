"""Handlers of test-only work kinds (registered by monkeypatching ``shared.worker.HANDLERS``).

They record what ran, when and alongside what, so tests can prove order and the absence of
overlap within a group. Their errors quote a phone number and the payload on purpose: none of
it may reach a log line or a dead letter's reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shared.exceptions import ChannelError
from shared.queue.base import WorkItem

PHONE = "+221 77 123 45 67"
KINDS = {
    "test_record": "tests.queue.handlers:record",
    "test_poison": "tests.queue.handlers:poison",
    "test_permanent": "tests.queue.handlers:permanent",
}


@dataclass
class Recorder:
    """What the handlers ran: (group, dedup_id, attempt) in start order, and concurrency."""

    runs: list[tuple[str, str, int]] = field(default_factory=list)
    overlaps: int = 0  # a handler started while another of its group was running
    max_running: int = 0
    _running: dict[str, int] = field(default_factory=dict)
    _barriers: dict[str, threading.Barrier] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, item: WorkItem) -> None:
        with self._lock:
            self.runs.append((item.group, item.dedup_id, item.attempt))
            if self._running.get(item.group):
                self.overlaps += 1
            self._running[item.group] = self._running.get(item.group, 0) + 1
            self.max_running = max(self.max_running, sum(self._running.values()))

    def leave(self, item: WorkItem) -> None:
        with self._lock:
            self._running[item.group] -= 1

    def barrier(self, name: str, parties: int) -> threading.Barrier:
        with self._lock:
            return self._barriers.setdefault(name, threading.Barrier(parties, timeout=5))

    def done(self, group: str | None = None) -> list[str]:
        """The dedup ids run, in order (of one group when given)."""
        with self._lock:
            return [d for g, d, _ in self.runs if group is None or g == group]


RECORDER = Recorder()


def record(app: Any, item: WorkItem) -> None:
    """Succeeds, after ``sleep`` seconds, once ``fail_attempts`` attempts have failed; with
    ``barrier`` it first waits for that many items to be running at once."""
    RECORDER.enter(item)
    try:
        if barrier := item.payload.get("barrier"):
            RECORDER.barrier(str(barrier), int(item.payload["parties"])).wait()
        time.sleep(float(item.payload.get("sleep", 0)))
        if item.attempt <= int(item.payload.get("fail_attempts", 0)):
            raise TimeoutError(f"provider slow answering {PHONE}: {item.payload}")
    finally:
        RECORDER.leave(item)


def poison(app: Any, item: WorkItem) -> None:
    """Always fails, as a bug would."""
    RECORDER.enter(item)
    RECORDER.leave(item)
    raise ValueError(f"cannot parse {item.payload.get('text')!r} from {PHONE}")


def permanent(app: Any, item: WorkItem) -> None:
    """Fails in a way retrying cannot fix (WhatsApp 131047: outside the 24-hour window)."""
    RECORDER.enter(item)
    RECORDER.leave(item)
    raise ChannelError(f"re-engagement needed for {PHONE}", retryable=False, code=131047)
