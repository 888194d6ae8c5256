"""The operator console's server side: ``functions/admin.py`` serves it under ``/admin/api``.

Every route finds its operator with ``auth.operator_of(request)`` and works in that operator's
shop only: no route takes a shop from the request, so one shop's operator can never name
another's data. Each area is a module with ``register(api)``, listed in ``AREAS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from types import ModuleType

# The console's areas, each a module of this package with ``register(api: HTTPFunction)``.
AREAS: tuple[str, ...] = (
    "session",
    "conversations",
    "live",
    "orders",
    "customers",
    "shop",
    "marketing",
)


def areas() -> Iterator[ModuleType]:
    for name in AREAS:
        yield import_module(f"shared.admin.{name}")
