"""What a campaign did: its runs, each message's status, and what came of them (attribution).

A reply is a customer writing in the conversation after the message reached it; an order is one
captured in a conversation while it answered the campaign (``Lead.campaign_id``, set within
``ATTRIBUTION_DAYS`` of the message); a payment is such an order paid.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from shared.campaigns.models import Run, Send
from shared.campaigns.runner import LEASE_SECONDS, RUNS, SENDS
from shared.crm import LEADS
from shared.models import Conversation, Lead
from shared.store import Store

PAID = frozenset({"paid", "fulfilled"})


@dataclass
class CampaignReport:
    campaign_id: str
    runs: list[Run]
    sends: list[Send]
    statuses: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    replies: int = 0
    orders: int = 0
    payments: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)


def status_of(send: Send, now: float) -> str:
    """A send left "sending" past the lease is one whose worker died: unknown."""
    if send.status == "sending" and send.at < now - LEASE_SECONDS:
        return "unknown"
    return send.status


def report(store: Store, shop: str, campaign_id: str, now: float | None = None) -> CampaignReport:
    now = time.time() if now is None else now
    where = {"campaign_id": campaign_id}
    runs = sorted(
        (Run.from_doc(d) for d in store.scan(shop, RUNS, where=where)), key=lambda r: r.started_at
    )
    sends = [Send.from_doc(d) for d in store.scan(shop, SENDS, where=where)]
    result = CampaignReport(campaign_id, runs, sends)
    for send in sends:
        status = status_of(send, now)
        result.statuses[status] += 1
        result.by_channel[send.channel] += 1
        if send.reason:
            result.reasons[send.reason] += 1
    result.replies = _replies(store, shop, [s for s in sends if s.status == "sent"])
    for doc in store.scan(shop, LEADS, where=where):
        order = Lead.from_doc(doc)
        result.orders += 1
        if order.status in PAID:
            result.payments += 1
            result.revenue[order.currency] = (
                result.revenue.get(order.currency, Decimal(0)) + order.total
            )
    return result


def _replies(store: Store, shop: str, sent: Sequence[Send]) -> int:
    """Conversations whose customer wrote after the campaign's message reached them."""
    latest: dict[str, float] = {}
    for send in sent:
        if send.conversation_id and send.sent_at is not None:
            latest[send.conversation_id] = min(
                latest.get(send.conversation_id, send.sent_at), send.sent_at
            )
    ids = list(latest)
    replied = 0
    for start in range(0, len(ids), 100):
        for doc_id, doc in store.get_many(shop, "conversations", ids[start : start + 100]).items():
            last = Conversation.from_doc(doc).last_inbound_at
            replied += last is not None and last > latest[doc_id]
    return replied
