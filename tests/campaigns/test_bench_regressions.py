"""What bench/campaigns.py ran into at 10,000 customers."""

from __future__ import annotations

import pytest

from shared.app import App
from shared.exceptions import InvalidKeyError
from tests.campaigns.conftest import whatsapp_customer


@pytest.mark.xfail(
    raises=InvalidKeyError,
    strict=True,
    reason="channels: one HMAC conversation id in 4,096 starts with '__', which the store "
    "refuses (InvalidKeyError): that WhatsApp or Telegram user can never be stored",
)
def test_every_whatsapp_number_can_have_its_conversation(app: App) -> None:
    # The 9,761st number of the bench: its conversation id (the test app secret) is
    # "__YbCjXmTsKbh6zOBGkqXt96EKfHEeh4Hm22SUYksc0".
    _, conversation = whatsapp_customer(app, "221760009760", "Client 9760")

    assert app.store.get("teranga", "conversations", conversation.id) is not None
