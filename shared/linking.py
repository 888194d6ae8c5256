"""One customer across channels: a web or Telegram conversation proves it belongs to the verified
customer of a WhatsApp number with a one-time code sent to that number on WhatsApp.

A number typed in a chat is a claim (``shared/crm.py``); the code is the proof. ``start`` sends
a 6-digit code to the number on WhatsApp (free text inside the 24-hour window, else the shop's
authentication template ``whatsapp_code_template``) and keeps on the conversation only a keyed
hash of it (HMAC-SHA256 under the WhatsApp app secret, or the access token: never in the store),
its expiry (CODE_TTL) and a count of wrong tries. ``verify`` checks a code typed back in the
same conversation: MAX_ATTEMPTS wrong tries void it, an expired one is void, and a right one
links the conversation to the number's verified customer (created if the number never wrote:
the code proved it) with ``crm.link_verified``, which moves the conversation's own contact's
memory and orders to it. Each check is a conditional write, so two racing tries count twice.
Codes and numbers never go into a log line or an error.

The only link made without a code is the channel's own: a WhatsApp conversation (and so an
order placed on WhatsApp) is the verified customer's already. A phone typed with a web order
links nothing: the web needs the code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shared import conversations, crm
from shared.exceptions import ChannelError, ConfigError, InvalidInputError
from shared.log import log_event
from shared.models import Conversation, Customer, PendingLink, Shop
from shared.settings import Settings
from shared.store import Store

CODE_DIGITS = 6
CODE_TTL = 600.0  # seconds a code is valid
MAX_ATTEMPTS = 5  # wrong codes before it is void
MAX_CODES_PER_HOUR = 3  # codes one conversation may have sent: no spamming a number, no guessing
CODE_TEXT = {
    "fr": "{code} est votre code pour relier votre conversation avec {shop}. Il expire dans "
    "10 minutes. Ne le donnez à personne d'autre que notre assistant.",
    "en": "{code} is your code to link your conversation with {shop}. It expires in 10 "
    "minutes. Do not share it with anyone but our assistant.",
}
Outcome = Literal["linked", "wrong_code", "void", "expired", "none_pending"]


@dataclass(frozen=True)
class Verified:
    outcome: Outcome
    tries_left: int = 0
    customer: Customer | None = None
    conversation: Conversation | None = None


def is_code(text: str) -> bool:
    """Whether ``text`` is a code typed alone (spaces allowed: "123 456")."""
    digits = "".join(text.split())
    return len(digits) == CODE_DIGITS and digits.isdigit()


class Linking:
    """Sends and checks link codes for a chat turn (``TurnContext.linking``)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        send_code: Callable[[Shop, str, str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``send_code(shop, to, text, code)`` sends on WhatsApp (by default the shop's
        sender's ``send_code``)."""
        self.store = store
        self.settings = settings
        self.send_code = send_code or self._whatsapp
        self.clock = clock

    def start(self, shop: Shop, conversation: Conversation, phone: str, lang: str) -> Conversation:
        """Send a code to ``phone`` (as typed) for ``conversation``; the conversation as saved.
        InvalidInputError (its text for the model) when no code can be sent."""
        if conversation.channel in crm.VERIFYING_CHANNELS:
            raise InvalidInputError("this conversation is on WhatsApp: it is verified already")
        number = crm.normalise_phone(phone, shop.phone_region)
        now = self.clock()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        earlier = conversation.pending_link
        recent = earlier is not None and earlier.hour_started_at > now - 3600
        sent = earlier.codes_sent if earlier is not None and recent else 0
        if sent >= MAX_CODES_PER_HOUR:
            raise InvalidInputError("too many codes were sent for this conversation: wait an hour")
        pending = PendingLink(
            phone=number,
            code_hash=self._hash(shop.id, conversation.id, number, code),
            expires_at=now + CODE_TTL,
            codes_sent=sent + 1,
            hour_started_at=earlier.hour_started_at if earlier is not None and recent else now,
        )
        saved = conversations.update(
            self.store, shop.id, conversation.id,
            lambda c: c.model_copy(update={"pending_link": pending}),
        )
        text = CODE_TEXT.get(lang, CODE_TEXT["en"]).format(code=code, shop=shop.name)
        try:
            self.send_code(shop, number, text, code)
        except (ChannelError, ConfigError) as error:
            log_event("link_code_failed", shop=shop.id, error=type(error).__name__)
            raise InvalidInputError(
                "the code could not be sent on WhatsApp: the number must be on WhatsApp and "
                "have written to the shop there in the last 24 hours"
            ) from error
        log_event("link_code_sent", shop=shop.id, channel=conversation.channel)
        return saved

    def verify(self, shop: Shop, conversation: Conversation, code: str) -> Verified:
        """Check ``code`` typed in ``conversation``; on the right one, link it."""
        typed = "".join(code.split())
        now = self.clock()
        outcome: Outcome = "none_pending"
        tries_left = 0

        def check(current: Conversation) -> Conversation:
            nonlocal outcome, tries_left
            link = current.pending_link
            if link is None or not link.code_hash:
                outcome = "none_pending"
                return current
            spent = link.model_copy(update={"code_hash": ""})  # keeps the hourly count
            if link.expires_at <= now:
                outcome = "expired"
                return current.model_copy(update={"pending_link": spent})
            expected = self._hash(shop.id, current.id, link.phone, typed)
            if hmac.compare_digest(expected, link.code_hash):
                outcome = "linked"
                return current.model_copy(update={"pending_link": spent})
            attempts = link.attempts + 1
            tries_left = MAX_ATTEMPTS - attempts
            outcome = "wrong_code" if tries_left > 0 else "void"
            counted = link.model_copy(update={"attempts": attempts})
            return current.model_copy(update={"pending_link": counted if tries_left else spent})

        before = conversation.pending_link
        saved = conversations.update(self.store, shop.id, conversation.id, check)
        log_event("link_code_checked", shop=shop.id, outcome=outcome)
        if outcome != "linked" or before is None:
            return Verified(outcome, tries_left, conversation=saved)
        phone = before.phone
        customer_id = crm.verified_customer_id(self.store, shop.id, phone)
        if customer_id is None:  # the number never wrote: the code proved it all the same
            customer_id = crm.find_or_create_customer_by_phone(
                self.store, shop.id, phone, "", crm.identity_of(saved)
            ).id
        customer, linked = crm.link_verified(self.store, shop.id, saved, customer_id)
        log_event("conversation_linked", shop=shop.id, channel=saved.channel)
        return Verified("linked", customer=customer, conversation=linked)

    def _hash(self, shop: str, conversation_id: str, phone: str, code: str) -> str:
        key = self.settings.whatsapp_app_secret or self.settings.whatsapp_access_token
        if key is None:
            raise ConfigError("link codes need WHATSAPP_APP_SECRET or WHATSAPP_ACCESS_TOKEN")
        message = f"{shop}\n{conversation_id}\n{phone}\n{code}".encode()
        return hmac.new(key.get_secret_value().encode(), message, hashlib.sha256).hexdigest()

    def _whatsapp(self, shop: Shop, to: str, text: str, code: str) -> None:
        from shared.channels import sender_for
        from shared.channels.whatsapp.sender import WhatsAppChannel

        channel = sender_for(self.settings, shop, "whatsapp")
        assert isinstance(channel, WhatsAppChannel)
        channel.send_code(to.removeprefix("+"), text, code)
