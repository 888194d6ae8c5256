"""Local folder backend, the embedded default: no cloud, no keys.

Each object is a plain file under the root (so the folder can be served as it is); its headers
are in a JSON sidecar at the same path under ``.blob-meta/headers/`` (no key may start with
``.blob-meta/``). Every file is replaced atomically (written aside, then renamed).

Limitations: a key cannot be both an object and a "folder" of other keys (``a`` and ``a/b``),
which S3 and GCS allow; bytes and headers are two renames, so a reader racing a writer may see
the new bytes with the old headers for an instant.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.blob.base import Blob, BlobObject, split_url
from shared.blob.exceptions import BlobError, BlobNotFoundError, InvalidBlobKeyError
from shared.exceptions import ConfigError

META_DIR = ".blob-meta"
_DEFAULT_TYPE = "application/octet-stream"  # for files dropped in the folder by hand
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class LocalBlob(Blob):
    backend = "local"

    def __init__(self, root: str | Path, *, public_url: str | None = None) -> None:
        super().__init__(public_url=public_url)
        self.root = Path(root)
        self._headers_root = self.root / META_DIR / "headers"
        self._tmp = self.root / META_DIR / "tmp"

    @classmethod
    def from_url(cls, url: str, **_clients: Any) -> LocalBlob:
        """``file:///absolute/dir``, ``file://relative/dir`` or a plain path; option
        ``public_url`` (e.g. the dev server that serves the folder)."""
        if "://" not in url:
            return cls(url)
        location, options = split_url(url, {"public_url"})
        if not location:
            raise ConfigError(f"blob URL {url!r}: expected file:///path/to/dir")
        return cls(location, public_url=options.get("public_url"))

    def _put(self, key: str, data: bytes, content_type: str, cache_control: str | None) -> None:
        path = self._path(key)
        headers = {"content_type": content_type, "cache_control": cache_control}
        with _errors("write", key):
            # Headers first: an object exists once its bytes do, so a failure in between
            # leaves at worst a stale sidecar that the next put replaces.
            self._replace(self._headers_path(key), json.dumps(headers).encode())
            self._replace(path, data)

    def _get(self, key: str) -> BlobObject:
        with _errors("read", key):
            try:
                data = self._path(key).read_bytes()
            except _MISSING:
                raise BlobNotFoundError(f"no blob {key!r}") from None
            try:
                headers = json.loads(self._headers_path(key).read_bytes())
            except _MISSING:
                headers = {"content_type": _DEFAULT_TYPE, "cache_control": None}
        return BlobObject(data, headers["content_type"], headers["cache_control"])

    def _delete(self, key: str) -> None:
        with _errors("delete", key):
            for path, top in (
                (self._path(key), self.root),
                (self._headers_path(key), self._headers_root),
            ):
                try:
                    path.unlink()
                except _MISSING:
                    continue
                # Empty folders left behind would block a later object of the same name.
                _prune(path.parent, top)

    def _list(self, prefix: str) -> Iterator[str]:
        folders = prefix.split("/")[:-1]
        if folders[:1] == [META_DIR]:
            return
        for folder, subfolders, files in os.walk(self.root.joinpath(*folders)):
            relative = Path(folder).relative_to(self.root).as_posix()
            if relative == ".":
                subfolders[:] = [name for name in subfolders if name != META_DIR]
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix):
                    yield key

    def _url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def _path(self, key: str) -> Path:
        if key.split("/", 1)[0] == META_DIR:
            raise InvalidBlobKeyError(f"a local blob key cannot start with {META_DIR}/")
        return self.root / key

    def _headers_path(self, key: str) -> Path:
        # The same tree as the objects': a suffix could collide with another key's folder.
        return self._headers_root / key

    def _replace(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
            os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; a web server must read it
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def _prune(folder: Path, top: Path) -> None:
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): stop
            return
        folder = folder.parent


@contextmanager
def _errors(action: str, key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise BlobError(f"local: cannot {action} {key!r}: {exc.strerror}") from exc
