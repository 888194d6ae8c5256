"""E-mail replies: one plain-text message per reply, in the customer's thread (``In-Reply-To``,
``References``, ``Re:`` subject, from ``thread.ReplyTo``), through SMTP (``EMAIL_SMTP_*``,
STARTTLS unless turned off) or SES's SendRawEmail (``EMAIL_SEND_MODE=ses``, boto3 through
``shared.aws``). Replies say ``Auto-Submitted: auto-replied`` (RFC 3834) so that the customer's
own auto-responder does not answer them back.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formataddr, formatdate, make_msgid
from typing import TYPE_CHECKING, Any, Protocol

from shared.channels.base import TIMEOUT, Channel, Choice, Failure, Fetched, Link, Retry, Sent
from shared.channels.email.thread import ReplyTo
from shared.exceptions import ChannelError, ConfigError
from shared.models import Media, Shop

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings


class Transport(Protocol):
    def deliver(self, message: EmailMessage) -> str:
        """Hand ``message`` over; its id as the recipient will see it. Raises ``Failure``."""


def _error(what: str, retryable: bool, code: int | None = None) -> Failure:
    return Failure(ChannelError(f"email: {what}", retryable=retryable, code=code))


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    starttls: bool
    user: str | None
    password: str | None  # never in a message or a log

    def deliver(self, message: EmailMessage) -> str:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:  # 4xx: try again later; 5xx: refused
            raise _error(f"SMTP {exc.smtp_code}", exc.smtp_code < 500, exc.smtp_code) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _error(f"cannot reach the SMTP server ({type(exc).__name__})", True) from None
        except smtplib.SMTPException as exc:  # every recipient refused, no STARTTLS offered...
            raise _error(f"SMTP refused ({type(exc).__name__})", False) from None
        return str(message["Message-ID"])


_ses_clients: dict[tuple[str | None, str | None], Any] = {}
_ses_lock = threading.Lock()


@dataclass(frozen=True)
class SesTransport:
    region: str | None
    endpoint: str | None

    def deliver(self, message: EmailMessage) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client().send_raw_email(RawMessage={"Data": message.as_bytes()})
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise _error(
                f"SES {code or 'error'}", code in {"Throttling", "ServiceUnavailable"}
            ) from None
        except BotoCoreError as exc:
            raise _error(f"cannot reach SES ({type(exc).__name__})", True) from None
        # SES gives the message its own Message-ID: the one the customer's reply will name.
        return f"<{answer['MessageId']}@email.amazonses.com>"

    def _client(self) -> Any:
        key = (self.region, self.endpoint)
        with _ses_lock:
            if key not in _ses_clients:
                from shared.aws import boto3_client

                _ses_clients[key] = boto3_client(
                    "ses",
                    region=self.region,
                    endpoint_url=self.endpoint,
                    connect_timeout=5.0,
                    read_timeout=TIMEOUT,
                )
            return _ses_clients[key]


class EmailChannel(Channel):
    name = "email"
    text_limit = 100_000  # one message per reply, however long

    def __init__(self, *, address: str, shop_name: str, transport: Transport, retry: Retry) -> None:
        # No HTTP API: the base's client and URL are never used.
        self.base_url = ""
        self.retry = retry
        self.max_media_bytes = 0
        self.address = address
        self.shop_name = shop_name
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Settings, shop: Shop, retry: Retry) -> EmailChannel:
        if settings.email_address is None:
            raise ConfigError("E-mail: set EMAIL_ADDRESS")
        transport: Transport
        if settings.email_send_mode == "ses":
            transport = SesTransport(settings.email_ses_region, settings.email_ses_endpoint)
        elif settings.email_smtp_host is None:
            raise ConfigError("E-mail: set EMAIL_SMTP_HOST (or EMAIL_SEND_MODE=ses)")
        else:
            password = settings.email_smtp_password
            transport = SmtpTransport(
                settings.email_smtp_host,
                settings.email_smtp_port,
                settings.email_smtp_starttls,
                settings.email_smtp_user,
                password.get_secret_value() if password is not None else None,
            )
        return cls(
            address=settings.email_address, shop_name=shop.name, transport=transport, retry=retry
        )

    @staticmethod
    def operator(settings: Settings, shop: Shop) -> str | None:
        return None

    def send(
        self,
        to: str,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> Sent:
        message = self.compose(ReplyTo.decode(to), text, choices, label, link)
        return Sent(self.retrying(lambda: self.transport.deliver(message)))

    def compose(
        self,
        reply: ReplyTo,
        text: str,
        choices: Sequence[Choice] = (),
        label: str = "",
        link: Link | None = None,
    ) -> EmailMessage:
        lines = [text]
        if choices:
            lines += ["", f"{label}:" if label else ""]
            lines += [
                f"- {c.title}" + (f" ({c.description})" if c.description else "") for c in choices
            ]
        if link is not None:
            lines += ["", f"{link.label} : {link.url}"]
        message = EmailMessage(policy=default_policy)
        message["From"] = formataddr((self.shop_name, self.address))
        message["To"] = reply.to
        message["Subject"] = reply.reply_subject if reply.in_reply_to else self.shop_name
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.address.rsplit("@", 1)[-1])
        if reply.in_reply_to:
            message["In-Reply-To"] = reply.in_reply_to
            message["References"] = " ".join(reply.references or [reply.in_reply_to])
            message["Auto-Submitted"] = "auto-replied"
        message.set_content("\n".join(lines).strip() + "\n")
        return message

    def typing(self, to: str, external_id: str) -> None:
        """Mail has no typing indicator."""

    def fetch(self, media: Media, allowed: frozenset[str]) -> Fetched:
        raise self._error("attachments are not read", False)

    def failure(self, response: httpx.Response) -> Failure:
        return _error(f"HTTP {response.status_code}", response.status_code >= 500)
