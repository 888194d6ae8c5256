"""Fixtures of the payment tests: the tool tests' turn context."""

from __future__ import annotations

from tests.test_tools import make_ctx

__all__ = ["make_ctx"]
