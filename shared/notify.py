"""An operator's message to a customer on their preferred channel: the channel they last wrote on.

``python -m shared notify --shop S --id CUSTOMER_ID --text "..."`` finds, among the channel
conversations the customer belongs to (WhatsApp, and Telegram once linked by a code: see
``shared/linking.py``), the one with the latest message from them, stores the text there as an
assistant message (so the assistant and the history see it) and sends it as any reply is sent
(``shared.channels.turn.send_reply``): on WhatsApp free text inside the 24-hour window, else the
shop's template; on Telegram text. A customer known only on the web cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from shared import conversations, crm
from shared.exceptions import ComptoirError, InvalidInputError, NotFoundError
from shared.ids import new_sortable_id
from shared.log import log_event
from shared.models import Conversation, Customer, Message

if TYPE_CHECKING:
    from shared.app import App
    from shared.store import Store

COMMANDS = ("notify",)
REACHABLE = ("whatsapp", "telegram")  # channels a message can be pushed on


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser(
        "notify", help="send a customer a message on the channel they last wrote on"
    )
    cmd.add_argument("--shop", help="shop id (default: DEFAULT_SHOP)")
    cmd.add_argument("--id", required=True, dest="customer_id", help="the customer's id")
    cmd.add_argument("--text", required=True, help="the message")


def run(args: argparse.Namespace) -> int:
    from shared.app import get_app

    try:
        app = get_app()
        shop = args.shop or app.settings.default_shop
        conversation = notify(app, shop, args.customer_id, args.text)
    except ComptoirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"sent on {conversation.channel} (conversation {conversation.id})")
    return 0


def preferred_conversation(store: Store, shop: str, customer: Customer) -> Conversation | None:
    """The channel conversation ``customer`` last wrote in, among those it belongs to."""
    ids = [
        identity.split(":", 1)[1]
        for identity in customer.identities
        if identity.split(":", 1)[0] in REACHABLE
    ]
    found = store.get_many(shop, conversations.CONVERSATIONS, ids) if ids else {}
    reachable = [
        conversation
        for conversation in (Conversation.from_doc(doc) for doc in found.values())
        if conversation.channel_user is not None and crm.belongs(customer, conversation)
    ]
    return max(reachable, key=lambda c: c.last_inbound_at or 0.0, default=None)


def notify(app: App, shop_id: str, customer_id: str, text: str) -> Conversation:
    """Store ``text`` in the customer's preferred conversation and send it there; that
    conversation. NotFoundError without such a customer, InvalidInputError when it has no
    channel conversation."""
    from shared.channels import open_channel
    from shared.channels.turn import send_reply

    text = text.strip()
    if not text:
        raise InvalidInputError("the text is empty")
    store = app.store
    customer = crm.get_customer(store, shop_id, customer_id)
    if customer is None:
        raise NotFoundError(f"no customer {customer_id} in shop {shop_id}")
    conversation = preferred_conversation(store, shop_id, customer)
    if conversation is None:
        raise InvalidInputError("this customer has written on no channel a message can reach")
    shop = app.shops.get(shop_id)
    message = Message(
        id=new_sortable_id(), role="assistant", text=text, at=time.time(), delivery="pending"
    )
    conversations.add_message(
        store, shop_id, conversation.id, message, channel=conversation.channel
    )
    conversation = conversations.update(
        store,
        shop_id,
        conversation.id,
        lambda c: c.model_copy(update={"recent": conversations.appended(c.recent, [message])}),
    )
    channel = open_channel(app, shop, conversation.channel)
    # Sent as the bot's reply would be, even while the conversation is with the shop: it is the
    # shop writing, so no handoff notice goes to the operator.
    send_reply(app, shop, conversation.model_copy(update={"state": "bot"}), channel, message.id)
    log_event("customer_notified", shop=shop_id, channel=conversation.channel)
    return conversation
