"""Embeddings: stored per product and FAQ entry at import, searched with the turn's message
vector and fused with BM25, through the real OpenAI SDK against the loopback server."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.app import App
from shared.catalog.embeddings import (
    COLLECTION,
    Quantised,
    VectorIndex,
    embed_catalog,
    quantise,
    query_vector,
    vector_doc,
)
from shared.catalog.retrieval import build_index, fuse
from shared.models import Shop
from shared.store.base import encoded_size
from tests.fixtures.app import PRODUCTS, SHOP
from tests.fixtures.openai_server import OpenAIServer
from tests.llm.script import Fail, Reply, SeenRequest

SHOP_ID = str(SHOP["id"])
KAFTAN = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # "kaftan" and "Boubou brodé" are close
NEAR_KAFTAN = [0.9, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.fixture
def openai_app(make_app: Callable[..., App], openai_server: OpenAIServer) -> App:
    openai_server.script.reset()
    openai_server.script.vectors.update({"kaftan": KAFTAN, "boubou": NEAR_KAFTAN})
    return make_app(
        LLM_PROVIDER="openai",
        LLM_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-test",
        LLM_EMBED_MODEL="embed-test",
    )


def shop(app: App) -> Shop:
    return app.shops.get(SHOP_ID)


def catalog_version(app: App) -> int:
    doc = app.store.get(SHOP_ID, "shops", SHOP_ID)
    assert doc is not None
    return int(doc.data["catalog_version"])


def embed_requests(seen: list[SeenRequest]) -> list[SeenRequest]:
    return [request for request in seen if request.path.endswith("/embeddings")]


def seller(seen: SeenRequest) -> Reply:
    """Names the first product of the prompt's catalogue extract, or says there is none."""
    if seen.path.endswith("/embeddings"):
        return Reply()
    system = seen.messages[0]["text"]
    named = [p["title"] for p in PRODUCTS if str(p["title"]) in system]
    return Reply(f"We have the {named[0]}." if named else "We have nothing like that.")


def test_an_english_query_finds_a_french_product_that_bm25_misses(
    openai_app: App, openai_server: OpenAIServer
) -> None:
    script = openai_server.script
    script.responder = seller
    assert build_index(openai_app.store, SHOP_ID).search_products("Do you have a kaftan?") == []
    report = embed_catalog(openai_app.store, SHOP_ID, openai_app.llm_for(shop(openai_app)))
    assert (report.embedded, report.unchanged) == (5, 0)  # 3 products, 2 FAQ entries
    script.seen.clear()

    result = openai_app.chat.turn(shop(openai_app), None, "Do you have a kaftan?")

    assert result.reply == "We have the Boubou brodé."
    assert [p.id for p in result.products] == ["boubou-brode"]
    [query] = embed_requests(script.seen)  # one embedding per turn, of the message
    assert query.inputs == ["Do you have a kaftan?"]


def test_unchanged_items_are_not_embedded_again(
    openai_app: App, openai_server: OpenAIServer
) -> None:
    script = openai_server.script
    script.responder = seller
    store, llm = openai_app.store, openai_app.llm_for(shop(openai_app))
    embed_catalog(store, SHOP_ID, llm)
    version = catalog_version(openai_app)
    script.seen.clear()

    again = embed_catalog(store, SHOP_ID, llm)
    assert (again.embedded, again.unchanged, again.removed) == (0, 5, 0)
    assert script.embedded() == []
    assert catalog_version(openai_app) == version

    boubou = {**PRODUCTS[1], "description": "Grand boubou en bazin, brodé à Thiès."}
    store.put(SHOP_ID, "products", "boubou-brode", boubou)
    store.delete(SHOP_ID, "products", "sac-raphia")
    calls: list[tuple[int, int]] = []
    changed = embed_catalog(store, SHOP_ID, llm, progress=lambda *c: calls.append(c))
    assert (changed.embedded, changed.unchanged, changed.removed) == (1, 3, 1)
    assert calls == [(1, 1)]  # what was embedded, written
    [text] = script.embedded()
    assert "brodé à Thiès" in text
    assert store.get(SHOP_ID, COLLECTION, "product:sac-raphia") is None
    # Warm instances load the new vectors with the next index.
    assert catalog_version(openai_app) > version


def test_a_new_length_re_embeds_everything_once_and_queries_at_that_length(
    openai_app: App, openai_server: OpenAIServer, make_app: Callable[..., App]
) -> None:
    script = openai_server.script
    script.responder = seller
    embed_catalog(openai_app.store, SHOP_ID, openai_app.llm_for(shop(openai_app)))  # 8 numbers
    short_app = make_app(
        LLM_PROVIDER="openai",
        LLM_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-test",
        LLM_EMBED_MODEL="embed-test",
        LLM_EMBED_DIMENSIONS="4",
    )
    store, short = short_app.store, short_app.llm_for(shop(short_app))
    script.seen.clear()
    # Until the catalogue is embedded again, no vector is asked: 4 numbers do not compare with
    # the stored 8.
    index = build_index(store, SHOP_ID)
    assert query_vector(short, index.embed_model, index.embed_dimensions, "kaftan", SHOP_ID) is None
    assert embed_requests(script.seen) == []

    report = embed_catalog(store, SHOP_ID, short)
    assert (report.embedded, report.unchanged) == (5, 0)
    assert {request.raw["dimensions"] for request in embed_requests(script.seen)} == {4}
    assert {doc.data["dims"] for doc in store.scan(SHOP_ID, COLLECTION)} == {4}
    again = embed_catalog(store, SHOP_ID, short)
    assert (again.embedded, again.unchanged) == (0, 5)

    index = build_index(store, SHOP_ID)
    vector = query_vector(short, index.embed_model, index.embed_dimensions, "kaftan", SHOP_ID)
    assert vector is not None and len(vector) == 4
    script.seen.clear()
    result = short_app.chat.turn(shop(short_app), None, "Do you have a kaftan?")
    assert [p.id for p in result.products] == ["boubou-brode"]
    [query] = embed_requests(script.seen)
    assert query.raw["dimensions"] == 4
    # The model's own length no longer compares with the stored vectors: no vector asked.
    own = openai_app.llm_for(shop(openai_app))
    assert query_vector(own, index.embed_model, index.embed_dimensions, "kaftan", SHOP_ID) is None


