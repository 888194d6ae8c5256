"""The ``web_search`` tool against a loopback SearXNG: offered only to a shop that turned it on
where SEARXNG_URL is set, the customer's language passed, the top results given to the model
with their sources, every failure a tool error the model reads (never a failed turn), a web
price never passing the price guard, and the offline rules responder unaffected."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.agent import Agent, AgentResult, run_tool
from shared.app import App
from shared.llm import ChatMessage, TextDelta, ToolCall
from shared.models import Conversation
from shared.shops import update_shop
from shared.tools import TOOLS
from shared.tools.base import TurnContext
from shared.tools.web_search import NOTE, SearXNG
from tests.fixtures.app import SHOP, LambdaClient, Result, post_json
from tests.fixtures.searxng_server import SearXNGServer, result
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

SHOP_ID = str(SHOP["id"])
CARE = "Comment entretenir des sandales en cuir ?"
CITED = "Nourrissez le cuir avec une cire (source : https://example.org/article-1)."

MakeApp = Callable[..., App]


def shop_app(make_app: MakeApp, searxng: SearXNGServer, *, configured: bool, enabled: bool) -> App:
    app = make_app(**({"SEARXNG_URL": searxng.root} if configured else {}))
    if enabled:
        update_shop(app.store, SHOP_ID, {"web_search": True})
    return app


def turn(message: str) -> Result:
    answer = post_json(LambdaClient(), "/chat", {"message": message})
    assert answer.status == 200, answer.body
    return answer


def tool_output(script: Script) -> dict[str, Any]:
    """What the model read back from its web_search call (the second request's last message)."""
    message = script.seen[1].messages[-1]
    assert message["role"] == "tool"
    output: dict[str, Any] = json.loads(message["text"])
    return output


@pytest.mark.parametrize(("configured", "enabled"), [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_the_tool_and_its_rules_are_offered_only_when_configured_and_enabled(
    make_app: MakeApp, searxng: SearXNGServer, configured: int, enabled: int
) -> None:
    app = shop_app(make_app, searxng, configured=bool(configured), enabled=bool(enabled))
    script = Script().then(Reply("Bonjour !"))
    app.llm_override = ScriptedLLM(script)
    turn("Bonjour")
    offered = bool(configured and enabled)
    assert ("web_search" in script.seen[0].tools) is offered
    assert "search_products" in script.seen[0].tools
    system = script.seen[0].messages[0]["text"]
    assert ("NEVER use them for the price" in system) is offered
    assert searxng.queries == []  # offering costs no search


@pytest.mark.parametrize(("message", "lang"), [(CARE, "fr"), ("How do I care for leather?", "en")])
def test_the_query_and_language_reach_searxng_and_the_top_results_come_back_with_sources(
    make_app: MakeApp, searxng: SearXNGServer, message: str, lang: str
) -> None:
    app = shop_app(make_app, searxng, configured=True, enabled=True)
    searxng.results = [
        {"title": "No address", "content": "dropped: nothing to cite"},
        result(1, "Une cire   d'abeille\nnourrit le cuir. " + "x" * 600),
        *(result(n) for n in range(2, 9)),
    ]
    script = Script().then(Reply(tool_calls=[("web_search", {"query": "entretien cuir"})]))
    script.then(Reply(CITED))
    app.llm_override = ScriptedLLM(script)
    assert turn(message).json()["reply"] == CITED
    assert searxng.queries == [
        {"q": "entretien cuir", "format": "json", "language": lang, "safesearch": "1"}
    ]
    output = tool_output(script)
    assert output["note"] == NOTE
    assert [r["source"] for r in output["results"]] == [1, 2, 3, 4, 5]  # the top five
    first = output["results"][0]
    assert first["url"] == "https://example.org/article-1"
    assert first["title"] == "Article 1"
    assert first["snippet"].startswith("Une cire d'abeille nourrit le cuir. xxx")
    assert len(first["snippet"]) == 400 and first["snippet"].endswith("…")
    assert set(first) == {"source", "title", "url", "snippet"}  # no engine, score, thumbnail


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("error", "unavailable"),  # a 5xx
        ("forbidden", "unavailable"),  # the instance does not serve the json format
        ("not_json", "unreadable"),
    ],
)
def test_a_failed_search_is_a_tool_error_the_model_reads_and_the_turn_answers(
    make_app: MakeApp, searxng: SearXNGServer, mode: Any, error: str
) -> None:
    app = shop_app(make_app, searxng, configured=True, enabled=True)
    searxng.mode = mode
    script = Script().then(Reply(tool_calls=[("web_search", {"query": "entretien cuir"})]))
    script.then(Reply("Je n'ai pas pu chercher, contactez la boutique."))
    app.llm_override = ScriptedLLM(script)
    answer = turn(CARE).json()
    assert answer["reply"] == "Je n'ai pas pu chercher, contactez la boutique."
    output = tool_output(script)
    assert set(output) == {"error"} and error in output["error"]


def test_a_slow_instance_times_out_into_a_tool_error(
    make_app: MakeApp, searxng: SearXNGServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.tools.web_search.TIMEOUT", 0.3)
    monkeypatch.setattr("shared.tools.web_search.MIN_SEARCH_SECONDS", 0.1)
    app = shop_app(make_app, searxng, configured=True, enabled=True)
    searxng.mode, searxng.delay = "slow", 3.0
    script = Script().then(Reply(tool_calls=[("web_search", {"query": "entretien cuir"})]))
    script.then(Reply("Désolé."))
    app.llm_override = ScriptedLLM(script)
    started = time.monotonic()
    assert turn(CARE).json()["reply"] == "Désolé."
    assert time.monotonic() - started < 2.5  # the search's timeout, not SearXNG's delay
    assert "took too long" in tool_output(script)["error"]


def _context(app: App, searxng: SearXNGServer, deadline: float | None = None) -> TurnContext:
    shop = app.shops.get(SHOP_ID).model_copy(update={"web_search": True})
    now = time.time()
    conversation = Conversation(id="c" * 32, created_at=now, updated_at=now)
    app.store.put(shop.id, "conversations", conversation.id, conversation.to_doc())
    index = app.chat.catalog.get(shop)
    ctx = TurnContext(
        shop, app.store, index, conversation, "web", "fr",
        web_search=SearXNG(searxng.root), deadline=deadline,
    )  # fmt: skip
    ctx.show(*(p for p, _ in index.search_products("sandales en cuir", 4)))  # as a turn does
    return ctx


def test_no_search_when_the_turn_has_no_time_left_for_the_answer(
    app: App, searxng: SearXNGServer
) -> None:
    ctx = _context(app, searxng, deadline=time.monotonic() + 1.0)
    tool = TOOLS["web_search"]
    call = ToolCall("call-1", "web_search", {"query": "entretien cuir"})
    output = run_tool({"web_search": tool}, ctx, call)
    assert "no time left" in output["error"]
    assert searxng.queries == []


@pytest.mark.parametrize(
    ("rewrite", "failures", "final"),
    [
        ("Les Sandales en cuir sont à 15 000 FCFA.", 1, "Les Sandales en cuir sont à 15 000 FCFA."),
        ("Les Sandales en cuir sont à 9 900 FCFA.", 2, None),  # the safe answer
    ],
)
def test_a_price_read_on_the_web_never_passes_the_price_guard(
    app: App, searxng: SearXNGServer, rewrite: str, failures: int, final: str | None
) -> None:
    """A web page gives the shop's own sandals another price; the model repeats it: the guard
    finds it in no catalogue fact, so it never streams and the answer is rewritten (or the safe
    answer replaces it)."""
    searxng.results = [result(1, "Sandales en cuir de Ngaye Mékhé : 9 900 FCFA chez Revendeur.")]
    ctx = _context(app, searxng)
    shown_before = set(ctx.products)
    assert "sandales-cuir" in shown_before
    script = Script().then(
        Reply(tool_calls=[("web_search", {"query": "prix sandales en cuir Ngaye"})]),
        Reply("Les Sandales en cuir sont à 9 900 FCFA (source : https://example.org/article-1)."),
        Reply(rewrite),
    )
    messages = [ChatMessage("system", "You sell."), ChatMessage("user", "Prix des sandales ?")]
    events = list(Agent(ScriptedLLM(script), TOOLS).run(ctx, messages))
    outcome = events[-1]
    assert isinstance(outcome, AgentResult)
    assert "9 900" in tool_output(script)["results"][0]["snippet"]
    assert set(ctx.products) == shown_before  # web results add nothing to the price facts
    assert outcome.guard_failures == failures
    assert "9 900" not in outcome.text and "9\u202f900" not in outcome.text
    if final is not None:
        assert outcome.text == final
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "9 900" not in streamed


def test_the_offline_rules_responder_answers_as_before_and_never_searches(
    make_app: MakeApp, searxng: SearXNGServer
) -> None:
    make_app()  # the offline model, no web search
    before = turn("Avez-vous des sandales en cuir ?").json()
    shop_app(make_app, searxng, configured=True, enabled=True)
    after = turn("Avez-vous des sandales en cuir ?").json()
    assert after["reply"] == before["reply"]
    assert "Sandales en cuir" in after["reply"]
    assert searxng.queries == []
