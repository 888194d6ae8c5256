"""The Blob contract: one suite, run against every backend (see ``tests/blob/conftest.py``)."""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import quote

import pytest

from shared.blob import Blob, BlobNotFoundError, BlobObject, InvalidBlobKeyError
from shared.blob.gcs import GCSBlob
from shared.blob.local import LocalBlob

# Every byte value, CR/LF and a multipart-looking line: nothing may be decoded or trimmed.
BINARY = bytes(range(256)) * 4 + b"\r\n--boundary\r\n\r\n"
ODD_KEY = "médias/un fichier+été&x=1?#.txt"


def test_round_trip_bytes_content_type_and_cache_control(blob: Blob) -> None:
    blob.put(
        "media/photo.bin", BINARY, content_type="image/png", cache_control="private, max-age=60"
    )
    assert blob.get("media/photo.bin") == BlobObject(BINARY, "image/png", "private, max-age=60")


def test_cache_control_is_optional(blob: Blob) -> None:
    blob.put("a.txt", b"hi", content_type="text/plain; charset=utf-8")
    assert blob.get("a.txt") == BlobObject(b"hi", "text/plain; charset=utf-8", None)


def test_empty_object(blob: Blob) -> None:
    blob.put("empty", b"", content_type="application/octet-stream")
    assert blob.get("empty").data == b""


def test_overwrite_replaces_bytes_and_headers(blob: Blob) -> None:
    blob.put("widget.js", b"v1", content_type="text/javascript", cache_control="max-age=1")
    blob.put("widget.js", b"version 2", content_type="application/javascript")
    assert blob.get("widget.js") == BlobObject(b"version 2", "application/javascript", None)
    assert blob.list() == ["widget.js"]


def test_keys_with_spaces_unicode_and_url_characters(blob: Blob) -> None:
    blob.put(ODD_KEY, b"odd", content_type="text/plain")
    assert blob.get(ODD_KEY).data == b"odd"
    assert blob.list("médias/") == [ODD_KEY]


def test_missing_key_raises_not_found(blob: Blob) -> None:
    with pytest.raises(BlobNotFoundError):
        blob.get("nope/missing.js")


def test_list_by_prefix_is_sorted_and_plain(blob: Blob) -> None:
    keys = ["widget/panel.js", "widget/a/b.css", "widgets.txt", "media/x.png", "widget/z.json"]
    for key in keys:
        blob.put(key, key.encode(), content_type="text/plain")
    assert blob.list("widget/") == ["widget/a/b.css", "widget/panel.js", "widget/z.json"]
    assert blob.list("widget") == [
        "widget/a/b.css",
        "widget/panel.js",
        "widget/z.json",
        "widgets.txt",
    ]
    assert blob.list("widget/pa") == ["widget/panel.js"]
    assert blob.list() == sorted(keys)
    assert blob.list("nothing/") == []


def test_delete_removes_and_is_idempotent(blob: Blob) -> None:
    blob.put("a/b/c.txt", b"x", content_type="text/plain")
    blob.put("a/d.txt", b"y", content_type="text/plain")
    blob.delete("a/b/c.txt")
    with pytest.raises(BlobNotFoundError):
        blob.get("a/b/c.txt")
    assert blob.list() == ["a/d.txt"]
    blob.delete("a/b/c.txt")  # already gone: not an error
    blob.delete("never/there")


def test_a_deleted_folder_frees_its_name(blob: Blob) -> None:
    blob.put("a/b", b"x", content_type="text/plain")
    blob.delete("a/b")
    blob.put("a", b"now a file", content_type="text/plain")
    assert blob.get("a").data == b"now a file"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs.js",
        "a/../b",
        "..",
        "./a",
        "a/.",
        "a//b",
        "a/",
        "a\\b",
        "a\nb",
        "a\x00",
        "é" * 513,
        "a" * 256,
    ],
)
def test_invalid_keys_are_rejected(blob: Blob, key: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        blob.put(key, b"x", content_type="text/plain")
    with pytest.raises(InvalidBlobKeyError):
        blob.get(key)
    with pytest.raises(InvalidBlobKeyError):
        blob.delete(key)
    with pytest.raises(InvalidBlobKeyError):
        blob.url(key)
    assert blob.list() == []


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a/../", "a//"])
def test_invalid_prefixes_are_rejected(blob: Blob, prefix: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        blob.list(prefix)


@pytest.mark.parametrize(
    ("content_type", "cache_control"),
    [("", None), ("text/plain\r\nX-Evil: 1", None), ("a/b", "x\n")],
)
def test_header_values_cannot_split_headers(
    blob: Blob, content_type: str, cache_control: str | None
) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        blob.put("a.txt", b"x", content_type=content_type, cache_control=cache_control)


def test_url_serves_the_object(blob: Blob) -> None:
    blob.put(ODD_KEY, BINARY, content_type="text/plain")
    url = blob.url(ODD_KEY)
    if isinstance(blob, LocalBlob):
        assert url == (blob.root / ODD_KEY).resolve().as_uri()
    elif isinstance(blob, GCSBlob):
        assert url == f"{blob.endpoint_url}/{blob.bucket}/{quote(ODD_KEY)}"
    else:  # S3: presigned, valid for an hour
        assert re.search(r"[?&]X-Amz-Expires=3600(&|$)", url)
        assert re.search(r"[?&]X-Amz-Signature=[0-9a-f]{64}(&|$)", url)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == BINARY


def test_public_url_names_where_objects_are_served(blob: Blob) -> None:
    blob.public_url = "https://cdn.example/shop"
    assert blob.url(ODD_KEY) == f"https://cdn.example/shop/{quote(ODD_KEY)}"
    assert "%2F" not in blob.url("widget/widget.js")
