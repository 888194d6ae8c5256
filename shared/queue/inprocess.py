"""In-process queue (embedded default): a small pool of worker threads in the same process.

Items of one group run one at a time, in the order sent; different groups run in parallel on
the pool. An item whose ``process`` raises is delivered again, with ``attempt`` raised by one,
after an exponential backoff, and its group waits meanwhile (as an SQS FIFO group waits for a
failed message). Deciding when to give up belongs to ``process`` (``shared.worker.deliver``
dead-letters an item on its last attempt and returns), as it does behind SQS and Pub/Sub; this
queue keeps retrying an item while ``process`` keeps raising, so nothing is dropped.

A ``dedup_id`` seen in the last ``dedup_seconds`` (5 minutes, as SQS FIFO) is dropped at send.
Work lives in memory: what is still queued when the process exits is lost, so ``close`` drains
first. Thread-safe.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shared.exceptions import ConfigError, QueueError
from shared.log import log_event
from shared.queue import dedup_key
from shared.queue.base import Queue, WorkItem

_MAX_DELAY = 60.0  # between two deliveries of an item that keeps failing


class InProcessQueue(Queue):
    backend = "inprocess"

    def __init__(
        self,
        process: Callable[[WorkItem], None],
        *,
        workers: int = 4,
        retry_delay: float = 0.5,
        dedup_seconds: float = 300.0,
        close_timeout: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ConfigError("QUEUE_URL: inprocess workers must be at least 1")
        self._process = process
        self._workers = workers
        self._retry_delay = retry_delay
        self._dedup_seconds = dedup_seconds
        self._close_timeout = close_timeout
        self._cond = threading.Condition()
        self._pending: dict[str, deque[WorkItem]] = {}  # group -> items waiting, in order
        self._scheduled: set[str] = set()  # groups in _ready, running, or waiting for a retry
        self._ready: deque[str] = deque()  # groups whose next item may run now
        self._retries: list[tuple[float, int, WorkItem]] = []  # heap of (due, seq, item)
        self._seq = itertools.count()
        self._seen: dict[str, float] = {}  # dedup key -> expiry, in expiry order
        self._outstanding = 0  # sent and not finished
        self._threads: list[threading.Thread] = []
        self._closed = False  # refuses new items
        self._stopped = False  # workers exit

    @classmethod
    def from_url(
        cls, url: str, *, process: Callable[[WorkItem], None], **options: Any
    ) -> InProcessQueue:
        """``inprocess://`` or ``inprocess://?workers=4``."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if parts.netloc or parts.path not in ("", "/") or set(query) - {"workers"}:
            raise ConfigError(
                f"QUEUE_URL: expected inprocess:// or inprocess://?workers=N, got {url!r}"
            )
        try:
            workers = int(query.get("workers", "4"))
        except ValueError:
            raise ConfigError("QUEUE_URL: inprocess workers must be an integer") from None
        return cls(process, workers=workers, **options)

    def send(self, item: WorkItem) -> None:
        key = dedup_key(item)
        with self._cond:
            if self._closed:
                raise QueueError("the in-process queue is closed")
            now = time.monotonic()
            self._forget_expired(now)
            if key in self._seen:
                log_event("queue_duplicate_dropped", backend=self.backend, kind=item.kind)
                return
            self._seen[key] = now + self._dedup_seconds
            self._outstanding += 1
            self._pending.setdefault(item.group, deque()).append(item)
            if item.group not in self._scheduled:
                self._scheduled.add(item.group)
                self._ready.append(item.group)
            self._start_workers()
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every item sent so far is finished; False if ``timeout`` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    def close(self) -> None:
        """Refuse new items, finish the queued ones (up to ``close_timeout``), stop the workers."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        drained = self.drain(self._close_timeout)
        with self._cond:
            self._stopped = True
            abandoned = self._outstanding
            self._cond.notify_all()
        if drained:
            for thread in self._threads:
                thread.join(timeout=5)
        else:  # a worker still running an item is left to finish it (daemon threads)
            log_event("queue_closed_with_work_left", backend=self.backend, items=abandoned)

    # --- workers -----------------------------------------------------------------------------

    def _start_workers(self) -> None:
        # Started on first use: an instance that never enqueues runs no thread.
        while len(self._threads) < self._workers:
            thread = threading.Thread(
                target=self._run, name=f"comptoir-worker-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _run(self) -> None:
        while (item := self._next()) is not None:
            try:
                self._process(item)
            except Exception:  # noqa: BLE001 - process logs its failures; the item is retried
                self._retry_later(item)
            else:
                self._finish(item)

    def _next(self) -> WorkItem | None:
        """The next item to run (a due retry first), or None once the queue is stopped."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if self._retries and self._retries[0][0] <= now:
                    return heapq.heappop(self._retries)[2]
                if self._ready:
                    group = self._ready.popleft()
                    waiting = self._pending[group]
                    item = waiting.popleft()
                    if not waiting:
                        del self._pending[group]
                    return item
                self._cond.wait(self._retries[0][0] - now if self._retries else None)
            return None

    def _retry_later(self, item: WorkItem) -> None:
        delay = min(self._retry_delay * 2 ** min(item.attempt - 1, 16), _MAX_DELAY)
        again = item.model_copy(update={"attempt": item.attempt + 1})
        with self._cond:
            # The group stays scheduled: its later items wait behind this one.
            heapq.heappush(self._retries, (time.monotonic() + delay, next(self._seq), again))
            self._cond.notify_all()

    def _finish(self, item: WorkItem) -> None:
        with self._cond:
            self._outstanding -= 1
            if item.group in self._pending:
                self._ready.append(item.group)
            else:
                self._scheduled.discard(item.group)
            self._cond.notify_all()

    def _forget_expired(self, now: float) -> None:
        # Every key lives as long, so insertion order is expiry order.
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[key]
