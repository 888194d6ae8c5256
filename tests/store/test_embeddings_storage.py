"""Embeddings in every store backend: written at import, read back with the index, searched."""

from __future__ import annotations

from shared.catalog.embeddings import COLLECTION, embed_catalog
from shared.catalog.retrieval import build_index
from shared.store import Store
from shared.store.base import encoded_size
from tests.fixtures.app import FAQ, PRODUCTS, SHOP
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

SHOP_ID = str(SHOP["id"])
DIMS = 3072  # the largest common model (text-embedding-3-large, gemini-embedding-001)


def axis(i: int) -> list[float]:
    return [1.0 if d == i else 0.001 * (d % 7) for d in range(DIMS)]


def test_vectors_round_trip_and_fit_the_item_limit(store: Store) -> None:
    store.put(SHOP_ID, "shops", SHOP_ID, {**SHOP, "catalog_version": 1})
    for product in PRODUCTS:
        store.put(SHOP_ID, "products", str(product["id"]), product)
    for entry in FAQ:
        store.put(SHOP_ID, "faq", str(entry["id"]), entry)
    script = Script(responder=lambda _: Reply())
    script.vectors.update({"kaftan": axis(1), "boubou": axis(1), "": axis(2)})
    llm = ScriptedLLM(script, embed_model="embed-large")

    report = embed_catalog(store, SHOP_ID, llm)

    assert report.embedded == len(PRODUCTS) + len(FAQ)
    docs = list(store.scan(SHOP_ID, COLLECTION))
    assert len(docs) == report.embedded
    assert {doc.data["dims"] for doc in docs} == {DIMS}
    # About 4 KB each: a hundredth of DynamoDB's 400 KB item limit.
    assert max(encoded_size(doc.data) for doc in docs) < store.max_document_bytes // 50
    index = build_index(store, SHOP_ID)
    assert index.embed_model == "embed-large"
    [(product, _)] = index.search_products("kaftan", 1, query_vector=axis(1))
    assert product.id == "boubou-brode"
    assert index.search_products("kaftan", 1) == []  # the words alone find nothing
