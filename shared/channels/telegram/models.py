"""The Telegram Bot API ``Update``, typed: the parts this service reads.

An update carries one of many optional fields; those not modelled here (channel posts, chat
member changes, a field Telegram adds tomorrow) leave ``kind`` as ``"unsupported"``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class User(_Model):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str = ""
    language_code: str = ""


class Chat(_Model):
    id: int
    type: str = "private"  # private, group, supergroup, channel


class PhotoSize(_Model):
    file_id: str
    width: int = 0
    height: int = 0
    file_size: int | None = None


class File(_Model):
    """A voice note, audio, video, video note, document or sticker."""

    file_id: str
    mime_type: str = ""
    file_name: str = ""
    file_size: int | None = None


class Location(_Model):
    latitude: float
    longitude: float


class Contact(_Model):
    phone_number: str = ""
    first_name: str = ""
    last_name: str = ""
    user_id: int | None = None


class InlineButton(_Model):
    text: str
    callback_data: str | None = None


class InlineKeyboard(_Model):
    inline_keyboard: list[list[InlineButton]] = Field(default_factory=list)


class Message(_Model):
    message_id: int
    from_: User | None = Field(None, alias="from")
    chat: Chat
    date: int = 0
    edit_date: int | None = None
    text: str | None = None
    caption: str | None = None
    photo: list[PhotoSize] = Field(default_factory=list)  # sizes, smallest first
    voice: File | None = None
    audio: File | None = None
    video: File | None = None
    video_note: File | None = None
    document: File | None = None
    sticker: File | None = None
    location: Location | None = None
    contact: Contact | None = None
    reply_markup: InlineKeyboard | None = None


class CallbackQuery(_Model):
    """A tap on an inline button of one of the bot's messages."""

    id: str
    from_: User = Field(alias="from")
    message: Message | None = None  # the bot's message that carried the button
    data: str | None = None


UpdateKind = Literal["message", "edited_message", "callback_query", "unsupported"]


class Update(_Model):
    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None

    @property
    def kind(self) -> UpdateKind:
        if self.message is not None:
            return "message"
        if self.edited_message is not None:
            return "edited_message"
        if self.callback_query is not None:
            return "callback_query"
        return "unsupported"
