"""The built widget and console (``node web/build.mjs``): built once when ``web/dist`` is
missing or older than its sources, so a fresh checkout's test run works without a separate
build step."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = WEB / "dist"
MANIFEST = DIST / "manifest.json"


def _sources() -> list[Path]:
    return [WEB / "build.mjs", *sorted((WEB / "src").iterdir()), *sorted((WEB / "admin").iterdir())]


def _stale() -> bool:
    if not MANIFEST.exists() or not (WEB / "widget.js").exists():
        return True
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    if not all((DIST / name).exists() for name in manifest["files"]):
        return True
    return MANIFEST.stat().st_mtime < max(path.stat().st_mtime for path in _sources())


def built_widget() -> dict[str, Any]:
    """The build manifest, building first if needed."""
    if _stale():
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed to build the widget (node web/build.mjs)")
        done = subprocess.run(
            [node, str(WEB / "build.mjs")], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"node web/build.mjs failed:\n{done.stdout}\n{done.stderr}")
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return manifest
