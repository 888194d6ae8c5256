"""Plays the conversation set through the real functions and scores it.

Web dialogues go through ``POST /chat`` (the chat function's handler, as the adapters call it);
WhatsApp dialogues through the signed webhook, the in-process queue and the worker, the replies
read at the loopback Graph API. Everything below the functions is real: an SQLite store holding
the demo shop (``seed_demo``) and the glow shop (its Shopify CSV and an English FAQ imported),
retrieval, the prompt, the agent loop with its tools, the price guard, the CRM.

Two modes: ``offline`` (the embedded responder, no key) and ``openai`` (``LLM_PROVIDER=openai``
against the loopback OpenAI server, played by ``StubModel``: a rule-based model that calls the
real tools from the dialogue's expectations, so the tool-calling path is measured end to end).

Scores, per category and overall, as passed/total checks of each metric:

- ``lead_fields``: each field of the expected order (name, phone, address, product, variant,
  quantity) equal to the lead the conversation ends with; "no order" is one check;
- ``language``: each reply in the expected language (French/English marker words, the shop's
  own product titles and offer left out);
- ``faq``: the expected entry's answer given (or, for null, no FAQ answer at all);
- ``product``: the expected products named and catalogue prices stated;
- ``handoff``: the conversation with a person from the shop at the end, or not, as expected;
- ``reply``: the words a reply must hold or must not hold (sizes listed, the offer, the phone
  never asked for on WhatsApp, the read-back summary).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from functions import chat as chat_function
from functions import webhook_whatsapp
from shared import conversations, crm
from shared.app import App, use_app
from shared.catalog.importer import import_catalog, import_faq, seed_demo
from shared.catalog.retrieval import fold
from shared.http import Request
from shared.models import FaqEntry, Lead, Shop
from shared.queue.inprocess import InProcessQueue
from tests.channels.conftest import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    signature,
    whatsapp_text,
)
from tests.conversations import LEAD_FIELDS, Dialogue, Turn, load_set
from tests.conversations.stub_model import StubModel
from tests.fixtures.app import make_settings
from tests.fixtures.graph_server import TOKEN, GraphServer
from tests.fixtures.openai_server import API_KEY, OpenAIServer

ROOT = Path(__file__).resolve().parents[2]
GLOW_CATALOG = ROOT / "tests" / "data" / "glow_cosmetics.csv"
GLOW_FAQ = ROOT / "tests" / "data" / "glow_faq.json"
GLOW_SHOP = {
    "id": "glow",
    "name": "Glow Cosmetics",
    "currency": "GBP",
    "languages": ["en"],
    "phone_region": "GB",
    "contact": "hello@glow-cosmetics.example · 020 7946 0000",
    "url": "https://glow-cosmetics.example",
    "offer": "10% off your first order with the code GLOW10",
}
Mode = Literal["offline", "openai"]
METRICS = ("lead_fields", "language", "faq", "product", "handoff", "reply")
# Issue 11's goals with the offline responder (None: no goal set, every check should pass).
GOALS: dict[str, float | None] = {
    "lead_fields": 100.0,
    "language": 100.0,
    "faq": 95.0,
    "product": 95.0,
    "handoff": None,
    "reply": None,
}
_FRENCH = frozenset(
    """le la les des un une est et vous votre vos nous pour avec sur dans je j de du que qui pas
    ce cette voici merci bonjour commande livraison trouve prix taille souhaitez pouvez
    notre au aux il elle ou mais tres bien""".split()
)
_ENGLISH = frozenset(
    """the and you your we for with on in i of is are to this here thank thanks hello order
    delivery found price size would like can our it or but very well what which""".split()
)


@dataclass(frozen=True)
class Check:
    metric: str
    passed: bool
    what: str  # shown with --verbose when it failed


@dataclass
class Outcome:
    dialogue: Dialogue
    checks: list[Check] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    def add(self, metric: str, passed: bool, what: str) -> None:
        self.checks.append(Check(metric, passed, what))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


@dataclass(frozen=True)
class Score:
    passed: int
    total: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.passed / self.total if self.total else None

    def __str__(self) -> str:
        return f"{self.passed}/{self.total}"


def scores(outcomes: list[Outcome]) -> dict[str, dict[str, Score]]:
    """{category or "all": {metric: Score}}, categories in the set's order."""
    table: dict[str, dict[str, Score]] = {}
    for group in [*dict.fromkeys(o.dialogue.category for o in outcomes), "all"]:
        chosen = [o for o in outcomes if group in ("all", o.dialogue.category)]
        checks = [c for o in chosen for c in o.checks]
        table[group] = {
            m: Score(
                sum(1 for c in checks if c.metric == m and c.passed),
                sum(1 for c in checks if c.metric == m),
            )
            for m in METRICS
        }
    return table


