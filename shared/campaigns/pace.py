"""Pacing: a campaign sends no faster than its channel allows.

WhatsApp's limit is the number's messaging tier (``Shop.whatsapp_messages_per_second``, 80 by
default); Telegram's bots send at most 30 messages a second. One pace per shop and channel in a
process: a run's batches go one at a time (one queue group per run), each batch's threads share
it. The channel's own retry loop backs off when the API still says too many (130429, 131056, 429).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.models import Shop

TELEGRAM_PER_SECOND = 30


class Pace:
    """Hands out send times ``1/rate`` apart; ``wait`` sleeps until the caller's."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self.sleep(at - now)


_paces: dict[tuple[str, str, float], Pace] = {}
_paces_lock = threading.Lock()


def pace_for(shop: Shop, channel: str) -> Pace:
    rate = float(
        shop.whatsapp_messages_per_second if channel == "whatsapp" else TELEGRAM_PER_SECOND
    )
    key = (shop.id, channel, rate)
    with _paces_lock:
        pace = _paces.get(key)
        if pace is None:
            pace = _paces[key] = Pace(rate)
    return pace
