"""What the GCS backend sends on the wire, how it retries, and where its token comes from."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from google.auth.exceptions import DefaultCredentialsError

from shared.blob import BlobError, BlobNotFoundError, gcs
from shared.blob.gcs import GCSBlob
from tests.fixtures.gcs_server import TOKEN, GCSServer
from tests.loopback import free_port


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcs, "_BACKOFF", replace(gcs._BACKOFF, base_delay=0.001))


def test_an_upload_is_one_multipart_request_with_its_headers(
    gcs_blob: GCSBlob, gcs_server: GCSServer
) -> None:
    gcs_blob.put("w/panel.js", b"x", content_type="text/javascript", cache_control="max-age=9")
    (upload,) = gcs_server.state.seen
    assert (upload.method, upload.path) == ("POST", f"/upload/storage/v1/b/{gcs_blob.bucket}/o")
    assert upload.params == {"uploadType": "multipart"}
    assert upload.headers["content-type"].startswith("multipart/related; boundary=")
    assert upload.headers["authorization"] == f"Bearer {TOKEN}"
    stored = gcs_server.state.buckets[gcs_blob.bucket]["w/panel.js"]
    assert (stored.content_type, stored.cache_control) == ("text/javascript", "max-age=9")


def test_object_names_are_percent_encoded_whole(gcs_blob: GCSBlob, gcs_server: GCSServer) -> None:
    gcs_blob.put("a/b c.js", b"x", content_type="text/plain")
    gcs_blob.get("a/b c.js")
    gcs_blob.delete("a/b c.js")
    paths = {r.path for r in gcs_server.state.seen if r.method != "POST"}
    assert paths == {f"/storage/v1/b/{gcs_blob.bucket}/o/a%2Fb%20c.js"}


def test_get_reads_bytes_of_the_generation_it_described(
    gcs_blob: GCSBlob, gcs_server: GCSServer
) -> None:
    gcs_blob.put("k", b"v", content_type="text/plain")
    # The media request finds that generation gone (replaced in between): both are read again.
    gcs_server.state.fail_next(None, 404)
    assert gcs_blob.get("k").data == b"v"
    reads = [r for r in gcs_server.state.seen if r.method == "GET"]
    assert [r.params.get("alt") for r in reads] == [None, "media", None, "media"]
    generation = str(gcs_server.state.buckets[gcs_blob.bucket]["k"].generation)
    assert reads[1].params["generation"] == reads[3].params["generation"] == generation


@pytest.mark.parametrize("statuses", [(503,), (429, 500)])
def test_transient_failures_are_retried(
    gcs_blob: GCSBlob, gcs_server: GCSServer, statuses: tuple[int, ...]
) -> None:
    gcs_server.state.fail_next(*statuses)
    gcs_blob.put("k", b"v", content_type="text/plain")
    assert len(gcs_server.state.seen) == len(statuses) + 1
    assert gcs_blob.get("k").data == b"v"


def test_gives_up_after_three_attempts(gcs_blob: GCSBlob, gcs_server: GCSServer) -> None:
    gcs_server.state.fail_next(503, 503, 503)
    with pytest.raises(BlobError, match="503 Scripted failure"):
        gcs_blob.put("k", b"v", content_type="text/plain")
    assert len(gcs_server.state.seen) == 3


def test_a_refused_request_is_not_retried(gcs_blob: GCSBlob, gcs_server: GCSServer) -> None:
    gcs_server.state.fail_next(403)
    with pytest.raises(BlobError, match="403") as caught:
        gcs_blob.list()
    assert not isinstance(caught.value, BlobNotFoundError)
    assert len(gcs_server.state.seen) == 1


def test_a_wrong_token_is_an_error(gcs_blob: GCSBlob, gcs_server: GCSServer) -> None:
    with (
        GCSBlob(
            gcs_blob.bucket, endpoint_url=gcs_server.endpoint, token_provider=lambda: "bad"
        ) as blob,
        pytest.raises(BlobError, match="401 Invalid Credentials"),
    ):
        blob.get("k")


def test_a_missing_bucket_fails_listing(gcs_server: GCSServer) -> None:
    with GCSBlob(
        "no-such-bucket", endpoint_url=gcs_server.endpoint, token_provider=lambda: TOKEN
    ) as blob:
        with pytest.raises(BlobError, match="bucket does not exist"):
            blob.list()
        with pytest.raises(BlobError, match="bucket does not exist"):
            blob.put("k", b"v", content_type="text/plain")


def test_an_unreachable_endpoint_is_a_blob_error() -> None:
    port = free_port()  # nothing listens there: connection refused
    with (
        GCSBlob(
            "b-1", endpoint_url=f"http://127.0.0.1:{port}", token_provider=lambda: TOKEN
        ) as blob,
        pytest.raises(BlobError, match="ConnectError"),
    ):
        blob.get("k")


def test_missing_credentials_are_a_blob_error(
    gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth

    def no_credentials(scopes: list[str]) -> Any:
        raise DefaultCredentialsError("no credentials here")  # type: ignore[no-untyped-call]

    monkeypatch.setattr(google.auth, "default", no_credentials)
    with (
        GCSBlob("b-1", endpoint_url=gcs_server.endpoint) as blob,
        pytest.raises(BlobError, match="no usable Google credentials: no credentials here"),
    ):
        blob.get("k")
    assert gcs_server.state.seen == []
