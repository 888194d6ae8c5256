"""Structured JSON logs that cannot carry customer data.

Only the named, typed fields below are written: no free-form message text, no exception message
(it may quote a value), no request body, header or query. A test proves that message text, phone
numbers and secrets never reach the output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback

_logger = logging.getLogger("comptoir")


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr (idempotent; the platforms collect stderr)."""
    if not any(getattr(h, "_comptoir", False) for h in _logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._comptoir = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(message)s"))
        _logger.addHandler(handler)
        _logger.propagate = False
    _logger.setLevel(level)


def _emit(level: int, event: str, fields: dict[str, str | int | float | bool | None]) -> None:
    if _logger.isEnabledFor(level):
        record = {"ts": round(time.time(), 3), "level": logging.getLevelName(level), "event": event}
        record.update(fields)
        _logger.log(level, json.dumps(record, separators=(",", ":")))


def log_request(
    *,
    function: str,
    shop: str,
    request_id: str,
    method: str,
    route: str,
    status: int,
    latency_ms: float,
) -> None:
    _emit(
        logging.INFO,
        "request",
        {
            "function": function,
            "shop": shop or None,
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": latency_ms,
        },
    )


def log_unexpected(function: str, request_id: str, exc: BaseException) -> None:
    """An unexpected error: its type and where it happened, never its message."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    _emit(
        logging.ERROR,
        "unexpected_error",
        {
            "function": function,
            "request_id": request_id,
            "error_type": type(exc).__name__,
            "where": " < ".join(
                f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames)
            ),
        },
    )


def log_event(event: str, **fields: str | int | float | bool | None) -> None:
    """An operational event (import finished, store opened...): counts and names only."""
    _emit(logging.INFO, event, dict(fields))


def log_warning(event: str, **fields: str | int | float | bool | None) -> None:
    """Something an operator must fix (a missing key...): names only, never a value."""
    _emit(logging.WARNING, event, dict(fields))