def test_a_failed_query_embedding_falls_back_to_bm25(
    openai_app: App, openai_server: OpenAIServer, logs: Any
) -> None:
    script = openai_server.script
    script.responder = seller
    embed_catalog(openai_app.store, SHOP_ID, openai_app.llm_for(shop(openai_app)))

    def embeddings_down(seen: SeenRequest) -> Reply | Fail:
        gone = Fail(400, "embeddings model gone")
        return gone if seen.path.endswith("/embeddings") else seller(seen)

    script.responder = embeddings_down
    result = openai_app.chat.turn(shop(openai_app), None, "Combien coûte le boubou brodé ?")

    assert result.reply == "We have the Boubou brodé."
    assert not result.conversation.pending_retry
    assert len(embed_requests(script.seen)) >= 1
    assert "query_embedding_failed" in logs.getvalue()
    assert "boubou" not in logs.getvalue().casefold()  # no message text in the logs


def test_a_shop_without_vectors_asks_for_none(openai_app: App, openai_server: OpenAIServer) -> None:
    """Before any embedding (or with a provider that has none) a turn costs no embed call."""
    openai_server.script.responder = seller
    result = openai_app.chat.turn(shop(openai_app), None, "Combien coûte le boubou brodé ?")
    assert result.reply == "We have the Boubou brodé."
    assert embed_requests(openai_server.script.seen) == []


@pytest.mark.parametrize("dims", [256, 768, 1536, 3072])
def test_the_packed_index_ranks_as_exact_cosine(dims: int) -> None:
    rng = random.Random(dims)
    vectors = [[rng.gauss(0, 1) for _ in range(dims)] for _ in range(200)]
    vectors[18] = [x + rng.gauss(0, 1) for x in vectors[17]]  # 17's neighbour
    query = [x + rng.gauss(0, 0.5) for x in vectors[17]]  # close to 17, nearer than 18

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    index = VectorIndex([str(i) for i in range(200)], [quantise(v) for v in vectors])
    found = index.search(query, 3)
    assert [i for i, _ in found[:2]] == ["17", "18"]
    for i, similarity in found:
        assert similarity == pytest.approx(cosine(query, vectors[int(i)]), abs=0.02)
    assert index.search(query, 3, keep=lambda i: i != "17")[0][0] == "18"
    assert index.search([1.0] * (dims + 1), 3) == []  # another model's vector: no match


def test_unrelated_vectors_stay_out() -> None:
    index = VectorIndex(["a", "b"], [quantise([1.0, 0.0]), quantise([0.0, 1.0])])
    assert index.search([1.0, 0.0], 5) == [("a", pytest.approx(1.0, abs=0.01))]
    assert VectorIndex(["z"], [Quantised(bytes(2), 0.0)]).search([1.0, 0.0], 5) == []


def test_fusion_rewards_what_both_rankings_found() -> None:
    lexical = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    semantic = [("c", 0.9), ("d", 0.8)]
    assert [item for item, _ in fuse([lexical, semantic], 3)] == ["c", "a", "b"]


def test_a_vector_document_is_small() -> None:
    # 3,072 dimensions (text-embedding-3-large, gemini-embedding-001): about 4 KB in the store,
    # a hundredth of DynamoDB's 400 KB item limit.
    doc = vector_doc("product", "p" * 200, "0" * 32, "text-embedding-3-large", [0.1] * 3072)
    assert encoded_size(doc) < 5_000


def test_the_cli_embeds_after_an_import_and_on_demand(
    openai_app: App, openai_server: OpenAIServer, capsys: Any, tmp_path: Path
) -> None:
    from shared.cli import main

    script = openai_server.script
    script.responder = seller
    assert main(["embed-catalog"]) == 0
    assert "embeddings (embed-test): 5 embedded, 0 unchanged" in capsys.readouterr().out

    faq = tmp_path / "faq.json"
    faq.write_text(json.dumps([{"question": "Do you ship abroad?", "answer": "Yes, by DHL."}]))
    assert main(["import-faq", str(faq)]) == 0
    assert "1 embedded, 5 unchanged" in capsys.readouterr().out

    script.responder = lambda seen: Fail(400, "no such model")
    faq.write_text(json.dumps([{"question": "Do you gift-wrap?", "answer": "Yes."}]))
    assert main(["import-faq", str(faq)]) == 0  # imported; searched by words until embedded
    assert "embed-catalog --shop teranga" in capsys.readouterr().err
    assert main(["embed-catalog"]) == 2
