"""The one table of channels: each entry names a sender, a webhook and a setting that exist."""

from __future__ import annotations

import pytest

from shared.backends import load_target
from shared.channels import CHANNELS
from shared.channels.base import Channel
from shared.channels.exceptions import (
    InvalidSecretError,
    MissingSignatureError,
    SignatureError,
)
from shared.channels.meta import check_signature
from shared.channels.telegram.inbound import check_secret
from shared.channels.webhook import Webhook
from shared.exceptions import ComptoirError
from shared.settings import Settings
from tests.channels.conftest import APP_SECRET, TG_SECRET, signature


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_each_channel_names_its_sender_webhook_and_secret(name: str) -> None:
    plugin = CHANNELS[name]
    sender = load_target(plugin.sender)
    assert issubclass(sender, Channel) and sender.name == name
    assert issubclass(load_target(plugin.webhook), Webhook)
    assert plugin.secret in Settings.model_fields


def test_signature_checks_raise_the_channels_own_errors() -> None:
    body = b'{"object": "whatsapp_business_account"}'
    check_signature(body, signature(body), APP_SECRET)  # authentic: nothing raised
    with pytest.raises(MissingSignatureError):
        check_signature(body, "", APP_SECRET)
    with pytest.raises(SignatureError) as forged:
        check_signature(body + b" ", signature(body), APP_SECRET)
    assert type(forged.value) is SignatureError
    check_secret(TG_SECRET, TG_SECRET)
    with pytest.raises(InvalidSecretError) as wrong:
        check_secret(TG_SECRET + "x", TG_SECRET)
    assert isinstance(wrong.value, ComptoirError)
