"""The agent loop: the model answers or calls tools, the tools run, the model reads their
results; bounded by ``max_steps``. Then the price guard checks the answer.

A tool's failure goes back to the model as the tool's result (it can fix its arguments or tell
the customer), never up as a crash. Events stream out as they happen: text deltas (a sentence
that may state money only once the price guard passed it, see ``shared.sentence_gate``), and a
``Replace`` when the price guard had to change the answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from shared import log
from shared.exceptions import LLMError, LLMTimeoutError, ToolError
from shared.llm import (
    LLM,
    MIN_CALL_SECONDS,
    ChatMessage,
    Completion,
    LLMRequest,
    TextDelta,
    ToolCall,
    Usage,
)
from shared.models import FaqEntry
from shared.price_guard import PriceFacts, correction, safe_answer
from shared.sentence_gate import SentenceGate
from shared.tools.base import Tool, TurnContext


@dataclass(frozen=True)
class Replace:
    """The text sent so far is wrong: show this instead."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    ok: bool  # False: the model read an error back (bad arguments, a refusal, a tool's bug)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok}


@dataclass
class AgentResult:
    text: str
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    tools: list[ToolUse] = field(default_factory=list)
    guard_failures: int = 0  # 0: clean; 1: fixed by the rewrite; 2: replaced by the safe answer


AgentEvent = TextDelta | Replace | AgentResult


class Agent:
    def __init__(
        self,
        llm: LLM,
        tools: dict[str, Tool],
        *,
        max_steps: int = 4,
        # time.monotonic() by which every model call has ended (each call's LLMRequest.deadline)
        deadline: float | None = None,
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.max_steps = max_steps
        self.deadline = deadline

    def run(
        self,
        ctx: TurnContext,
        messages: Sequence[ChatMessage],
        context: Mapping[str, Any] = MappingProxyType({}),
        faq: Sequence[FaqEntry] = (),
    ) -> Iterator[AgentEvent]:
        """Stream the turn; the last event is the AgentResult. ``context`` goes with every model
        call (``LLMRequest.context``)."""
        conversation = list(messages)
        specs = [tool.spec for tool in self.tools.values()]
        result = AgentResult(text="")
        text = ""
        facts = facts_of(ctx, faq)
        gate = SentenceGate(facts)
        for step in range(self.max_steps + 1):
            if self._late():
                raise LLMTimeoutError("the turn's time budget is spent")
            # The last step offers no tools: the model must answer in words.
            offered = specs if step < self.max_steps else []
            completion: Completion | None = None
            request = LLMRequest(conversation, offered, context, self.deadline)
            for event in self.llm.stream(request):
                if isinstance(event, TextDelta):
                    # Each read waits at most the time left, but a stream that keeps trickling
                    # would not end by itself.
                    if (left := request.time_left()) is not None and left <= 0:
                        raise LLMTimeoutError("the turn's time budget is spent")
                    text += event.text
                    shown = gate.feed(event.text)
                    if shown:
                        yield TextDelta(shown)
                else:
                    completion = event
            assert completion is not None
            result.steps += 1
            result.usage += completion.usage
            if not completion.tool_calls:
                break
            conversation.append(
                ChatMessage("assistant", completion.text, tool_calls=completion.tool_calls)
            )
            for call in completion.tool_calls:
                output = run_tool(self.tools, ctx, call)
                result.tools.append(ToolUse(call.name, ok="error" not in output))
                conversation.append(
                    ChatMessage(
                        "tool",
                        json.dumps(output, ensure_ascii=False, default=str),
                        tool_call_id=call.id,
                        tool_name=call.name,
                    )
                )
        result.text = text.strip()
        yield from self._guard(ctx, conversation, context, facts(), gate, result)

    def _late(self) -> bool:
        """Too late for another model call: it could not answer before the deadline."""
        return self.deadline is not None and self.deadline - time.monotonic() < MIN_CALL_SECONDS

    def _guard(
        self,
        ctx: TurnContext,
        conversation: list[ChatMessage],
        context: Mapping[str, Any],
        facts: PriceFacts,
        gate: SentenceGate,
        result: AgentResult,
    ) -> Iterator[AgentEvent]:
        products = list(facts.products)
        problems = facts.problems(result.text)
        if not problems:
            held = gate.rest()
            if held:
                yield TextDelta(held)
        else:
            result.guard_failures = 1
            log.log_event("price_guard", outcome="rewrite", invented=len(problems))
            retry = [
                *conversation,
                ChatMessage("assistant", result.text),
                ChatMessage("user", correction(problems, products, ctx.lang)),
            ]
            text = ""
            if not self._late():  # late: straight to the safe answer
                with suppress(LLMError):
                    rewrite = self.llm.complete(LLMRequest(retry, (), context, self.deadline))
                    result.usage += rewrite.usage
                    text = rewrite.text.strip()
            if not text or facts.problems(text):
                result.guard_failures = 2
                log.log_event("price_guard", outcome="safe_answer")
                text = safe_answer(products, ctx.lang, ctx.shop.contact or ctx.shop.url)
            result.text = text
            yield Replace(text)
        yield result


def run_tool(tools: Mapping[str, Tool], ctx: TurnContext, call: ToolCall) -> dict[str, Any]:
    """What ``call`` returns as its result: the tool's output, or an error the model can read
    (the agent loop's tool calls, and a live voice call's, ``shared/voice.py``)."""
    tool = tools.get(call.name)
    if tool is None:
        return {"error": f"unknown tool {call.name!r}; use one of {', '.join(tools)}"}
    if "_raw" in call.arguments:  # the provider could not parse the model's arguments
        return {"error": "the arguments were not a valid JSON object; call the tool again"}
    try:
        return tool.run(ctx, tool.Args.model_validate(call.arguments))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return {"error": f"invalid arguments: {problems}"}
    except ToolError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a tool bug must not lose the customer's turn
        log.log_unexpected(f"tool:{call.name}", "", exc)
        return {"error": "the tool failed; tell the customer and offer the shop's contact"}


def facts_of(ctx: TurnContext, faq: Sequence[FaqEntry] = ()) -> Callable[[], PriceFacts]:
    """The turn's price facts as they stand: tools add products and an order as the turn goes."""
    built: dict[tuple[int, bool], PriceFacts] = {}

    def facts() -> PriceFacts:
        key = (len(ctx.products), ctx.lead is not None)
        if key not in built:
            lead = ctx.lead
            built[key] = PriceFacts(
                tuple(ctx.products.values()),
                ctx.shop.currency,
                (ctx.shop.offer, *(entry.answer for entry in faq)),
                ((lead.product_id, lead.total, lead.currency),) if lead else (),
            )
        return built[key]

    return facts
