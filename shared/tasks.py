"""Tasks: named jobs a scheduler (or an operator) runs, each ``(app, now) -> dict`` returning a
JSON summary. ``functions/tasks.py`` serves them as ``POST /tasks/{name}`` behind
``TASKS_SECRET``; ``python -m shared tick`` and the dev server's tick thread call them directly.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from shared.backends import load_target
from shared.exceptions import TasksSecretError, UnknownTaskError

if TYPE_CHECKING:
    from shared.app import App
    from shared.settings import Settings

TASKS_HEADER = "X-Tasks-Secret"  # what the caller puts TASKS_SECRET in
TASKS: dict[str, str] = {
    "tick": "shared.schedules:tick_task",  # fire the due schedules (campaigns, reminders)
    "consolidate": "shared.consolidator:consolidate_task",  # customers' long-term memory
    "retention": "shared.retention:retention_task",  # erase conversations past retention_days
}


def run_task(app: App, name: str, now: float) -> dict[str, Any]:
    target = TASKS.get(name)
    if target is None:
        raise UnknownTaskError(f"no task {name!r} (known: {', '.join(sorted(TASKS))})")
    summary: dict[str, Any] = load_target(target)(app, now)
    return summary


def check_tasks_secret(settings: Settings, given: str) -> None:
    """Raise TasksSecretError unless ``given`` is TASKS_SECRET (compared in constant time);
    always while none is set."""
    expected = settings.tasks_secret
    if expected is None or not given:
        raise TasksSecretError("no tasks secret")
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise TasksSecretError("wrong tasks secret")
