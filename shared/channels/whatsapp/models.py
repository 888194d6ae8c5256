"""The WhatsApp Cloud API webhook payload, typed.

One post carries entries, each with changes; a change's value holds the messages, statuses or
user preferences of one business phone number. Message types this service does not know (or a
known type missing its body, as Meta sends with ``errors``) parse as ``UnsupportedMessage``:
an authentic post never fails to parse because WhatsApp added a type.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class GraphError(_Model):
    code: int = 0
    title: str = ""


class Metadata(_Model):
    phone_number_id: str
    display_phone_number: str = ""


class Profile(_Model):
    name: str = ""


class Contact(_Model):
    wa_id: str = ""
    profile: Profile = Field(default_factory=Profile)


class Context(_Model):
    id: str = ""  # the message replied to
    forwarded: bool = False


class _Message(_Model):
    id: str = ""
    from_: str = Field("", alias="from")  # the customer's wa_id
    timestamp: int = 0
    context: Context | None = None


class TextBody(_Model):
    body: str


class TextMessage(_Message):
    type: Literal["text"]
    text: TextBody


class ReplyChoice(_Model):
    id: str
    title: str = ""
    description: str = ""


class Interactive(_Model):
    type: str
    button_reply: ReplyChoice | None = None
    list_reply: ReplyChoice | None = None


class InteractiveMessage(_Message):
    type: Literal["interactive"]
    interactive: Interactive


class Button(_Model):
    """A template's quick-reply button, tapped."""

    payload: str = ""
    text: str = ""


class ButtonMessage(_Message):
    type: Literal["button"]
    button: Button


class MediaObject(_Model):
    id: str
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""
    voice: bool = False  # audio recorded in WhatsApp (a voice note)


class ImageMessage(_Message):
    type: Literal["image"]
    image: MediaObject


class AudioMessage(_Message):
    type: Literal["audio"]
    audio: MediaObject


class VideoMessage(_Message):
    type: Literal["video"]
    video: MediaObject


class DocumentMessage(_Message):
    type: Literal["document"]
    document: MediaObject


class StickerMessage(_Message):
    type: Literal["sticker"]
    sticker: MediaObject


class Location(_Model):
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


class LocationMessage(_Message):
    type: Literal["location"]
    location: Location


class Reaction(_Model):
    message_id: str = ""
    emoji: str = ""  # empty: the reaction was removed


class ReactionMessage(_Message):
    type: Literal["reaction"]
    reaction: Reaction


class ContactName(_Model):
    formatted_name: str = ""


class ContactPhone(_Model):
    phone: str = ""
    wa_id: str = ""


class SharedContact(_Model):
    name: ContactName = Field(default_factory=ContactName)
    phones: list[ContactPhone] = Field(default_factory=list)


class ContactsMessage(_Message):
    type: Literal["contacts"]
    contacts: list[SharedContact]


class OrderItem(_Model):
    product_retailer_id: str
    quantity: int = 1
    item_price: float = 0
    currency: str = ""


class Order(_Model):
    catalog_id: str = ""
    text: str = ""
    product_items: list[OrderItem] = Field(default_factory=list)


class OrderMessage(_Message):
    type: Literal["order"]
    order: Order


class UnsupportedMessage(_Message):
    """Any other type (system, unsupported, a future one): acknowledged, not answered."""

    type: str = "unsupported"
    errors: list[GraphError] = Field(default_factory=list)


_KNOWN = frozenset(
    {
        "text", "interactive", "button", "image", "audio", "video",
        "document", "sticker", "location", "reaction", "contacts", "order",
    }
)  # fmt: skip


def _message_tag(data: Any) -> str:
    if isinstance(data, dict):
        kind = data.get("type")
        # A known type without its body (Meta sends that with errors) is unsupported too.
        return kind if kind in _KNOWN and kind in data else "unsupported"
    kind = getattr(data, "type", None)
    return kind if kind in _KNOWN else "unsupported"


InboundMessage = Annotated[
    Annotated[TextMessage, Tag("text")]
    | Annotated[InteractiveMessage, Tag("interactive")]
    | Annotated[ButtonMessage, Tag("button")]
    | Annotated[ImageMessage, Tag("image")]
    | Annotated[AudioMessage, Tag("audio")]
    | Annotated[VideoMessage, Tag("video")]
    | Annotated[DocumentMessage, Tag("document")]
    | Annotated[StickerMessage, Tag("sticker")]
    | Annotated[LocationMessage, Tag("location")]
    | Annotated[ReactionMessage, Tag("reaction")]
    | Annotated[ContactsMessage, Tag("contacts")]
    | Annotated[OrderMessage, Tag("order")]
    | Annotated[UnsupportedMessage, Tag("unsupported")],
    Discriminator(_message_tag),
]


_MESSAGE = TypeAdapter(InboundMessage)


def _message_or_unsupported(item: Any) -> InboundMessage:
    """One message, or an UnsupportedMessage if it is malformed: one bad message must not take
    its neighbours in the post down with it."""
    try:
        return _MESSAGE.validate_python(item)
    except ValidationError:
        fields = item if isinstance(item, dict) else {}
        known = {k: fields[k] for k in ("id", "from") if isinstance(fields.get(k), str)}
        return UnsupportedMessage.model_validate({**known, "type": "invalid"})


class Status(_Model):
    """What became of a message this service sent."""

    id: str = ""  # the wamid the send returned
    status: str = ""  # sent, delivered, read, failed (and others WhatsApp may add)
    timestamp: int = 0
    recipient_id: str = ""
    errors: list[GraphError] = Field(default_factory=list)


class UserPreference(_Model):
    """A customer's choice about marketing messages, made in WhatsApp itself."""

    wa_id: str = ""
    detail: str = ""  # Meta's description of the choice, e.g. "User requested to stop ..."
    category: str = ""  # "marketing_messages"
    value: str = ""  # "stop" or "resume"
    timestamp: int = 0


class Value(_Model):
    messaging_product: str = "whatsapp"
    metadata: Metadata | None = None  # absent from fields this service does not handle
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[InboundMessage] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    user_preferences: list[UserPreference] = Field(default_factory=list)
    errors: list[GraphError] = Field(default_factory=list)

    @field_validator("messages", mode="wrap")
    @classmethod
    def _each_message(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> list[InboundMessage]:
        if not isinstance(value, list):
            return handler(value)  # type: ignore[no-any-return]
        return [_message_or_unsupported(item) for item in value]


class Change(_Model):
    field: str
    value: Value | None = None  # None for fields this service does not subscribe to


class Entry(_Model):
    id: str = ""  # the WhatsApp Business Account
    changes: list[Change] = Field(default_factory=list)


class WebhookPayload(_Model):
    object: str = ""
    entry: list[Entry] = Field(default_factory=list)
