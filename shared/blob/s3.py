"""S3 backend through the low-level boto3 client (imported when the backend is built).

``url(key)`` is a presigned GET URL valid ``url_expires`` seconds, unless ``public_url`` names
where the bucket is served from (CloudFront, a public bucket).

IAM: put/get/delete need s3:PutObject, s3:GetObject, s3:DeleteObject on ``BUCKET/*``; list needs
s3:ListBucket on the bucket. Without s3:ListBucket, S3 answers a missing key with AccessDenied
instead of NoSuchKey, and ``get`` raises BlobError instead of BlobNotFoundError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.aws import AWSClientOwner
from shared.blob.base import Blob, BlobObject, split_url
from shared.blob.exceptions import BlobError, BlobNotFoundError
from shared.exceptions import ConfigError

if TYPE_CHECKING:
    from botocore.client import BaseClient

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_URL_OPTIONS = ("region", "endpoint_url", "public_url", "url_expires")
_MAX_URL_EXPIRES = 7 * 24 * 3600  # SigV4's limit


class S3Blob(AWSClientOwner, Blob):
    backend = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        client: BaseClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        public_url: str | None = None,
        url_expires: int = 3600,
    ) -> None:
        if not _BUCKET_RE.fullmatch(bucket):
            raise ConfigError(f"blob URL: {bucket!r} is not an S3 bucket name")
        if not 1 <= url_expires <= _MAX_URL_EXPIRES:
            raise ConfigError(f"blob URL: url_expires must be 1-{_MAX_URL_EXPIRES} seconds")
        super().__init__(public_url=public_url)
        self._use_client(
            client,
            "s3",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=3,
            read_timeout=20,
            signature_version="s3v4",  # presigned URLs work in every region
            # On AWS, regional virtual-hosted URLs (the global name answers 307 for a new
            # bucket outside us-east-1); a custom endpoint (moto, MinIO) keeps path style,
            # as a host name cannot be prefixed with the bucket there.
            s3={"addressing_style": "virtual"} if endpoint_url is None else None,
        )
        self.bucket = bucket
        self.url_expires = url_expires

    @classmethod
    def from_url(cls, url: str, *, client: BaseClient | None = None, **_clients: Any) -> S3Blob:
        """``s3://BUCKET?region=eu-west-1&endpoint_url=http://127.0.0.1:5000
        &public_url=https://CDN&url_expires=3600``."""
        bucket, options = split_url(url, _URL_OPTIONS)
        expires = options.get("url_expires", "3600")
        if not expires.isdigit():
            raise ConfigError(f"blob URL {url!r}: url_expires must be a number of seconds")
        return cls(
            bucket,
            client=client,
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
            public_url=options.get("public_url"),
            url_expires=int(expires),
        )

    def _put(self, key: str, data: bytes, content_type: str, cache_control: str | None) -> None:
        extra = {} if cache_control is None else {"CacheControl": cache_control}
        with _errors("put", key):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )

    def _get(self, key: str) -> BlobObject:
        with _errors("get", key):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        return BlobObject(data, response["ContentType"], response.get("CacheControl"))

    def _delete(self, key: str) -> None:
        with _errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _list(self, prefix: str) -> Iterator[str]:
        with _errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _url(self, key: str) -> str:
        with _errors("presign", key):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.url_expires,
            )
        return url



@contextmanager
def _errors(operation: str, key: str) -> Iterator[None]:
    """Translate the SDK's errors: the one place vendor errors cross."""
    from botocore.exceptions import BotoCoreError, ClientError  # loaded with the client

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "NoSuchKey":
            raise BlobNotFoundError(f"no blob {key!r}") from exc
        raise BlobError(f"s3 {operation} {key!r}: {code}: {message}") from exc
    except BotoCoreError as exc:  # unreachable endpoint, timeouts, credentials
        raise BlobError(f"s3 {operation} {key!r}: {exc}") from exc
