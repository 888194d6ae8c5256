"""The e-mail webhooks' posts, typed: an SNS message (SES's receipt notification inside a
``Notification``) and the generic inbound-parse post."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SnsMessage(_Model):
    """An SNS HTTP(S) post; field names as SNS spells them, since they are signed by name."""

    Type: str
    MessageId: str
    TopicArn: str
    Message: str
    Timestamp: str
    SignatureVersion: str
    Signature: str
    SigningCertURL: str
    Subject: str | None = None
    SubscribeURL: str | None = None
    Token: str | None = None


class SesAction(_Model):
    type: str = ""
    encoding: Literal["UTF8", "BASE64"] = "UTF8"


class SesReceipt(_Model):
    action: SesAction = SesAction()


class SesNotification(_Model):
    """SES's receipt rule SNS action: the whole message in ``content`` (up to 150 KB)."""

    notificationType: str  # noqa: N815 - SES's name
    receipt: SesReceipt = SesReceipt()
    content: str | None = None


class InboundMail(_Model):
    """A generic inbound-parse post: the raw message, as text or base64."""

    mime: str
    encoding: Literal["utf8", "base64"] = "utf8"
