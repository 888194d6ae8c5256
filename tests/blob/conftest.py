"""The ``blob`` fixture: every contract test runs once per backend, each on a fresh, empty
bucket (a folder locally, a bucket on moto's S3 server, a bucket on the GCS stand-in)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.blob import Blob, open_blob
from shared.blob.gcs import GCSBlob
from shared.blob.local import LocalBlob
from shared.blob.s3 import S3Blob
from tests.fixtures.gcs_server import TOKEN, GCSServer

BACKENDS = ["local", "s3", "gcs"]


@pytest.fixture
def local_blob(tmp_path: Path) -> LocalBlob:
    return LocalBlob(tmp_path / "blob")


@pytest.fixture
def s3_blob(moto_endpoint: str) -> Iterator[S3Blob]:
    bucket = f"comptoir-test-{uuid.uuid4().hex[:12]}"
    blob = open_blob(f"s3://{bucket}?region=us-east-1&endpoint_url={moto_endpoint}")
    assert isinstance(blob, S3Blob)
    blob.client.create_bucket(Bucket=bucket)
    yield blob
    for key in blob.list():  # keeps the session's server small
        blob.delete(key)
    blob.client.delete_bucket(Bucket=bucket)
    blob.close()


@pytest.fixture
def gcs_blob(gcs_server: GCSServer) -> Iterator[GCSBlob]:
    bucket = gcs_server.create_bucket()
    blob = GCSBlob(bucket, endpoint_url=gcs_server.endpoint, token_provider=lambda: TOKEN)
    yield blob
    blob.close()
    gcs_server.drop_bucket(bucket)


@pytest.fixture(params=BACKENDS)
def blob(request: pytest.FixtureRequest) -> Blob:
    backend_blob: Blob = request.getfixturevalue(f"{request.param}_blob")
    return backend_blob
