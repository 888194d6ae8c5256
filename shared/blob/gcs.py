"""Google Cloud Storage backend: the JSON API over httpx (no google-cloud-storage).

Requests (object names are percent-encoded whole in paths, ``/`` as ``%2F``, as the API wants):

- put: ``POST /upload/storage/v1/b/BUCKET/o?uploadType=multipart``, one ``multipart/related``
  body holding the metadata (name, contentType, cacheControl, and md5Hash so that GCS checks
  the bytes it received) then the bytes: content and headers land together.
- get: ``GET /storage/v1/b/BUCKET/o/NAME`` for the headers and generation, then the same with
  ``alt=media&generation=G``, so the bytes are those the headers describe. If the object was
  replaced in between, that generation is gone (404) and both are read again.
- delete: ``DELETE /storage/v1/b/BUCKET/o/NAME``; list: ``GET /storage/v1/b/BUCKET/o?prefix=P``,
  following ``nextPageToken``.

Auth: a bearer token from ``token_provider``; by default ``shared.gcp.GoogleToken`` (the
function's service account on Cloud Functions), refreshed when expired.
Retries: 408, 429, 5xx and transport errors, 3 attempts with ``shared.backoff``'s schedule;
every operation is idempotent in effect (an upload repeated writes the same object).

Limitations: ``url(key)`` is the public URL ``https://storage.googleapis.com/BUCKET/NAME``,
readable only if the bucket grants allUsers roles/storage.objectViewer (signed URLs would need
a service-account key or the IAM signBlob API). A missing bucket reads as missing objects on
``get`` and ``delete`` (GCS answers 404 for both). Objects are uploaded in one request: fine for
the widget and media, not meant for files of hundreds of MB (GCS's resumable uploads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.backoff import Backoff
from shared.blob.base import Blob, BlobObject, split_url
from shared.blob.exceptions import BlobError, BlobNotFoundError
from shared.exceptions import ConfigError
from shared.gcp import GoogleToken

if TYPE_CHECKING:
    import httpx
    from google.auth.exceptions import GoogleAuthError

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_URL_OPTIONS = ("endpoint_url", "public_url")
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_ATTEMPTS = 3
_BACKOFF = Backoff(attempts=_ATTEMPTS, base_delay=0.25, max_delay=1.0)
_DEFAULT_TYPE = "application/octet-stream"  # what GCS reports for an object stored without one


class GCSBlob(Blob):
    backend = "gcs"

    def __init__(
        self,
        bucket: str,
        *,
        http_client: httpx.Client | None = None,
        token_provider: Callable[[], str] | None = None,
        endpoint_url: str = DEFAULT_ENDPOINT,
        public_url: str | None = None,
    ) -> None:
        if not _BUCKET_RE.fullmatch(bucket):
            raise ConfigError(f"blob URL: {bucket!r} is not a GCS bucket name")
        super().__init__(public_url=public_url)
        self._owns_client = http_client is None
        if http_client is None:
            import httpx  # lazy, as every SDK: a function that does not use GCS never pays

            http_client = httpx.Client(timeout=httpx.Timeout(20.0, connect=3.0))
        self._http = http_client
        self._token = token_provider or GoogleToken(SCOPE, _no_credentials)
        self.bucket = bucket
        self.endpoint_url = endpoint_url.rstrip("/")
        self._objects = f"{self.endpoint_url}/storage/v1/b/{bucket}/o"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        http_client: httpx.Client | None = None,
        token_provider: Callable[[], str] | None = None,
        **_clients: Any,
    ) -> GCSBlob:
        """``gs://BUCKET?public_url=https://CDN&endpoint_url=http://127.0.0.1:4443``."""
        bucket, options = split_url(url, _URL_OPTIONS)
        return cls(
            bucket,
            http_client=http_client,
            token_provider=token_provider,
            endpoint_url=options.get("endpoint_url", DEFAULT_ENDPOINT),
            public_url=options.get("public_url"),
        )

    def _put(self, key: str, data: bytes, content_type: str, cache_control: str | None) -> None:
        metadata = {
            "name": key,
            "contentType": content_type,
            "md5Hash": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
        }
        if cache_control is not None:
            metadata["cacheControl"] = cache_control
        body, multipart_type = _multipart(metadata, data, content_type)
        self._send(
            "POST",
            f"{self.endpoint_url}/upload/storage/v1/b/{self.bucket}/o",
            key,
            params={"uploadType": "multipart"},
            content=body,
            headers={"Content-Type": multipart_type},
        )

    def _get(self, key: str) -> BlobObject:
        for _ in range(_ATTEMPTS):
            found = self._send(
                "GET",
                self._object(key),
                key,
                params={"fields": "generation,contentType,cacheControl"},
                allow_404=True,
            )
            if found.status_code == 404:
                raise BlobNotFoundError(f"no blob {key!r}")
            metadata = found.json()
            media = self._send(
                "GET",
                self._object(key),
                key,
                params={"alt": "media", "generation": metadata["generation"]},
                allow_404=True,
            )
            if media.status_code != 404:
                return BlobObject(
                    media.content,
                    metadata.get("contentType", _DEFAULT_TYPE),
                    metadata.get("cacheControl"),
                )
        raise BlobError(f"gcs get {key!r}: replaced while being read, {_ATTEMPTS} times")

    def _delete(self, key: str) -> None:
        self._send("DELETE", self._object(key), key, allow_404=True)

    def _list(self, prefix: str) -> Iterator[str]:
        params = {"fields": "items(name),nextPageToken"}
        if prefix:
            params["prefix"] = prefix
        while True:
            listing = self._send("GET", self._objects, prefix, params=params).json()
            for item in listing.get("items", []):
                yield item["name"]
            if not listing.get("nextPageToken"):
                return
            params = {**params, "pageToken": listing["nextPageToken"]}

    def _url(self, key: str) -> str:
        return f"{self.endpoint_url}/{self.bucket}/{quote(key)}"

    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    def _object(self, key: str) -> str:
        return f"{self._objects}/{quote(key, safe='')}"

    def _send(
        self,
        method: str,
        url: str,
        key: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        allow_404: bool = False,
    ) -> httpx.Response:
        """The successful response (or the 404 when allowed); retries what may pass next time."""
        import httpx

        cause: Exception | None = None
        failure = ""
        for _ in _BACKOFF:
            request_headers = {**(headers or {}), "Authorization": f"Bearer {self._token()}"}
            try:
                response = self._http.request(
                    method, url, params=params, content=content, headers=request_headers
                )
            except httpx.TransportError as exc:
                cause, failure = exc, type(exc).__name__
                continue
            if response.is_success or (allow_404 and response.status_code == 404):
                return response
            failure = f"{response.status_code} {_error_message(response)}"
            if response.status_code not in _RETRYABLE:
                break
        raise BlobError(f"gcs {method} {key!r}: {failure}") from cause


def _no_credentials(exc: GoogleAuthError) -> BlobError:
    return BlobError(f"gcs: no usable Google credentials: {exc}")


def _multipart(metadata: dict[str, str], data: bytes, content_type: str) -> tuple[bytes, str]:
    """A ``multipart/related`` body: the JSON metadata, then the media."""
    boundary = secrets.token_hex(16)
    while boundary.encode() in data:  # a boundary must not occur in what it delimits
        boundary = secrets.token_hex(16)
    delimiter = f"--{boundary}\r\n".encode()
    body = b"".join(
        [
            delimiter,
            b"Content-Type: application/json; charset=UTF-8\r\n\r\n",
            json.dumps(metadata).encode(),
            b"\r\n",
            delimiter,
            f"Content-Type: {content_type}\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/related; boundary={boundary}"


def _error_message(response: httpx.Response) -> str:
    """GCS's own message (``{"error": {"message": ...}}``), else the reason phrase."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase
    return message[:300]
