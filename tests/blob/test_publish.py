"""Publishing the built widget: types, cache headers and order, read back from each backend,
and the ``publish-web`` operator command."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from shared.blob import Blob, InvalidBlobKeyError
from shared.blob.cli import add_commands, run
from shared.blob.gcs import GCSBlob
from shared.blob.local import LocalBlob
from shared.blob.publish import (
    IMMUTABLE,
    SHORT_LIVED,
    content_type,
    is_content_hashed,
    publish_dir,
)
from shared.blob.s3 import S3Blob
from shared.exceptions import InvalidInputError
from tests.fixtures.gcs_server import GCSServer

JS = "text/javascript; charset=utf-8"
# What a build leaves in web/dist, and what each file must be served with.
DIST = {
    "panel.3f9a1c2b.js": (JS, IMMUTABLE),
    "panel.77e0a41c9d.css": ("text/css; charset=utf-8", IMMUTABLE),
    "icons/close.5e6f7a8b.svg": ("image/svg+xml", IMMUTABLE),
    "img/hero.0a1b2c3d.webp": ("image/webp", IMMUTABLE),
    "icon.png": ("image/png", SHORT_LIVED),
    "index.html": ("text/html; charset=utf-8", SHORT_LIVED),
    "manifest.json": ("application/json", SHORT_LIVED),
    "widget.js": (JS, SHORT_LIVED),
}
HIDDEN = [".env", ".git/config", "img/.DS_Store"]
EXPECTED = {f"widget/{name}": headers for name, headers in DIST.items()}
UPLOAD_ORDER = [
    "widget/icons/close.5e6f7a8b.svg",
    "widget/img/hero.0a1b2c3d.webp",
    "widget/panel.3f9a1c2b.js",
    "widget/panel.77e0a41c9d.css",
    "widget/icon.png",
    "widget/index.html",
    "widget/manifest.json",
    "widget/widget.js",
]


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    for name in [*DIST, *HIDDEN]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content of {name}\n".encode() * 10)
    return root


def test_publishing_sets_types_and_cache_headers(blob: Blob, dist: Path) -> None:
    published = publish_dir(blob, dist, prefix="widget/")
    assert {f.key: (f.content_type, f.cache_control) for f in published} == EXPECTED
    assert blob.list() == sorted(EXPECTED)  # hidden files stay home
    for file in published:
        stored = blob.get(file.key)
        assert (stored.content_type, stored.cache_control) == EXPECTED[file.key]
        assert stored.data == (dist / file.key.removeprefix("widget/")).read_bytes()
        assert file.size == len(stored.data)


def test_the_loader_is_uploaded_last_after_the_hashed_files(blob: Blob, dist: Path) -> None:
    published = publish_dir(blob, dist, prefix="widget")  # the "/" is added
    assert [f.key for f in published] == UPLOAD_ORDER
    assert [f.role for f in published] == ["hashed"] * 4 + ["stable"] * 3 + ["loader"]


def test_s3_serves_what_was_published(s3_blob: S3Blob, dist: Path) -> None:
    publish_dir(s3_blob, dist, prefix="widget/")
    for key, (expected_type, expected_cache) in EXPECTED.items():
        head = s3_blob.client.head_object(Bucket=s3_blob.bucket, Key=key)
        assert (head["ContentType"], head["CacheControl"]) == (expected_type, expected_cache)


def test_gcs_receives_uploads_in_order_and_serves_the_headers(
    gcs_blob: GCSBlob, gcs_server: GCSServer, dist: Path
) -> None:
    publish_dir(gcs_blob, dist, prefix="widget/")
    assert list(gcs_server.state.buckets[gcs_blob.bucket]) == UPLOAD_ORDER  # arrival order
    with httpx.Client() as browser:
        for key, (expected_type, expected_cache) in EXPECTED.items():
            response = browser.get(gcs_blob.url(key))  # the public URL
            assert response.headers["content-type"] == expected_type
            assert response.headers["cache-control"] == expected_cache


def test_a_missing_or_empty_folder_is_refused(local_blob: LocalBlob, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not a folder"):
        publish_dir(local_blob, tmp_path / "nope")
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="no file to publish"):
        publish_dir(local_blob, tmp_path / "empty")


def test_a_bad_file_name_stops_the_release_before_any_upload(
    local_blob: LocalBlob, dist: Path
) -> None:
    (dist / "bad\\name.js").write_bytes(b"x")
    with pytest.raises(InvalidBlobKeyError):
        publish_dir(local_blob, dist)
    assert local_blob.list() == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.js", JS),
        ("a.mjs", JS),
        ("A.PNG", "image/png"),
        ("a.js.map", "application/json"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.csv", "text/csv; charset=utf-8"),  # from Python's own table
        ("a.js.gz", "application/octet-stream"),  # would need Content-Encoding
        ("a.unknown", "application/octet-stream"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


@pytest.mark.parametrize(
    ("name", "hashed"),
    [
        ("panel.3f9a1c2b.js", True),
        ("sub/panel.3f9a1c2b0d.js", True),
        ("panel.3f9a1c2b.js.map", True),
        ("panel.3f9a1c2.js", False),  # 7 hex: too short to be a content hash
        ("panel.3F9A1C2B.js", False),
        ("3f9a1c2b.js", False),
        ("widget.js", False),
    ],
)
def test_content_hashed_names(name: str, hashed: bool) -> None:
    assert is_content_hashed(name) is hashed


def _publish_web(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["publish-web", *argv]))


def test_publish_web_uploads_to_s3(
    s3_blob: S3Blob, moto_endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{s3_blob.bucket}?region=us-east-1&endpoint_url={moto_endpoint}"
    assert _publish_web("--dir", str(dist), "--to", f"{url}&public_url=https://cdn.example") == 0
    out = capsys.readouterr().out
    total = sum((dist / name).stat().st_size for name in DIST)
    assert f"published 8 files, {total:,} bytes, to s3://{s3_blob.bucket}\n" in out
    assert out.endswith("loader: https://cdn.example/widget/widget.js\n")
    head = s3_blob.client.head_object(Bucket=s3_blob.bucket, Key="widget/widget.js")
    assert (head["ContentType"], head["CacheControl"]) == (JS, SHORT_LIVED)


def test_publish_web_never_prints_a_presigned_url(
    s3_blob: S3Blob, moto_endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{s3_blob.bucket}?region=us-east-1&endpoint_url={moto_endpoint}"
    assert _publish_web("--dir", str(dist), "--to", url, "--prefix", "") == 0
    out = capsys.readouterr().out
    assert "X-Amz" not in out
    assert "loader:" not in out
    assert "widget.js" in s3_blob.list()


def test_publish_web_defaults_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WIDGET_BLOB_URL", raising=False)
    assert _publish_web() == 2
    assert "web/dist is not a folder" in capsys.readouterr().err
    (tmp_path / "web" / "dist").mkdir(parents=True)
    (tmp_path / "web" / "dist" / "widget.js").write_text("// loader")
    assert _publish_web() == 0
    assert (tmp_path / ".data" / "blob" / "widget" / "widget.js").read_text() == "// loader"
    monkeypatch.setenv("WIDGET_BLOB_URL", f"file://{tmp_path}/elsewhere")
    assert _publish_web("--prefix", "v2/") == 0
    assert (tmp_path / "elsewhere" / "v2" / "widget.js").exists()
    assert _publish_web("--to", "ftp://nope") == 2
    assert "unsupported scheme 'ftp'" in capsys.readouterr().err
