"""The LLM port contract, for every wire provider, through the real SDK over loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.exceptions import (
    LLMRateLimitedError,
    LLMRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from shared.llm import (
    ChatMessage,
    Completion,
    Image,
    LLMRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from tests.llm.conftest import ProviderUnderTest
from tests.llm.script import Fail, Reply, Stall, vector_of
from tests.loopback import free_port

SEARCH = ToolSpec(
    name="search_products",
    description="Search the shop's catalogue.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what the customer looks for"},
            "max_price": {"type": "number"},
        },
        "required": ["query"],
    },
)
CONVERSATION = [
    ChatMessage("system", "You are the sales assistant of Maison Teranga."),
    ChatMessage("user", "Bonjour, avez-vous des sandales ?"),
]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d605e40000000049454e44ae426082"
)


def test_text_completion_with_usage(provider: ProviderUnderTest) -> None:
    provider.script.then(
        Reply("Bonjour ! Oui, nous en avons.", prompt_tokens=42, completion_tokens=9)
    )
    completion = provider.make().complete(LLMRequest(CONVERSATION))
    assert completion.text == "Bonjour ! Oui, nous en avons."
    assert completion.tool_calls == ()
    assert completion.usage == Usage(42, 9)
    assert completion.model
    seen = provider.script.seen[0]
    assert seen.stream is False
    assert [(m["role"], m["text"]) for m in seen.messages] == [
        ("system", "You are the sales assistant of Maison Teranga."),
        ("user", "Bonjour, avez-vous des sandales ?"),
    ]
    assert provider.api_key in " ".join(seen.headers.values())


def test_model_is_sent(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply("ok"))
    provider.make(model="model-under-test").complete(LLMRequest(CONVERSATION))
    assert provider.script.seen[0].model == "model-under-test"


def test_tool_call_round_trip(provider: ProviderUnderTest) -> None:
    llm = provider.make()
    provider.script.then(
        Reply(tool_calls=[("search_products", {"query": "sandales", "max_price": 20000})]),
        Reply("Nous avons des sandales en cuir à 15 000 FCFA."),
    )
    first = llm.complete(LLMRequest(CONVERSATION, [SEARCH]))
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert call.name == "search_products"
    assert call.arguments == {"query": "sandales", "max_price": 20000}
    assert call.id
    assert provider.script.seen[0].tools == ["search_products"]

    follow_up = [
        *CONVERSATION,
        ChatMessage("assistant", first.text, tool_calls=first.tool_calls),
        ChatMessage(
            "tool",
            '{"products": [{"id": "sandales-cuir", "price": 15000}]}',
            tool_call_id=call.id,
            tool_name=call.name,
        ),
    ]
    second = llm.complete(LLMRequest(follow_up, [SEARCH]))
    assert second.text == "Nous avons des sandales en cuir à 15 000 FCFA."
    sent = provider.script.seen[1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"] == ["search_products"]
    assert "sandales-cuir" in sent[3]["text"]


def test_streaming_text(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply("Voici nos sandales en cuir, faites main.", chunks=4))
    events = list(provider.make().stream(LLMRequest(CONVERSATION)))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, Completion)
    assert len(deltas) >= 2
    assert (
        "".join(d.text for d in deltas) == final.text == "Voici nos sandales en cuir, faites main."
    )
    assert final.usage == Usage(11, 7)
    assert provider.script.seen[0].stream is True


def test_streaming_tool_call(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply(tool_calls=[("search_products", {"query": "boubou"})]))
    events = list(provider.make().stream(LLMRequest(CONVERSATION, [SEARCH])))
    final = events[-1]
    assert isinstance(final, Completion)
    assert [(c.name, c.arguments) for c in final.tool_calls] == [
        ("search_products", {"query": "boubou"})
    ]


def test_images_reach_the_model(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply("C'est un boubou brodé."))
    llm = provider.make()
    assert llm.supports_images
    llm.complete(
        LLMRequest([ChatMessage("user", "Vous avez ceci ?", images=(Image("image/png", PNG),))])
    )
    assert provider.script.seen[0].messages[0]["images"] == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, LLMRateLimitedError),
        (500, LLMUnavailableError),
        (503, LLMUnavailableError),
        (400, LLMRequestError),
        (401, LLMRequestError),
    ],
)
def test_errors_are_translated_and_not_retried_by_the_sdk(
    provider: ProviderUnderTest, status: int, error: type[Exception]
) -> None:
    provider.script.then(Fail(status), Reply("too late"))
    with pytest.raises(error):
        provider.make().complete(LLMRequest(CONVERSATION))
    assert len(provider.script.seen) == 1  # retries are ours (with fallbacks), not the SDK's


def test_streaming_errors_are_translated(provider: ProviderUnderTest) -> None:
    provider.script.then(Fail(429))
    with pytest.raises(LLMRateLimitedError):
        list(provider.make().stream(LLMRequest(CONVERSATION)))


def test_timeout(provider: ProviderUnderTest) -> None:
    provider.script.then(Stall(3.0))
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        provider.make(timeout=0.5).complete(LLMRequest(CONVERSATION))
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("streaming", [False, True])
def test_a_call_ends_at_its_deadline_before_its_timeout(
    provider: ProviderUnderTest, streaming: bool
) -> None:
    provider.script.then(Stall(3.0))
    llm = provider.make(timeout=15)
    started = time.monotonic()
    request = LLMRequest(CONVERSATION, deadline=started + 0.5)
    with pytest.raises(LLMTimeoutError):
        list(llm.stream(request)) if streaming else llm.complete(request)
    assert time.monotonic() - started < 1.5


def test_a_call_past_its_deadline_is_not_sent(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply("too late"))
    with pytest.raises(LLMTimeoutError):
        provider.make().complete(LLMRequest(CONVERSATION, deadline=time.monotonic() - 0.1))
    assert provider.script.seen == []


def test_unreachable_provider(provider: ProviderUnderTest) -> None:
    port = free_port()  # nothing listens there
    base_url = provider.base_url.replace(provider.base_url.split("/")[2], f"127.0.0.1:{port}")
    with pytest.raises(LLMUnavailableError):
        provider.make(base_url=base_url, timeout=2).complete(LLMRequest(CONVERSATION))


def test_tool_call_ids_are_unique(provider: ProviderUnderTest) -> None:
    provider.script.then(
        Reply(tool_calls=[("search_products", {"query": "a"}), ("search_products", {"query": "b"})])
    )
    calls = provider.make().complete(LLMRequest(CONVERSATION, [SEARCH])).tool_calls
    assert [c.arguments["query"] for c in calls] == ["a", "b"]
    assert len({c.id for c in calls}) == 2
    assert all(isinstance(c, ToolCall) for c in calls)


def test_embeddings(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply())
    llm = provider.make(embed_model="embed-under-test")
    assert llm.supports_embeddings and llm.embed_model == "embed-under-test"
    texts = ["Sandales en cuir", "Boubou brodé"]
    assert llm.embed(texts) == [vector_of(text) for text in texts]
    [seen] = provider.script.seen
    assert seen.inputs == texts
    assert seen.model.removeprefix("models/") == "embed-under-test"
    assert provider.api_key in " ".join(seen.headers.values())


def test_embeddings_of_an_asked_length(provider: ProviderUnderTest) -> None:
    provider.script.then(Reply(), Reply())
    texts = ["Sandales en cuir", "Boubou brodé"]
    assert provider.make(embed_dimensions=3).embed(texts) == [vector_of(t)[:3] for t in texts]
    assert provider.make().embed(texts) == [vector_of(t) for t in texts]  # the model's own
    asked, own = provider.script.seen

    def lengths(raw: dict[str, Any]) -> set[int | None]:
        """The length each text was asked for: OpenAI's ``dimensions``, Gemini's
        ``outputDimensionality`` on each request of the batch."""
        requests = raw.get("requests", [raw])
        return {r.get("dimensions", r.get("outputDimensionality")) for r in requests}

    assert lengths(asked.raw) == {3}
    assert lengths(own.raw) == {None}  # not sent: not every compatible server knows it


def test_embeddings_are_batched_in_order(provider: ProviderUnderTest) -> None:
    provider.script.responder = lambda seen: Reply()
    texts = [f"produit {n}" for n in range(300)]
    assert provider.make().embed(texts) == [vector_of(text) for text in texts]
    batches = [seen.inputs for seen in provider.script.seen]
    assert len(batches) >= 2  # OpenAI's and Gemini's limits are below 300 a request here
    assert [text for batch in batches for text in batch] == texts


def test_nothing_to_embed_sends_nothing(provider: ProviderUnderTest) -> None:
    assert provider.make().embed([]) == []
    assert provider.script.seen == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, LLMRateLimitedError), (503, LLMUnavailableError), (400, LLMRequestError)],
)
def test_embedding_errors_are_translated(
    provider: ProviderUnderTest, status: int, error: type[Exception]
) -> None:
    provider.script.then(Fail(status), Reply())
    with pytest.raises(error):
        provider.make().embed(["Sandales en cuir"])
    assert len(provider.script.seen) == 1

