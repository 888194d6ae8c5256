"""The lock files (``make lock``) are up to date with the requirements they resolve: every pin is
locked at its version with hashes, and the Lambda layer's lock takes the versions tested here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_LOCK = ROOT / "requirements-dev.lock"
AWS_LOCK = ROOT / "infra" / "aws" / "requirements-aws.lock"
STALE = "stale: run `make lock` after editing requirements*.txt"


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text.split("[")[0].strip()).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` of a requirements file (``-r`` followed)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif line:
            name, _, version = line.partition("==")
            found[_name(name)] = version.strip()
    return found


def locked(path: Path) -> dict[str, dict[str, list[str]]]:
    """Per package, per locked version (a universal lock may hold two behind markers): hashes."""
    entries: dict[str, dict[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # join continuation lines
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split(" --")
        name, _, version = requirement.split(";")[0].partition("==")
        hashes = [o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:")]
        entries.setdefault(_name(name), {})[version.strip()] = hashes
    return entries


def test_every_pin_is_locked_at_its_version_with_hashes() -> None:
    for requirements, lock in (
        (ROOT / "requirements-dev.txt", DEV_LOCK),
        (ROOT / "infra" / "aws" / "requirements-aws.txt", AWS_LOCK),
    ):
        entries = locked(lock)
        for name, version in pins(requirements).items():
            assert list(entries.get(name, {})) == [version], f"{lock.name}: {name} {STALE}"
        for name, versions in entries.items():
            for version, hashes in versions.items():
                assert hashes, f"{lock.name}: {name}=={version} has no hash"


def test_the_lambda_layer_locks_the_versions_tested_here() -> None:
    dev = locked(DEV_LOCK)
    for name, versions in locked(AWS_LOCK).items():
        assert set(versions) <= set(dev.get(name, {})), f"{AWS_LOCK.name}: {name} {STALE}"
