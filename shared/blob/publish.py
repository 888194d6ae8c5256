"""Publishing the built widget (``web/dist``) to object storage.

Content-hashed files (``panel.3f9a1c2b.js``) never change under their name, so browsers and
CDNs keep them a year. Everything else (the loader ``widget.js`` that the shop's tag names, html,
manifest.json) is kept 5 minutes, so a release reaches every visitor within minutes.

Order: hashed files first, then the other stable files, the loader last: a visitor never gets a
loader that points to a file not uploaded yet. Old hashed files are left in place, since a loader
still cached in a browser may ask for them.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.blob.base import Blob, check_key
from shared.exceptions import InvalidInputError

LOADER = "widget.js"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=300"
# name.<8+ hex>.ext, e.g. panel.3f9a1c2b.js or panel.3f9a1c2b.js.map
_HASHED_RE = re.compile(r"[^/]+\.[0-9a-f]{8,}(\.[A-Za-z0-9]+)+")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
}
# Python's built-in table only, not the machine's /etc/mime.types: the same answer everywhere.
_MIME_TYPES = mimetypes.MimeTypes()

Role = Literal["hashed", "stable", "loader"]
_ORDER: dict[Role, int] = {"hashed": 0, "stable": 1, "loader": 2}


@dataclass(frozen=True)
class PublishedFile:
    key: str
    size: int
    content_type: str
    cache_control: str
    role: Role


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, encoding = _MIME_TYPES.guess_type(name)
    if guessed is None or encoding is not None:  # unknown, or compressed (needs its own header)
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def is_content_hashed(name: str) -> bool:
    """Whether a file's name carries a hash of its content (``panel.3f9a1c2b.js``)."""
    return _HASHED_RE.fullmatch(name.rsplit("/", 1)[-1]) is not None


def publish_dir(
    blob: Blob, folder: str | Path, *, prefix: str = "", exclude: Collection[str] = ()
) -> list[PublishedFile]:
    """Upload every file under ``folder`` to ``prefix + relative path``, in a safe order.

    Hidden files and folders (``.env``, ``.DS_Store``), symbolic links and the top-level
    folders named in ``exclude`` (``admin``: the console, published under its own prefix) are
    never uploaded. Returns what was uploaded, in upload order.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not a folder (is the widget built?)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    names = [name for name in _files(root) if name.split("/", 1)[0] not in exclude]
    planned = sorted(((_role(name), name) for name in names), key=lambda p: (_ORDER[p[0]], p[1]))
    if not planned:
        raise InvalidInputError(f"{root} holds no file to publish")
    for _, name in planned:  # all or nothing: a bad name stops the release before any upload
        check_key(prefix + name)
    published: list[PublishedFile] = []
    for role, name in planned:
        try:
            data = (root / name).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {root / name}: {exc.strerror}") from exc
        cache_control = IMMUTABLE if role == "hashed" else SHORT_LIVED
        file = PublishedFile(prefix + name, len(data), content_type(name), cache_control, role)
        blob.put(file.key, data, content_type=file.content_type, cache_control=cache_control)
        published.append(file)
    return published


def _files(root: Path) -> list[str]:
    """The relative paths (``/``-separated) of the regular files to publish."""
    names: list[str] = []
    for folder, subfolders, files in os.walk(root):  # does not follow linked folders
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        base = Path(folder)
        names.extend(
            (base / name).relative_to(root).as_posix()
            for name in files
            if not name.startswith(".") and not (base / name).is_symlink()
        )
    return names


def _role(name: str) -> Role:
    if name == LOADER:
        return "loader"
    return "hashed" if is_content_hashed(name) else "stable"
