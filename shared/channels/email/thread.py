"""Where an e-mail reply goes: the customer's address and the headers that keep the reply in its
thread (``In-Reply-To``, ``References``, ``Re:`` subject).

The worker gives a sender only the conversation's ``channel_user``, so for e-mail that value is
this record, as compact JSON, rewritten by each message the customer sends (the reply answers
the latest). A bare address (a campaign's) is accepted too: a new message, no thread.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_REFERENCES = 10  # RFC 5322 allows trimming: the root and the latest ids are what count


class ReplyTo(BaseModel):
    model_config = ConfigDict(frozen=True)

    to: str
    subject: str = ""
    in_reply_to: str = ""  # the customer's latest Message-ID
    references: list[str] = []  # the thread's Message-IDs, root first

    def encode(self) -> str:
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def decode(cls, user: str) -> ReplyTo:
        if user.startswith("{"):
            try:
                return cls.model_validate(json.loads(user))
            except (ValueError, ValidationError):
                pass
        return cls(to=user)

    @property
    def reply_subject(self) -> str:
        subject = " ".join(self.subject.split())
        return subject if subject.lower().startswith("re:") else f"Re: {subject}".rstrip()


def recipient(user: str) -> str:
    """The address a ``channel_user`` sends to, lower-cased."""
    return ReplyTo.decode(user).to.lower()


def trimmed(references: list[str]) -> list[str]:
    """The root and the latest ids, at most ``MAX_REFERENCES``."""
    if len(references) <= MAX_REFERENCES:
        return references
    return [references[0], *references[-(MAX_REFERENCES - 1) :]]
