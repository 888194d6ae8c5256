"""The local folder backend: a folder a web server can serve as it is, and its limits."""

from __future__ import annotations

import stat

import pytest

from shared.blob import BlobError, InvalidBlobKeyError
from shared.blob.local import META_DIR, LocalBlob


def test_objects_are_plain_readable_files(local_blob: LocalBlob) -> None:
    local_blob.put("widget/widget.js", b"js", content_type="text/javascript")
    path = local_blob.root / "widget" / "widget.js"
    assert path.read_bytes() == b"js"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in local_blob.root.iterdir()) == [META_DIR, "widget"]
    assert list((local_blob.root / META_DIR / "tmp").iterdir()) == []


def test_a_file_dropped_in_by_hand_is_served_as_bytes(local_blob: LocalBlob) -> None:
    local_blob.root.mkdir()
    (local_blob.root / "by-hand.bin").write_bytes(b"x")
    assert local_blob.get("by-hand.bin").content_type == "application/octet-stream"


def test_the_headers_folder_is_not_a_key(local_blob: LocalBlob) -> None:
    with pytest.raises(InvalidBlobKeyError):
        local_blob.put(f"{META_DIR}/x", b"x", content_type="text/plain")
    local_blob.put("a", b"x", content_type="text/plain")
    assert local_blob.list(f"{META_DIR}/") == []


def test_a_key_cannot_be_an_object_and_a_folder(local_blob: LocalBlob) -> None:
    local_blob.put("a/b", b"x", content_type="text/plain")
    with pytest.raises(BlobError, match="cannot write 'a'"):
        local_blob.put("a", b"y", content_type="text/plain")


def test_headers_of_neighbouring_keys_do_not_collide(local_blob: LocalBlob) -> None:
    local_blob.put("a", b"1", content_type="text/plain")
    local_blob.put("a.json/b", b"2", content_type="image/png")
    assert local_blob.get("a").content_type == "text/plain"
    assert local_blob.get("a.json/b").content_type == "image/png"
