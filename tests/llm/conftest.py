"""The ``provider`` fixture: each LLM contract test runs once per wire provider, against a
loopback server that speaks that provider's protocol to the real SDK client.

A provider's fixture lives in ``tests/fixtures/<name>_server.py`` and is named ``<name>_provider``;
it yields a ``ProviderUnderTest``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from shared.llm import LLM
from tests.llm.script import Script

WIRE_PROVIDERS = ["openai", "gemini"]


@dataclass
class ProviderUnderTest:
    script: Script
    make: Callable[..., LLM]  # make(timeout=..., model=..., base_url=...) -> a fresh LLM
    base_url: str
    api_key: str


@pytest.fixture(params=WIRE_PROVIDERS)
def provider(request: pytest.FixtureRequest) -> ProviderUnderTest:
    under_test: ProviderUnderTest = request.getfixturevalue(f"{request.param}_provider")
    under_test.script.reset()
    return under_test
