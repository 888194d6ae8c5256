"""What bench/campaigns.py ran into at 10,000 customers."""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.app import App
from shared.channels.receive import conversation_id
from tests.campaigns.conftest import SHOP, whatsapp_customer
from tests.channels.conftest import APP_SECRET


def test_every_whatsapp_number_can_have_its_conversation(app: App) -> None:
    # The 9,761st number of the bench: its conversation id's digest (the test app secret)
    # starts with "__", which the store reserves.
    assert conversation_id(APP_SECRET, SHOP, "whatsapp", "221760009760").startswith("c_")
    _, conversation = whatsapp_customer(app, "221760009760", "Client 9760")

    assert app.store.get(SHOP, "conversations", conversation.id) is not None


def test_other_conversation_ids_are_unchanged() -> None:
    # Stored conversations keep their ids: only a digest starting with "__" is rewritten.
    message = f"conversation\n{SHOP}\nwhatsapp\n221770000001".encode()
    digest = hmac.new(APP_SECRET.encode(), message, hashlib.sha256).digest()
    plain = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert conversation_id(APP_SECRET, SHOP, "whatsapp", "221770000001") == plain
