"""Google access tokens as every Google Cloud backend gets them (GCS, Pub/Sub): google-auth's
application default credentials, imported lazily, refreshed when they expire."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.exceptions import ComptoirError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.auth.exceptions import GoogleAuthError


class GoogleToken:
    """A token provider: call it for a bearer token. The credentials are the injected ones, else
    the application default (the function's service account on Cloud Functions) for ``scope``;
    a token counted as expired by google-auth (within a few minutes of expiry) is refreshed.
    ``failure`` turns google-auth's error into the caller's own. Thread-safe."""

    def __init__(
        self,
        scope: str,
        failure: Callable[[GoogleAuthError], ComptoirError],
        credentials: Credentials | None = None,
    ) -> None:
        self._scope = scope
        self._failure = failure
        self._credentials = credentials
        self._lock = threading.Lock()

    def __call__(self) -> str:
        # Lazy: google-auth is loaded when the first request needs a token.
        import google.auth
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request

        with self._lock:
            try:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(scopes=[self._scope])
                if not self._credentials.valid:
                    self._credentials.refresh(Request())  # type: ignore[no-untyped-call]
            except GoogleAuthError as exc:
                raise self._failure(exc) from exc
            return str(self._credentials.token)  # valid credentials hold a token
