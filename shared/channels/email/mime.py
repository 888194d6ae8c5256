"""A received e-mail, parsed with the standard library (``email``, ``policy.default``): who
wrote, the thread it belongs to, and the new text only, without the quoted history or the
signature that mail clients add, which the model must not read as the customer's words.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# "On Mon, 6 Oct 2025 at 10:02, Awa <awa@example.sn> wrote:" and its French form, which clients
# often wrap over two lines; the headers Outlook quotes with.
QUOTE_HEADER = re.compile(
    r"^[ \t]*(?:On\s[^\n]*(?:\n[^\n]*)?\swrote:|Le\s[^\n]*(?:\n[^\n]*)?\sa\s+écrit\s?:"
    r"|-{2,}\s*(?:Original Message|Message d'origine)\s*-{2,}"
    r"|(?:From|De)\s?:[^\n]*\n(?:Sent|Envoyé)\s?:)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)  # RFC 3676's "-- " line; some trim the space
TAG = re.compile(r"<[^>]*>")
BLOCK_END = re.compile(r"</(?:p|div|li|tr|h[1-6])>|<br\s*/?>", re.IGNORECASE)
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


@dataclass(frozen=True)
class Mail:
    message_id: str  # "<...>"; a digest of the raw message when it has none
    sender: str  # the From address, lower-cased
    name: str
    subject: str
    references: list[str]  # the thread's ids before this message, root first
    text: str  # the new text only
    at: float | None  # the Date header
    automatic: bool  # an auto-reply, a bounce or a list: never answered (mail loops)

    @property
    def root(self) -> str:
        """The thread's first message: what keys its conversation."""
        return self.references[0] if self.references else self.message_id


def parse(raw: bytes) -> Mail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    own = _ids(message.get("Message-ID"))
    message_id = own[0] if own else f"<{hashlib.sha256(raw).hexdigest()}@digest>"
    references = _ids(message.get("References"))
    for parent in _ids(message.get("In-Reply-To")):
        if parent not in references:
            references.append(parent)
    addresses = getaddresses([str(message.get("From", ""))])
    name, sender = addresses[0] if addresses else ("", "")
    return Mail(
        message_id=message_id,
        sender=sender.strip().lower(),
        name=name.strip(),
        subject=" ".join(str(message.get("Subject", "")).split()),
        references=[r for r in references if r != message_id],
        text=strip_quoted(_body(message)),
        at=_date(message.get("Date")),
        automatic=_automatic(message, sender),
    )


def strip_quoted(text: str) -> str:
    """``text`` without the quoted history (from a client's "On ... wrote:" line, and every line
    starting with ">") and the signature (from its "-- " line)."""
    text = text.replace("\r\n", "\n")
    for cut in (QUOTE_HEADER, SIGNATURE):
        found = cut.search(text)
        if found is not None:
            text = text[: found.start()]
    lines = [line.rstrip() for line in text.split("\n") if not line.lstrip().startswith(">")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _ids(value: object) -> list[str]:
    return MESSAGE_ID.findall(str(value)) if value is not None else []


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken transfer encoding
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        # Quoted history in HTML mail sits in a <blockquote>: dropped with it.
        content = re.sub(r"<(blockquote|style|script)\b.*?</\1>", "", content, flags=re.S | re.I)
        content = html.unescape(TAG.sub("", BLOCK_END.sub("\n", content)))
    return content


def _date(value: object) -> float | None:
    try:
        return parsedate_to_datetime(str(value)).timestamp() if value is not None else None
    except (TypeError, ValueError):
        return None


def _automatic(message: EmailMessage, sender: str) -> bool:
    """RFC 3834's Auto-Submitted, a list's or a bulk sender's Precedence, a bounce."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    local = sender.split("@")[0].lower()
    return (
        submitted != "no"
        or precedence in AUTOMATIC_PRECEDENCE
        or message.get("List-Id") is not None
        or local in {"mailer-daemon", "postmaster", ""}
    )
