"""Queue fixtures: test-only work kinds (the SQS ones are in tests/fixtures/sqs.py)."""

from __future__ import annotations

import pytest

from shared import worker
from tests.queue import handlers


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> handlers.Recorder:
    """Registers the test kinds and returns what their handlers record."""
    monkeypatch.setattr(worker, "HANDLERS", {**worker.HANDLERS, **handlers.KINDS})
    fresh = handlers.Recorder()
    monkeypatch.setattr(handlers, "RECORDER", fresh)
    return fresh