def format_table(table: dict[str, dict[str, Score]], title: str) -> str:
    """A markdown table: one row per category, each metric as "percent (passed/total)"."""
    lines = [
        f"{title}",
        "",
        "| category | " + " | ".join(METRICS) + " |",
        "| --- | " + " | ".join("---:" for _ in METRICS) + " |",
    ]
    for group, row in table.items():
        cells = []
        for metric in METRICS:
            score = row[metric]
            percent = score.percent
            cells.append("–" if percent is None else f"{percent:.0f} % ({score})")
        name = f"**{group}**" if group == "all" else group
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    goals = [f"≥ {g:.0f} %" if g is not None and g < 100 else "100 %" for g in GOALS.values()]
    lines.append("| goal | " + " | ".join(goals) + " |")
    return "\n".join(lines)


def format_failures(outcomes: list[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        if outcome.failures:
            lines.append(f"{outcome.dialogue.id} ({outcome.dialogue.category}):")
            lines.extend(f"  - {c.metric}: {c.what}" for c in outcome.failures)
    return "\n".join(lines)


# --- the checks --------------------------------------------------------------------------------


def price_pattern(amount: str) -> re.Pattern[str]:
    """An amount as a reply may write it: 27500, 27 500, 27,500, 27.500; 5.50, 5,50; 22, 22.00."""
    value = Decimal(amount)
    integer = r"[\s\u202f\u00a0,.']?".join(f"{int(value):,}".split(","))
    cents = int((value - int(value)) * 100)
    fraction = rf"[.,]{cents:02d}" if cents else r"(?:[.,]00)?"
    return re.compile(rf"(?<![\d.,]){integer}{fraction}(?![\d]|[.,]\d)")


def _holds(text: str, words: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def reply_language(reply: str, shop: Shop, own_texts: list[str]) -> str | None:
    """"fr", "en", or None when the reply holds no marker word of either. The shop's own texts
    (product titles, the offer) are left out: a French title in an English reply is right."""
    text = fold(reply)
    for own in sorted(own_texts, key=len, reverse=True):
        text = text.replace(fold(own), " ")
    words = re.findall(r"[a-z]+", text)
    french = sum(1 for w in words if w in _FRENCH)
    english = sum(1 for w in words if w in _ENGLISH)
    if french == english:
        return None if not french else "tie"
    return "fr" if french > english else "en"


def check_turn(
    outcome: Outcome, turn: Turn, reply: str, shop: Shop, faq: list[FaqEntry], titles: list[str]
) -> None:
    folded = fold(reply)
    said = f"after {turn.say!r}: {reply!r}"
    if reply:
        want = turn.lang or outcome.dialogue.lang
        got = reply_language(reply, shop, [*titles, shop.offer])
        outcome.add("language", got in (want, None), f"language {got}, not {want} {said}")
    if turn.scores_faq:
        given = [e.id for e in faq if fold(e.answer)[:60] in folded]
        if turn.faq is None:
            outcome.add("faq", not given, f"no FAQ answer expected, gave {given} {said}")
        else:
            outcome.add("faq", turn.faq in given, f"FAQ {turn.faq} expected, gave {given} {said}")
    if turn.scores_product:
        missing = [t for t in turn.products if fold(t) not in folded]
        if turn.products_any and not any(fold(t) in folded for t in turn.products_any):
            missing.append(" or ".join(turn.products_any))
        missing += [f"price {p}" for p in turn.prices if not price_pattern(p).search(reply)]
        outcome.add("product", not missing, f"missing {missing} {said}")
    if turn.says or turn.not_says:
        absent = [w for w in turn.says if not _holds(reply, w)]
        present = [w for w in turn.not_says if _holds(folded, fold(w))]
        outcome.add(
            "reply", not absent and not present, f"lacks {absent}, holds {present} {said}"
        )


def check_lead(outcome: Outcome, lead: Lead | None, extra_leads: int) -> None:
    expected = outcome.dialogue.lead
    if expected is None:
        got = None if lead is None else crm.lead_json(lead)
        outcome.add("lead_fields", lead is None, f"no order expected, got {got}")
        return
    actual: dict[str, Any] = {}
    if lead is not None:
        actual = {
            "name": lead.name,
            "phone": lead.phone,
            "address": lead.address,
            "product": lead.product_title,
            "variant": lead.variant_title,
            "quantity": lead.quantity,
        }
    for name in LEAD_FIELDS:
        got, wanted = actual.get(name, "(no lead)"), expected[name]
        outcome.add("lead_fields", got == wanted, f"{name}: {got!r}, not {wanted!r}")
    if extra_leads:
        outcome.add("lead_fields", False, f"{extra_leads} more lead(s) written by this dialogue")


# --- playing the set ---------------------------------------------------------------------------


class ConversationSet:
    """The two shops on a fresh store, and the dialogues played against them."""

    def __init__(
        self,
        directory: Path,
        mode: Mode,
        graph: GraphServer,
        openai: OpenAIServer | None = None,
    ) -> None:
        self.mode = mode
        self.graph = graph
        self.openai = openai
        self.stub = StubModel() if mode == "openai" else None
        overrides = {
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_ACCESS_TOKEN": TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_API_BASE": graph.base_url,
            "DEFAULT_SHOP": "demo",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "CLIENT_RATE_LIMIT_PER_MINUTE": "1000000",
            "LOG_LEVEL": "ERROR",
        }
        if mode == "openai":
            assert openai is not None and self.stub is not None
            openai.script.reset()
            openai.script.responder = self.stub.respond
            overrides |= {
                "LLM_PROVIDER": "openai",
                "LLM_MODEL": "gpt-test",
                "OPENAI_API_KEY": API_KEY,
                "LLM_BASE_URL": openai.base_url,
                "LLM_RETRIES": "0",
            }
        self.app = App(make_settings(directory, **overrides))
        seed_demo(self.app.store, "demo")
        self.app.store.create("glow", "shops", "glow", Shop.model_validate(GLOW_SHOP).to_doc())
        import_catalog(self.app.store, "glow", GLOW_CATALOG)
        import_faq(self.app.store, "glow", GLOW_FAQ)
        use_app(self.app)

    def close(self) -> None:
        use_app(None)
        if self.openai is not None:
            self.openai.script.reset()
        if "queue" in self.app.__dict__:
            self.app.queue.close()
        self.app.store.close()

    def play(self, dialogue: Dialogue) -> Outcome:
        shop = self.app.shops.get(dialogue.shop)
        index = self.app.chat.catalog.get(shop)
        faq = list(index.faq.values())
        titles = [p.title for p in index.products.values()]
        outcome = Outcome(dialogue)
        started = time.time()
        session_id: str | None = None
        for number, turn in enumerate(dialogue.turns):
            if self.stub is not None:
                self.stub.play(dialogue, number)
            if dialogue.channel == "whatsapp":
                reply = self._whatsapp_turn(dialogue, turn, number)
            else:
                reply, session_id = self._web_turn(shop, session_id, turn.say)
            outcome.replies.append(reply)
            check_turn(outcome, turn, reply, shop, faq, titles)
        if dialogue.scores_lead:
            touched = [
                lead
                for lead in crm.list_leads(self.app.store, shop.id)
                if lead.updated_at >= started
            ]
            touched.sort(key=lambda lead: lead.updated_at)
            check_lead(outcome, touched[-1] if touched else None, max(0, len(touched) - 1))
        if dialogue.handoff is not None:
            conversation = (
                conversations.get(self.app.store, shop.id, session_id) if session_id else None
            )
            handed = conversation is not None and conversation.state == "human"
            outcome.add(
                "handoff", handed == dialogue.handoff, f"handed to a person: {handed}"
            )
        return outcome

    def _web_turn(self, shop: Shop, session_id: str | None, text: str) -> tuple[str, str]:
        body = json.dumps({"message": text, "session_id": session_id, "shop": shop.id}).encode()
        request = Request(
            "POST",
            "/chat",
            headers={"content-type": "application/json"},
            body=body,
            source_ip="203.0.113.7",
        )
        response = chat_function.handler(request)
        data = json.loads(response.body_bytes())
        if response.status != 200:
            raise AssertionError(f"POST /chat answered {response.status}: {data}")
        return str(data["reply"]), str(data["session_id"])

    def _whatsapp_turn(self, dialogue: Dialogue, turn: Turn, number: int) -> str:
        assert dialogue.whatsapp_from is not None
        payload = whatsapp_text(turn.say, f"wamid.{dialogue.id}.{number}", int(time.time()))
        value = payload["entry"][0]["changes"][0]["value"]
        value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
        value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = dialogue.whatsapp_from
        raw = json.dumps(payload).encode()
        headers = {"content-type": "application/json", "x-hub-signature-256": signature(raw)}
        sent_before = len(self.graph.sent)
        status = webhook_whatsapp.handler(
            Request("POST", "/webhooks/whatsapp", headers=headers, body=raw)
        ).status
        if status != 200:
            raise AssertionError(f"the WhatsApp webhook answered {status}")
        queue = self.app.queue
        assert isinstance(queue, InProcessQueue)
        if not queue.drain(timeout=20):
            raise AssertionError("the worker did not answer within 20 s")
        texts = []
        for sent in self.graph.sent[sent_before:]:
            if "interactive" in sent:
                texts.append(sent["interactive"]["body"]["text"])
            elif "text" in sent:
                texts.append(sent["text"]["body"])
        return "\n".join(texts)


@contextmanager
def conversation_set(
    mode: Mode, graph: GraphServer, openai: OpenAIServer | None = None
) -> Iterator[ConversationSet]:
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="convset-")))
        played = ConversationSet(directory, mode, graph, openai)
        stack.callback(played.close)
        yield played


def floors_from(table: dict[str, dict[str, Score]]) -> dict[str, dict[str, float]]:
    """The measured percentages, rounded down to 0.1: the floors a later run must reach."""
    return {
        group: {
            metric: math.floor(score.percent * 10) / 10
            for metric, score in row.items()
            if score.percent is not None
        }
        for group, row in table.items()
    }


def below_floors(
    table: dict[str, dict[str, Score]], floors: dict[str, dict[str, float]]
) -> list[str]:
    """Each rate under its floor, as "group metric: measured < floor"."""
    return [
        f"{group} {metric}: {score.percent:.1f} % < floor {floors[group][metric]} %"
        for group, row in table.items()
        for metric, score in row.items()
        if metric in floors.get(group, {})
        and (score.percent if score.percent is not None else 0.0) < floors[group][metric]
    ]


def run_set(
    mode: Mode,
    graph: GraphServer,
    openai: OpenAIServer | None = None,
    dialogues: list[Dialogue] | None = None,
) -> list[Outcome]:
    """Every dialogue of the set (or ``dialogues``) played in ``mode``."""
    with conversation_set(mode, graph, openai) as played:
        return [played.play(d) for d in (dialogues if dialogues is not None else load_set())]
