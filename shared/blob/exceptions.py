"""Errors of the blob (object storage) port, translated from each backend's own errors."""

from __future__ import annotations

from shared.exceptions import ComptoirError


class BlobError(ComptoirError):
    """Object storage refused the operation or could not be reached."""


class BlobNotFoundError(BlobError):
    """No object has that key."""


class InvalidBlobKeyError(BlobError):
    """A key or prefix is not acceptable (empty, absolute, with '..', control characters...)."""
