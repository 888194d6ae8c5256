"""The Messenger Platform's webhook post, typed: the parts this service reads.

Messenger (``object: "page"``) and Instagram messaging (``object: "instagram"``) post the same
shape: entries (one per Page or Instagram account, its id as ``entry.id``), each with
``messaging`` events from one sender. An event carries a message (text, attachments, a quick
reply's payload, or an echo of what the Page sent), a postback (a button tapped), or a delivery
or read receipt. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Party(_Model):
    id: str  # a page-scoped (PSID) or Instagram-scoped (IGSID) user id, or the Page's


class Payload(_Model):
    url: str = ""  # where an attachment's file can be downloaded (a short-lived CDN link)
    title: str = ""
    sticker_id: int | None = None


class Attachment(_Model):
    type: str  # image, audio, video, file, location, fallback, template, ...
    payload: Payload = Field(default_factory=Payload)


class QuickReply(_Model):
    payload: str = ""


class Message(_Model):
    mid: str
    text: str = ""
    quick_reply: QuickReply | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    is_echo: bool = False  # what the Page (this service or a person in Meta's inbox) sent


class Postback(_Model):
    mid: str = ""  # absent from older API versions
    title: str = ""
    payload: str = ""


class Delivery(_Model):
    mids: list[str] = Field(default_factory=list)
    watermark: int = 0


class Read(_Model):
    watermark: int = 0
    mid: str = ""  # Instagram's


class Messaging(_Model):
    sender: Party
    recipient: Party
    timestamp: int = 0  # milliseconds
    message: Message | None = None
    postback: Postback | None = None
    delivery: Delivery | None = None
    read: Read | None = None


class Entry(_Model):
    id: str  # the Page id, or the Instagram account id
    time: int = 0
    messaging: list[Messaging] = Field(default_factory=list)


class WebhookPayload(_Model):
    object: Literal["page", "instagram"]
    entry: list[Entry] = Field(default_factory=list)
