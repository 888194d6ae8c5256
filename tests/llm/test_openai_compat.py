"""What the LLM contract cannot express about the OpenAI-compatible providers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from shared.exceptions import EmbeddingsUnavailableError, LLMRequestError
from shared.llm import (
    PROVIDERS,
    ChatMessage,
    Completion,
    LLMConfig,
    LLMRequest,
    TextDelta,
    Usage,
    open_llm,
)
from shared.llm.openai_compat import OpenAICompatLLM
from tests.fixtures.openai_server import OpenAIServer
from tests.llm.conftest import ProviderUnderTest
from tests.llm.script import Fail, Reply, vector_of

ROOT = Path(__file__).resolve().parents[2]
COMPATIBLE = sorted(
    name for name, p in PROVIDERS.items() if p.target.endswith(":" + OpenAICompatLLM.__name__)
)
BROKEN_ARGUMENTS = '{"query": "sandales"'  # cut short, as a model sometimes does
HELLO = [ChatMessage("user", "Bonjour")]


def test_every_compatible_provider_is_covered() -> None:
    assert set(COMPATIBLE) == {"openai", "deepseek", "qwen", "mistral", "ollama", "zai"}


@pytest.mark.parametrize("name", COMPATIBLE)
def test_opens_with_its_default_base_url_and_model(name: str) -> None:
    llm = open_llm(LLMConfig(name))  # no key: Ollama needs none, the others fail on first call
    assert isinstance(llm, OpenAICompatLLM)
    assert llm.provider == name
    assert llm.model == PROVIDERS[name].default_model
    assert str(llm._client.base_url).rstrip("/") == PROVIDERS[name].base_url
    assert llm._client.max_retries == 0


def test_configured_base_url_wins() -> None:
    llm = open_llm(LLMConfig("deepseek", base_url="http://127.0.0.1:8000/v1", timeout=7))
    assert isinstance(llm, OpenAICompatLLM)
    assert str(llm._client.base_url) == "http://127.0.0.1:8000/v1/"
    assert llm._client.timeout == 7


def _llm_answering(body: str, content_type: str) -> OpenAICompatLLM:
    """An LLM whose injected SDK client gets ``body`` back for any request."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body.encode(), headers={"content-type": content_type})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://model.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
    )
    return OpenAICompatLLM(
        provider="openai", model="gpt-test", api_key=None, base_url=None, timeout=5, client=client
    )


def test_invalid_tool_arguments_are_kept_raw() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "search_products", "arguments": BROKEN_ARGUMENTS},
                        }
                    ],
                },
            }
        ],
    }
    completion = _llm_answering(json.dumps(body), "application/json").complete(LLMRequest(HELLO))
    assert completion.text == ""
    assert completion.tool_calls[0].arguments == {"_raw": BROKEN_ARGUMENTS}


def _sse(*deltas: dict[str, Any]) -> str:
    """A streamed answer made of these deltas, with no usage chunk."""
    chunks = (
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-test",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        for delta in deltas
    )
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def _call(
    index: int | None, call_id: str | None, name: str | None, arguments: str
) -> dict[str, Any]:
    piece: dict[str, Any] = {"function": {"name": name, "arguments": arguments}}
    if index is not None:
        piece["index"] = index
    if call_id is not None:
        piece |= {"id": call_id, "type": "function"}
    return {"tool_calls": [piece]}


def test_invalid_streamed_tool_arguments_are_kept_raw() -> None:
    body = _sse({"role": "assistant"}, _call(0, "call_1", "search_products", BROKEN_ARGUMENTS))
    final = list(_llm_answering(body, "text/event-stream").stream(LLMRequest(HELLO)))[-1]
    assert isinstance(final, Completion)
    assert final.tool_calls[0].arguments == {"_raw": BROKEN_ARGUMENTS}
    assert final.usage == Usage(0, 0)  # this server sent no usage


@pytest.mark.parametrize("index", [0, None])
def test_streamed_calls_that_share_an_index_stay_apart(index: int | None) -> None:
    # Some compatible servers number every call 0, or not at all; their ids tell them apart.
    body = _sse(
        _call(index, "call_a", "search_products", '{"query": '),
        _call(index, None, None, '"sandales"}'),
        _call(index, "call_b", "search_products", '{"query": "boubou"}'),
    )
    final = list(_llm_answering(body, "text/event-stream").stream(LLMRequest(HELLO)))[-1]
    assert isinstance(final, Completion)
    assert [(c.id, c.arguments) for c in final.tool_calls] == [
        ("call_a", {"query": "sandales"}),
        ("call_b", {"query": "boubou"}),
    ]


def test_mistral_streams_without_stream_options(openai_server: OpenAIServer) -> None:
    # Mistral answers 422 to ``stream_options`` (and sends the usage unasked).
    openai_server.script.reset()
    openai_server.script.then(Reply("Bonjour !"))
    llm = open_llm(LLMConfig("mistral", api_key="k", base_url=openai_server.base_url))
    events = llm.stream(LLMRequest(HELLO))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Bonjour !"
    assert "stream_options" not in openai_server.script.seen[0].raw


def test_errors_carry_neither_the_provider_message_nor_the_key(
    openai_provider: ProviderUnderTest,
) -> None:
    secret = f"Incorrect API key provided: {openai_provider.api_key}. You said: Bonjour"
    openai_provider.script.then(Fail(401, secret))
    with pytest.raises(LLMRequestError) as caught:
        openai_provider.make().complete(LLMRequest(HELLO))
    message = str(caught.value)
    assert "401" in message
    assert "invalid_api_key" in message  # the provider's error code is kept: it is an identifier
    assert openai_provider.api_key not in message
    assert "Bonjour" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__  # the SDK error, which quotes it, is not chained


def test_a_provider_without_embeddings_says_so(openai_server: OpenAIServer) -> None:
    openai_server.script.reset()
    llm = open_llm(LLMConfig("deepseek", api_key="k", base_url=openai_server.base_url))
    assert not llm.supports_embeddings  # DeepSeek has no embeddings API
    with pytest.raises(EmbeddingsUnavailableError):
        llm.embed(["Sandales en cuir"])
    assert openai_server.script.seen == []


def test_qwen_embeds_ten_texts_a_request_as_floats(openai_server: OpenAIServer) -> None:
    openai_server.script.reset()
    openai_server.script.responder = lambda seen: Reply()
    llm = open_llm(LLMConfig("qwen", api_key="k", base_url=openai_server.base_url))
    texts = [f"produit {n}" for n in range(25)]
    assert llm.embed(texts) == [vector_of(text) for text in texts]
    seen = openai_server.script.seen
    assert [len(s.inputs) for s in seen] == [10, 10, 5]  # DashScope's limit
    assert {s.model for s in seen} == {"text-embedding-v3"}  # the provider's default
    assert {s.raw["encoding_format"] for s in seen} == {"float"}  # compatible servers all take it


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = "import sys, shared.llm.openai_compat; sys.exit('openai' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)
