"""The agent loop and the price guard, with a scripted model over the real tools."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.agent import Agent, AgentResult, Replace, ToolUse
from shared.app import App
from shared.exceptions import LLMTimeoutError
from shared.llm import ChatMessage, Completion, LLMRequest, TextDelta
from shared.models import Conversation
from shared.tools import TOOLS
from shared.tools.base import TurnContext
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script, SeenRequest

MESSAGES = [ChatMessage("system", "You sell."), ChatMessage("user", "Des sandales ?")]


def _context(app: App) -> TurnContext:
    shop = app.shops.get("teranga")
    now = time.time()
    conversation = Conversation(id="c" * 32, created_at=now, updated_at=now)
    app.store.put(shop.id, "conversations", conversation.id, conversation.to_doc())
    return TurnContext(shop, app.store, app.chat.catalog.get(shop), conversation, "web", "fr")


def _run(
    app: App, script: Script, max_steps: int = 4
) -> tuple[list[object], AgentResult, TurnContext]:
    ctx = _context(app)
    events = list(
        Agent(ScriptedLLM(script), TOOLS, max_steps=max_steps).run(ctx, MESSAGES)
    )
    result = events[-1]
    assert isinstance(result, AgentResult)
    return events, result, ctx


def test_tools_run_and_their_results_reach_the_model(app: App) -> None:
    script = Script().then(
        Reply(tool_calls=[("search_products", {"query": "sandales"})]),
        Reply("Les **Sandales en cuir** sont à partir de 15 000 FCFA."),
    )
    events, result, ctx = _run(app, script)
    assert result.text == "Les **Sandales en cuir** sont à partir de 15 000 FCFA."
    assert result.tools == [ToolUse("search_products", ok=True)]
    assert result.steps == 2
    assert result.guard_failures == 0
    tool_message = script.seen[1].messages[-1]
    assert tool_message["role"] == "tool"
    assert "sandales-cuir" in tool_message["text"]
    assert "sandales-cuir" in ctx.products
    assert [e.text for e in events if isinstance(e, TextDelta)]  # streamed


def test_tool_errors_go_back_to_the_model(app: App) -> None:
    script = Script().then(
        Reply(
            tool_calls=[
                ("no_such_tool", {}),
                ("get_product", {"id": "nope"}),
                ("search_products", {}),
            ]
        ),
        Reply("Désolé."),
    )
    _, result, _ = _run(app, script)
    assert result.text == "Désolé."
    results = [m["text"] for m in script.seen[1].messages if m["role"] == "tool"]
    assert "unknown tool" in results[0]
    assert "error" in results[1]
    assert "invalid arguments" in results[2] and "query" in results[2]
    # Each call is known to have failed (the turn's message_out event says so).
    assert [(use.name, use.ok) for use in result.tools] == [
        ("no_such_tool", False),
        ("get_product", False),
        ("search_products", False),
    ]


def test_the_loop_is_bounded(app: App) -> None:
    script = Script()
    script.responder = lambda seen: (
        Reply(tool_calls=[("search_products", {"query": "sac"})]) if seen.tools else Reply("Voilà.")
    )
    _, result, _ = _run(app, script, max_steps=3)
    assert result.steps == 4  # three steps with tools, then one without
    assert script.seen[-1].tools == []
    assert result.text == "Voilà."


def test_an_invented_price_is_rewritten_once(app: App) -> None:
    script = Script().then(
        Reply(tool_calls=[("search_products", {"query": "sandales"})]),
        Reply("Les sandales sont à 9 900 FCFA seulement !"),
        Reply("Les sandales sont à 15 000 FCFA."),
    )
    events, result, _ = _run(app, script)
    assert result.guard_failures == 1
    assert result.text == "Les sandales sont à 15 000 FCFA."
    assert [e.text for e in events if isinstance(e, Replace)] == [
        "Les sandales sont à 15 000 FCFA."
    ]
    correction = script.seen[-1].messages[-1]["text"]
    assert "9 900 FCFA" in correction and "15\u202f000 FCFA" in correction
    assert script.seen[-1].tools == []


def test_a_model_that_keeps_inventing_gets_the_safe_answer(app: App) -> None:
    liar = Script()

    def lie(seen: SeenRequest) -> Reply:
        if seen.tools and not any(m["role"] == "tool" for m in seen.messages):
            return Reply(tool_calls=[("search_products", {"query": "sandales"})])
        return Reply("Prix spécial : 5 000 FCFA !")

    liar.responder = lie
    _, result, _ = _run(app, liar)
    assert result.guard_failures == 2
    assert "Prix spécial" not in result.text
    assert "Sandales en cuir" in result.text
    assert "15\u202f000 FCFA" in result.text


def test_a_spent_turn_budget_stops_the_loop(app: App) -> None:
    script = Script().then(Reply("never asked"))
    agent = Agent(ScriptedLLM(script), TOOLS, deadline=time.monotonic() - 1)
    with pytest.raises(LLMTimeoutError):
        list(agent.run(_context(app), MESSAGES))
    assert script.seen == []


def test_no_model_call_starts_with_under_half_a_second_left(app: App) -> None:
    script = Script().then(Reply("could not finish in time"))
    agent = Agent(ScriptedLLM(script), TOOLS, deadline=time.monotonic() + 0.3)
    with pytest.raises(LLMTimeoutError):
        list(agent.run(_context(app), MESSAGES))
    assert script.seen == []


class TricklingLLM(ScriptedLLM):
    """Streams a word every 0.1 s for 3 s: each read is quick, the whole is not."""

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        for _ in range(30):
            time.sleep(0.1)
            yield TextDelta("bla ")
        yield Completion("bla " * 30)


def test_a_stream_still_going_at_the_deadline_is_cut(app: App) -> None:
    started = time.monotonic()
    agent = Agent(TricklingLLM(), TOOLS, deadline=started + 1.0)
    with pytest.raises(LLMTimeoutError):
        list(agent.run(_context(app), MESSAGES))
    assert time.monotonic() - started < 1.5
