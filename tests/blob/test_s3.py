"""S3-specific translation of errors (moto's server)."""

from __future__ import annotations

import pytest

from shared.blob import BlobError, BlobNotFoundError, open_blob


def test_a_missing_bucket_is_an_error_not_a_missing_object(moto_endpoint: str) -> None:
    with open_blob(f"s3://no-such-bucket?region=us-east-1&endpoint_url={moto_endpoint}") as blob:
        with pytest.raises(BlobError, match="NoSuchBucket") as caught:
            blob.get("k")
        assert not isinstance(caught.value, BlobNotFoundError)
        with pytest.raises(BlobError, match="NoSuchBucket"):
            blob.put("k", b"v", content_type="text/plain")
