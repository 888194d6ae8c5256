"""The library's own errors. Vendor errors are translated into these at each backend's boundary."""

from __future__ import annotations


class ComptoirError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(ComptoirError):
    """A setting is missing or malformed; the message names the variable."""


class StoreError(ComptoirError):
    """Base of document-store errors."""


class NotFoundError(StoreError):
    """The document does not exist (or has expired)."""


class AlreadyExistsError(StoreError):
    """A create-only write found the key taken."""


class PreconditionFailedError(StoreError):
    """The document changed since it was read (optimistic concurrency lost)."""


class DocumentTooLargeError(StoreError):
    """The document exceeds what the backend can hold in one record."""


class InvalidKeyError(StoreError):
    """A shop, collection or document id is not acceptable as a key."""


class StoreUnavailableError(StoreError):
    """The backend could not be reached or failed; the operation may be retried."""


class UnknownShopError(ComptoirError):
    """No shop has that id."""


class UnknownSessionError(ComptoirError):
    """No conversation has that session id in this shop."""


class InvalidInputError(ComptoirError):
    """The caller's input is unacceptable; the message says why and is safe to show."""


class MessageTooLongError(InvalidInputError):
    """The message is longer than the configured maximum."""


class RateLimitedError(ComptoirError):
    """Too many requests in the current window."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMError(ComptoirError):
    """The language model failed or timed out; the turn may be retried."""


class ImportFileError(ComptoirError):
    """A catalogue or FAQ file cannot be read at all (unknown shape, bad encoding)."""
