"""Identifiers: unguessable session ids and time-sortable message ids."""

from __future__ import annotations

import re
import secrets
import threading
import time

# No leading "__": the store reserves it (Firestore does), so such an id could never be stored.
SESSION_ID_RE = re.compile(r"^(?!__)[A-Za-z0-9_-]{22,64}$")
# new_sortable_id's shape; without the random part it is a position in time (sortable_at).
SORTABLE_ID_RE = re.compile(r"^\d{16}(?:-[0-9a-f]{6})?$")
_lock = threading.Lock()
_last_us = 0


def new_session_id() -> str:
    """192 random bits, URL-safe (32 characters), never starting with "__" (a store refuses
    such ids) nor with "-" (a command line would read the id as an option:
    `python -m shared release -abc…`)."""
    while (session_id := secrets.token_urlsafe(24)).startswith(("__", "-")):
        pass  # one id in 60 or so: draw again (the other bits stay uniformly random)
    return session_id


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None


def new_sortable_id() -> str:
    """Microseconds since the epoch, strictly increasing within a process, plus random bits so
    ids from concurrent processes do not collide; lexical order is time order."""
    global _last_us
    with _lock:
        _last_us = max(time.time_ns() // 1000, _last_us + 1)
        now_us = _last_us
    return f"{now_us:016d}-{secrets.token_hex(3)}"


def sortable_at(at: float) -> str:
    """The position of time ``at`` among sortable ids: every id made before ``at`` sorts before
    it, every id made after sorts after."""
    return f"{int(at * 1_000_000):016d}"


def is_sortable_id(value: object) -> bool:
    """A sortable id, or a position in time (``sortable_at``)."""
    return isinstance(value, str) and SORTABLE_ID_RE.fullmatch(value) is not None
