"""The layers hold: an AST check of every import (lazy and type-only ones included) in shared/.

Rules (issue 10): a port (shared/llm, shared/store, shared/queue, shared/blob,
shared/payments, shared/speech) imports from the library only itself and the base modules
below, never the domain (catalogue, CRM, models, money, agent, tools, chat, channels...), the
settings or the app; ``shared/settings.py`` imports no port; a channel imports nothing of
``shared.http`` (the HTTP layer calls channels, not the reverse); only entry points import the
console's ``shared.admin``. A port's ``cli.py`` is exempt: a command-line entry point is the
outermost layer, it only lives beside its port.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared"
PORTS = ("llm", "store", "queue", "blob", "payments", "speech")
PORT_MAY_IMPORT = frozenset(
    {"shared.aws", "shared.backends", "shared.backoff", "shared.exceptions", "shared.gcp"}
    | {"shared.ids", "shared.jsonsafe", "shared.log"}
)

# Entry points outside a package of their own (the console's package is one).
ENTRY_MODULES = {("cli.py",), ("devserver.py",)}

# Today's violations, each removed by the issue item named; trim an entry when its import goes
# (test_every_known_violation_still_exists fails until then, so this list stays true).
KNOWN: set[tuple[str, str]] = set()  # every violation once listed here is gone


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])  # shared.catalog.retrieval -> shared.catalog


def breaks_a_rule(path: tuple[str, ...], module: str) -> bool:
    """Whether ``shared/<path>`` importing ``module`` crosses a layer."""
    package = path[0] if len(path) > 1 else ""
    if package in PORTS and path[-1] != "cli.py":
        own = f"shared.{package}"
        return _package(module) != own and _package(module) not in PORT_MAY_IMPORT
    if path == ("settings.py",):
        return _package(module) in {f"shared.{port}" for port in (*PORTS, "channels")}
    if package == "channels":
        return _package(module) == "shared.http"
    if _package(module) == "shared.admin":  # the console's API is an entry point
        return package not in {"admin", "http"} and path not in ENTRY_MODULES
    return False


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "shared":
            modules.update(f"shared.{alias.name}" for alias in node.names)  # from shared import crm
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            modules.add(node.module)
    return {m for m in modules if m.startswith("shared.")}


def _violations() -> set[tuple[str, str]]:
    return {
        (path.relative_to(ROOT).as_posix(), module)
        for path in SHARED.rglob("*.py")
        for module in _imports(path)
        if breaks_a_rule(path.relative_to(SHARED).parts, module)
    }


def test_no_new_layering_violation() -> None:
    assert _violations() - KNOWN == set()


def test_every_known_violation_still_exists() -> None:
    assert KNOWN - _violations() == set(), "fixed: remove these from KNOWN"


@pytest.mark.parametrize(
    ("path", "module", "breaks"),
    [
        (("llm", "offline.py"), "shared.crm", True),
        (("store", "sqlite.py"), "shared.settings", True),
        (("blob", "gcs.py"), "shared.queue", True),
        (("payments", "wave.py"), "shared.models", True),
        (("payments", "stripe.py"), "shared.jsonsafe", False),
        (("queue", "pubsub.py"), "shared.gcp", False),
        (("queue", "sqs.py"), "shared.queue.base", False),
        (("queue", "cli.py"), "shared.worker", False),
        (("settings.py",), "shared.llm", True),
        (("settings.py",), "shared.exceptions", False),
        (("channels", "telegram", "sender.py"), "shared.http", True),
        (("channels", "telegram", "sender.py"), "shared.models", False),
        (("chat.py",), "shared.http", False),
        (("conversations.py",), "shared.admin.auth", True),
        (("cli.py",), "shared.admin.operators", False),
        (("http", "__init__.py"), "shared.admin.exceptions", False),
    ],
)
def test_the_rules(path: tuple[str, ...], module: str, breaks: bool) -> None:
    assert breaks_a_rule(path, module) is breaks
