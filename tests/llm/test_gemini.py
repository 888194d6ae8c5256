"""What only Gemini's wire shows; the contract suite (test_contract.py) covers the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.exceptions import EmbeddingsUnavailableError
from shared.llm import ChatMessage, LLMRequest, ToolSpec
from tests.fixtures.gemini_server import signature_of
from tests.llm.conftest import ProviderUnderTest
from tests.llm.script import Reply, vector_of

ROOT = Path(__file__).resolve().parents[2]
SEARCH = ToolSpec("search_products", "Search the catalogue.", {"type": "object", "properties": {}})
SYSTEM = ChatMessage("system", "You are the sales assistant of Maison Teranga.")
ASK = ChatMessage("user", "Des sandales ?")


def test_system_prompt_goes_to_system_instruction(gemini_provider: ProviderUnderTest) -> None:
    gemini_provider.script.then(Reply("Bonjour !"))
    gemini_provider.make().complete(LLMRequest([SYSTEM, ASK]))
    raw = gemini_provider.script.seen[0].raw
    assert raw["systemInstruction"]["parts"] == [{"text": SYSTEM.text}]
    assert [c["role"] for c in raw["contents"]] == ["user"]


def test_tool_results_are_function_responses_named_after_the_tool(
    gemini_provider: ProviderUnderTest,
) -> None:
    gemini_provider.script.then(
        Reply(tool_calls=[("search_products", {"query": "a"}), ("get_faq", {"topic": "b"})]),
        Reply("Voilà."),
    )
    llm = gemini_provider.make()
    calls = llm.complete(LLMRequest([SYSTEM, ASK], [SEARCH])).tool_calls
    history = [
        SYSTEM,
        ASK,
        ChatMessage("assistant", tool_calls=calls),
        ChatMessage("tool", '{"products": []}', tool_call_id=calls[0].id, tool_name=calls[0].name),
        ChatMessage(
            "tool", "Livraison en 48 h.", tool_call_id=calls[1].id, tool_name=calls[1].name
        ),
    ]
    llm.complete(LLMRequest(history, [SEARCH]))
    contents = gemini_provider.script.seen[1].raw["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]  # both results, one content
    assert [p["functionResponse"] for p in contents[2]["parts"]] == [
        {"name": "search_products", "response": {"products": []}},
        {"name": "get_faq", "response": {"result": "Livraison en 48 h."}},  # not a JSON object
    ]


def test_thought_signatures_go_back_with_their_calls(gemini_provider: ProviderUnderTest) -> None:
    gemini_provider.script.then(Reply(tool_calls=[("search_products", {})]), Reply("a"), Reply("b"))
    llm = gemini_provider.make()
    calls = llm.complete(LLMRequest([ASK], [SEARCH])).tool_calls
    history = [
        ASK,
        ChatMessage("assistant", tool_calls=calls),
        ChatMessage("tool", "{}", tool_call_id=calls[0].id, tool_name=calls[0].name),
    ]
    llm.complete(LLMRequest(history, [SEARCH]))
    # Another process: the signature is unknown.
    gemini_provider.make().complete(LLMRequest(history, [SEARCH]))

    sent = [seen.raw["contents"][1]["parts"][0] for seen in gemini_provider.script.seen[1:]]
    assert sent[0]["thoughtSignature"] == signature_of("search_products")
    assert sent[1]["thoughtSignature"] == "skip_thought_signature_validator"  # Google's placeholder


def test_module_import_does_not_load_the_sdk() -> None:
    probe = "import sys, shared.llm.gemini; print('google.genai' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_embeddings_go_through_batch_embed_contents(gemini_provider: ProviderUnderTest) -> None:
    gemini_provider.script.responder = lambda seen: Reply()
    texts = [f"produit {n}" for n in range(250)]
    assert gemini_provider.make().embed(texts) == [vector_of(text) for text in texts]
    seen = gemini_provider.script.seen
    assert [len(s.inputs) for s in seen] == [100, 100, 50]  # the API's limit per request
    assert {s.path.split("?")[0] for s in seen} == {"/v1beta/models/embed-test:batchEmbedContents"}
    first = seen[0].raw["requests"][0]
    assert first["model"] == "models/embed-test"
    assert first["content"]["parts"] == [{"text": "produit 0"}]


def test_no_embeddings_model_no_embeddings(gemini_provider: ProviderUnderTest) -> None:
    llm = gemini_provider.make(embed_model="")
    assert not llm.supports_embeddings
    with pytest.raises(EmbeddingsUnavailableError):
        llm.embed(["Sandales en cuir"])
    assert gemini_provider.script.seen == []
