"""The one shape of the ports' factories (``open_store``, ``open_queue``, ``open_blob``,
``open_llm``): a table from a name (a URL scheme, a provider) to ``"package.module:Class"``, and
the class imported only once it is chosen, so a function pays for no SDK it does not use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from shared.exceptions import ConfigError

T = TypeVar("T")


def choose(table: Mapping[str, T], name: str, unknown: str) -> T:
    """``table[name]``; a ConfigError with the message ``unknown`` when the table lacks it."""
    entry = table.get(name)
    if entry is None:
        raise ConfigError(unknown)
    return entry


def load_target(target: str) -> Any:
    """The object (a backend class, a handler) named ``"package.module:name"``, its module
    imported now."""
    module_name, name = target.split(":")
    return getattr(importlib.import_module(module_name), name)
