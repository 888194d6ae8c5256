"""``open_blob``: which backend a URL opens, with which options; bad URLs name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.blob import open_blob
from shared.blob.gcs import GCSBlob
from shared.blob.local import LocalBlob
from shared.blob.s3 import S3Blob
from shared.exceptions import ConfigError


def test_a_plain_path_or_a_file_url_is_a_local_folder(tmp_path: Path) -> None:
    for url in (str(tmp_path), f"file://{tmp_path}"):
        blob = open_blob(url)
        assert isinstance(blob, LocalBlob)
        assert blob.root == tmp_path
    relative = open_blob("file://.data/blob")
    assert isinstance(relative, LocalBlob)
    assert relative.root == Path(".data/blob")
    served = open_blob(f"file://{tmp_path}?public_url=http://127.0.0.1:8080/static/")
    assert served.url("a b.js") == "http://127.0.0.1:8080/static/a%20b.js"


def test_s3_url_options(aws_credentials: None) -> None:
    blob = open_blob("s3://my-bucket?region=eu-west-1&url_expires=60")
    assert isinstance(blob, S3Blob)
    assert (blob.bucket, blob.client.meta.region_name) == ("my-bucket", "eu-west-1")
    url = blob.url("w/widget.js")
    assert url.startswith("https://my-bucket.s3.eu-west-1.amazonaws.com/w/widget.js?")
    assert "X-Amz-Expires=60&" in url
    cdn = open_blob("s3://my-bucket?region=eu-west-1&public_url=https://d1.cloudfront.net")
    assert cdn.url("w/widget.js") == "https://d1.cloudfront.net/w/widget.js"


def test_gs_url_options() -> None:
    with open_blob("gs://my-bucket", token_provider=lambda: "unused") as blob:
        assert isinstance(blob, GCSBlob)
        assert blob.url("w/a b.js") == "https://storage.googleapis.com/my-bucket/w/a%20b.js"
    with open_blob("gs://my-bucket?endpoint_url=http://127.0.0.1:4443/") as emulated:
        assert emulated.url("k") == "http://127.0.0.1:4443/my-bucket/k"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/dir",
        "s3://Bad_Bucket",
        "s3://my-bucket?colour=red",
        "s3://my-bucket?url_expires=soon",
        "s3://my-bucket?url_expires=0",
        "gs://x",
        "file://",
        "file:///tmp/x?public_url=cdn.example",
    ],
)
def test_bad_urls_name_the_problem(url: str, aws_credentials: None) -> None:
    with pytest.raises(ConfigError, match="blob URL"):
        open_blob(url)
