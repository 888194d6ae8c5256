"""The blob (object storage) port and the factory that picks a backend from a blob URL."""

from __future__ import annotations

from typing import Any

from shared.backends import choose, load_target
from shared.blob.base import Blob, BlobObject
from shared.blob.exceptions import BlobError, BlobNotFoundError, InvalidBlobKeyError

BACKENDS = {
    "file": "shared.blob.local:LocalBlob",
    "s3": "shared.blob.s3:S3Blob",
    "gs": "shared.blob.gcs:GCSBlob",
}


def open_blob(url: str, **clients: Any) -> Blob:
    """Open the backend named by the URL's scheme; a plain path is a local folder.

    ``file:///abs/dir`` (or ``file://relative/dir``), ``s3://BUCKET?region=..&endpoint_url=..``,
    ``gs://BUCKET``; every backend takes ``public_url=``. SDK clients may be injected (tests):
    ``client=`` (S3), ``http_client=`` and ``token_provider=`` (GCS).
    """
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    unsupported = (
        f"blob URL: unsupported scheme {scheme!r} (expected one of {', '.join(BACKENDS)})"
    )
    blob: Blob = load_target(choose(BACKENDS, scheme, unsupported)).from_url(url, **clients)
    return blob


__all__ = [
    "Blob",
    "BlobError",
    "BlobNotFoundError",
    "BlobObject",
    "InvalidBlobKeyError",
    "open_blob",
]
