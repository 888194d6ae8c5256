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


class UnknownPaymentProviderError(ComptoirError):
    """No payment provider has that name."""


class UnknownSessionError(ComptoirError):
    """No conversation has that session id in this shop."""


class InvalidInputError(ComptoirError):
    """The caller's input is unacceptable; the message says why and is safe to show."""


class InvalidPhoneError(InvalidInputError):
    """Not a valid phone number for the region given."""


class MessageTooLongError(InvalidInputError):
    """The message is longer than the configured maximum."""


class RateLimitedError(ComptoirError):
    """Too many requests in the current window."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiKeyError(ComptoirError):
    """No API key, an unknown one or a revoked one (``shared/apikeys.py``)."""


class ScopeError(ComptoirError):
    """The API key does not grant the scope the call needs."""


class LLMError(ComptoirError):
    """The language model failed. ``retryable`` says whether trying again (or another
    provider) may help."""

    retryable = False


class LLMTimeoutError(LLMError):
    """The provider did not answer in time."""

    retryable = True


class LLMRateLimitedError(LLMError):
    """The provider answered 429 (or its equivalent)."""

    retryable = True


class LLMUnavailableError(LLMError):
    """The provider failed on its side (5xx) or could not be reached."""

    retryable = True


class LLMRequestError(LLMError):
    """The provider refused the request itself (bad request, auth, unknown model): retrying the
    same request will not help, another provider may."""


class EmbeddingsUnavailableError(LLMRequestError):
    """The provider (or model configuration) has no embeddings: ask one that has."""


class ToolError(ComptoirError):
    """A tool could not do what was asked; the message goes back to the model, which can fix
    its arguments or tell the customer."""


class QueueError(ComptoirError):
    """The queue refused the work or could not be reached."""


class ChannelError(ComptoirError):
    """A channel API (WhatsApp Graph API, Telegram Bot API) failed. ``retryable`` says whether
    trying again may help; ``code`` is the provider's error code when it gave one."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class ImportFileError(ComptoirError):
    """A catalogue or FAQ file cannot be read at all (unknown shape, bad encoding)."""


class TasksSecretError(ComptoirError):
    """A task was asked for without the tasks secret, with a wrong one, or while none is set."""


class UnknownTaskError(ComptoirError):
    """No task has this name."""


class VoiceOffError(ComptoirError):
    """The shop has not turned live voice on (``Shop.voice``), or the server has no key for its
    provider."""


class VoiceProviderError(ComptoirError):
    """The realtime provider refused or failed to mint a voice session's key."""


class VoiceProviderBusyError(VoiceProviderError):
    """The realtime provider answered 429: the same request may pass after ``retry_after``
    seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
