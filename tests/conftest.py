"""Project-wide fixtures. Each module in ``tests/fixtures/`` is a plugin (one per backend or
stand-in server), so adding a backend adds one file and no edit here."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
