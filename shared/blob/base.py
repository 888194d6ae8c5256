"""The blob (object storage) port: the widget's files, and later media.

An object is bytes under a key, with a Content-Type and an optional Cache-Control that the
backend serves back. The base class validates keys, prefixes and header values, and builds
public URLs; a backend implements ``_put``, ``_get``, ``_delete``, ``_list`` and ``_url``.

Keys are ``/``-separated segments, the same rules on every backend so a key that works locally
works in the cloud: 1-1024 bytes of UTF-8 (the S3 and GCS limit), segments non-empty (no leading,
trailing or doubled ``/``), at most 255 bytes each (a file name's limit), never ``.`` or ``..``,
no backslash and no control character.
"""

from __future__ import annotations

import builtins
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qsl, quote

from shared.blob.exceptions import InvalidBlobKeyError
from shared.exceptions import ConfigError

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_FORBIDDEN_CHARS_RE = re.compile(r"[\x00-\x1f\x7f\\]")
# Header values go on the wire as they are: printable ASCII only, so no CR/LF can split them.
_HEADER_VALUE_RE = re.compile(r"[\x20-\x7e]{1,1024}")


@dataclass(frozen=True)
class BlobObject:
    data: bytes
    content_type: str
    cache_control: str | None


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidBlobKeyError("a blob key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidBlobKeyError(f"a blob key holds at most {MAX_KEY_BYTES} bytes")
    if _FORBIDDEN_CHARS_RE.search(key):
        raise InvalidBlobKeyError("a blob key holds no backslash or control character")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidBlobKeyError(
                "a blob key is relative ('a/b.js'): no leading, trailing or doubled '/', "
                "no '.' or '..' segment"
            )
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidBlobKeyError(f"a key segment holds at most {MAX_SEGMENT_BYTES} bytes")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is empty, or the start of a valid key (``widget/``, ``widget/pan``)."""
    if prefix != "":
        check_key(prefix.removesuffix("/"))
    return prefix


def _header_value(name: str, value: str) -> str:
    # Set by our code, not by a customer: a bad value is a bug, hence ValueError.
    if not isinstance(value, str) or not _HEADER_VALUE_RE.fullmatch(value):
        raise ValueError(f"{name} must be 1-1024 printable ASCII characters")
    return value


def split_url(url: str, options: Iterable[str]) -> tuple[str, dict[str, str]]:
    """``scheme://LOCATION?name=value&...`` as LOCATION and the options, all of them known."""
    location, _, query = url.split("://", 1)[-1].partition("?")
    found = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(found) - set(options))
    if unknown:
        raise ConfigError(f"blob URL {url!r}: unknown option(s) {', '.join(unknown)}")
    public_url = found.get("public_url")
    if public_url is not None and not public_url.startswith(("https://", "http://")):
        raise ConfigError(f"blob URL {url!r}: public_url must start with https:// or http://")
    return location, found


class Blob(ABC):
    """Object storage; see the module docstring. Thread-safe.

    ``public_url`` is where the objects are served from (a CDN, a public bucket, a local
    server): when set, ``url(key)`` is ``public_url/key``; otherwise it is the backend's own
    URL (presigned on S3). Also a context manager that closes the backend.
    """

    backend: ClassVar[str]

    def __init__(self, *, public_url: str | None = None) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None

    def put(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> None:
        """Create or replace the object, its bytes and headers at once."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("blob data must be bytes")
        self._put(
            check_key(key),
            bytes(data),
            _header_value("content_type", content_type),
            None if cache_control is None else _header_value("cache_control", cache_control),
        )

    def get(self, key: str) -> BlobObject:
        """The object; raises BlobNotFoundError if there is none."""
        return self._get(check_key(key))

    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing one is not an error (S3 cannot tell)."""
        self._delete(check_key(key))

    def list(self, prefix: str = "") -> builtins.list[str]:
        """The keys that start with ``prefix`` (a plain string prefix), sorted."""
        return sorted(self._list(check_prefix(prefix)))

    def url(self, key: str) -> str:
        key = check_key(key)
        if self.public_url:
            return f"{self.public_url}/{quote(key)}"
        return self._url(key)

    def close(self) -> None:  # noqa: B027 - a backend with nothing to release keeps it
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- backend primitives, called with validated arguments -----------------------------

    @abstractmethod
    def _put(self, key: str, data: bytes, content_type: str, cache_control: str | None) -> None:
        """Write bytes and headers in one operation."""

    @abstractmethod
    def _get(self, key: str) -> BlobObject: ...

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterable[str]: ...

    @abstractmethod
    def _url(self, key: str) -> str:
        """An absolute URL that serves the object (file://, presigned, or public)."""
