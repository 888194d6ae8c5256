"""Exponential backoff with full jitter: the one schedule of every retry loop.

Full jitter (a wait drawn uniformly between 0 and an exponential ceiling) spreads the retries of
clients that failed together, so they do not hit a recovering service in step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    attempts: int  # the first try included
    base_delay: float  # seconds: the ceiling of the first wait, doubled for each next one
    max_delay: float  # seconds: no ceiling above this
    sleep: Callable[[float], None] = time.sleep

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the second attempt)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))

    def __iter__(self) -> Iterator[int]:
        """The attempt numbers (1, 2, ...), waiting ``delay`` before each but the first: a loop
        over them that ``break``s on success or on a failure not worth retrying."""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.sleep(self.delay(attempt - 1))
            yield attempt
