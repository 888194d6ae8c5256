"""What the backends that call a provider's HTTP API share: the client, the key, and the
provider's errors as the port's. No error carries the text, the key or a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.speech.base import Speech
from shared.speech.exceptions import SpeechError, SpeechUnavailableError

if TYPE_CHECKING:
    import httpx


class RemoteSpeech(Speech):
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        default_voice: str,
        timeout: float,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx  # lazy: only a shop that speaks pays for it

        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or ""
        self.model = model
        self.default_voice = default_voice
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def post(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """POST ``payload`` as JSON; the successful response, else the port's error."""
        import httpx

        try:
            response = self.client.post(f"{self.base_url}{path}", json=payload, headers=headers)
        except httpx.HTTPError as error:  # timeout, refused, reset: never its message (a URL)
            raise SpeechUnavailableError(f"{self.name}: {type(error).__name__}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise SpeechUnavailableError(f"{self.name}: HTTP {status}")
        if not response.is_success:
            raise SpeechError(f"{self.name}: HTTP {status}")
        return response
