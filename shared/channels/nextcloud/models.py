"""A Nextcloud Talk bot post, typed: an Activity Streams 2.0 activity. A chat message is a
``Create`` of a ``Note`` whose ``content`` is itself JSON (the message with its ``{placeholder}``
parameters: mentions, shared files); the ``target`` is the conversation, by its token.

A conversation is addressed by its server and token together (``room_address``): one deployment
may answer several Nextcloud servers, each with its own tokens.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, Json, field_validator

TOKEN = re.compile(r"[A-Za-z0-9]{1,64}")  # a conversation token, safe in a URL path


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Actor(_Model):
    type: str  # "Person" for users and guests, "Application" for bots
    id: str  # "users/ada", "guests/...", "bots/..."
    name: str = ""


class Parameter(_Model):
    """A rich-object parameter of a message: a mention, a shared file, a call..."""

    type: str
    id: str = ""
    name: str = ""


class Content(_Model):
    message: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)

    @field_validator("parameters", mode="before")
    @classmethod
    def _php_empty_list(cls, value: Any) -> Any:
        return {} if value == [] else value  # PHP encodes an empty map as []

    @property
    def text(self) -> str:
        """The message with each placeholder replaced by what it stands for."""

        def expand(match: re.Match[str]) -> str:
            parameter = self.parameters.get(match.group(1))
            if parameter is None:
                return match.group(0)
            if parameter.type == "file":
                return f"[document: {parameter.name}]"
            if parameter.type in ("user", "guest", "call", "user-group", "email"):
                return f"@{parameter.name}"
            return parameter.name

        return re.sub(r"\{([A-Za-z0-9_-]+)\}", expand, self.message)


class Note(_Model):
    type: str  # "Note" for a chat message
    id: str  # the message id
    name: str = ""
    content: Json[Content] | None = None
    media_type: str = Field("text/plain", alias="mediaType")

    @field_validator("id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class Target(_Model):
    type: str = "Collection"
    id: str  # the conversation token
    name: str = ""


class Activity(_Model):
    type: str  # "Create" (a message), "Join" / "Leave" (the bot added or removed), "Like"...
    actor: Actor
    object: Note
    target: Target | None = None

    @property
    def kind(self) -> str:
        return "message" if self.type == "Create" and self.object.type == "Note" else "other"


def room_address(backend: str, token: str) -> str:
    """Where a conversation's replies go: its server's base URL and its token."""
    return f"{backend}#{token}"


def split_address(address: str) -> tuple[str, str] | None:
    """``room_address``'s (backend, token), or None if ``address`` is not one."""
    backend, mark, token = address.rpartition("#")
    if not mark or not backend.startswith(("https://", "http://")) or not TOKEN.fullmatch(token):
        return None
    return backend, token
