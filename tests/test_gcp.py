"""Google access tokens (``shared.gcp.GoogleToken``), shared by the GCS and Pub/Sub backends."""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.exceptions import GoogleAuthError, RefreshError

from shared.exceptions import ComptoirError
from shared.gcp import GoogleToken

SCOPE = "https://www.googleapis.com/auth/pubsub"


class FakeCredentials:
    """google-auth's Credentials as GoogleToken uses them: valid, token, refresh(request)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.token: str | None = None
        self.refreshes = 0
        self.fail = fail

    @property
    def valid(self) -> bool:
        return self.token is not None

    def refresh(self, request: Any) -> None:
        if self.fail:
            raise RefreshError("metadata server said no")  # type: ignore[no-untyped-call]
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"

    def expire(self) -> None:
        self.token = None


class TokenFailureError(ComptoirError):
    pass


def _failure(exc: GoogleAuthError) -> ComptoirError:
    return TokenFailureError(f"no token: {type(exc).__name__}")


def test_injected_credentials_are_refreshed_only_when_expired() -> None:
    credentials = FakeCredentials()
    provider = GoogleToken(SCOPE, _failure, credentials)  # type: ignore[arg-type]
    assert provider() == "token-1"
    assert provider() == "token-1"
    credentials.expire()
    assert provider() == "token-2"
    assert credentials.refreshes == 2


def test_default_credentials_are_asked_once_for_the_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    credentials = FakeCredentials()
    asked: list[list[str]] = []

    def default(scopes: list[str]) -> tuple[FakeCredentials, str]:
        asked.append(scopes)
        return credentials, "comptoir-demo"

    monkeypatch.setattr(google.auth, "default", default)
    provider = GoogleToken(SCOPE, _failure)
    assert [provider(), provider()] == ["token-1", "token-1"]
    credentials.expire()
    assert provider() == "token-2"
    assert asked == [[SCOPE]]


def test_a_google_auth_error_becomes_the_callers_error() -> None:
    provider = GoogleToken(SCOPE, _failure, FakeCredentials(fail=True))  # type: ignore[arg-type]
    with pytest.raises(TokenFailureError, match="no token: RefreshError") as raised:
        provider()
    assert isinstance(raised.value.__cause__, RefreshError)
