"""Embeddings of a shop's products and FAQ entries, for retrieval across languages.

``embed_catalog`` embeds every product and FAQ entry whose text changed since it was last
embedded (each vector is stored with a hash of the text, the model that made it and the length
asked of it, ``LLM_EMBED_DIMENSIONS``, so a re-import re-embeds only what changed, and a change
of model or length re-embeds everything once) and removes the vectors of what is gone. Vectors
live in the shop's ``embeddings`` collection, one document per item (``product:{id}``,
``faq:{id}``), quantised to int8 with one scale per vector: 1 byte a dimension, about 2 KB in
base64 for 1,536 dimensions, far below every store's item limit (DynamoDB's 400 KB), and quick
to read back.

``VectorIndex`` ranks every stored vector against a query in a few big-integer operations per
dimension instead of one Python operation per number (see its docstring): 10,000 vectors of
1,536 dimensions in tens of milliseconds without numpy. A turn embeds its message once
(``query_vector``), under a short time limit; on any failure the turn searches with BM25 alone.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import math
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any, Literal

from shared.exceptions import EmbeddingsUnavailableError, LLMError
from shared.llm import LLM
from shared.log import log_event, log_warning
from shared.models import FaqEntry, Product
from shared.progress import Progress
from shared.store import Store

COLLECTION = "embeddings"
Kind = Literal["product", "faq"]
EMBED_BATCH = 64  # texts per embed call at import: progress is written after each batch
# Vector search covers catalogues up to this many products (and FAQ entries): the packed index
# takes 4 bytes per vector and dimension (61 MB at 10,000 x 1,536). A larger catalogue is
# searched with BM25 alone.
MAX_VECTORS = 10_000
MAX_DIMENSIONS = 8_192  # the 32-bit fields of VectorIndex hold sums of up to 66,000 dimensions
# A turn waits this long for its message's vector (out of its time budget), then goes on with
# BM25 alone: the customer should not wait on a slow embeddings endpoint.
QUERY_TIMEOUT = 2.0
# Below this cosine similarity a vector match is noise: it does not enter the fusion, so a
# message about nothing in the catalogue ("bonjour") still finds nothing.
MIN_SIMILARITY = 0.2
_INT8_PEAK = 127
_query_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-embed")


def product_text(product: Product) -> str:
    """What a product's vector stands for: its title, kind, tags, options and description."""
    options = sorted({value for v in product.variants for value in v.options.values()})
    parts = [product.title, product.category, ", ".join(product.tags), ", ".join(options)]
    return "\n".join(p for p in [*parts, product.description[:1000]] if p)


def faq_text(entry: FaqEntry) -> str:
    return f"{entry.question}\n{entry.answer}"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def doc_id(kind: Kind, item_id: str) -> str:
    return f"{kind}:{item_id}"


# --- vectors as stored -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantised:
    """A unit vector as int8 values times ``scale``: ``values[i] * scale`` ~ the i-th number."""

    values: bytes  # signed bytes (two's complement)
    scale: float


def quantise(vector: Sequence[float]) -> Quantised:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    peak = max((abs(x) for x in vector), default=0.0)
    if not norm or not peak:
        return Quantised(bytes(len(vector)), 0.0)
    factor = _INT8_PEAK / peak
    signed = array("b", (round(x * factor) for x in vector))
    return Quantised(signed.tobytes(), peak / norm / _INT8_PEAK)


def vector_doc(
    kind: Kind,
    item_id: str,
    text_hash: str,
    model: str,
    vector: Sequence[float],
    asked_dimensions: int | None = None,
) -> dict[str, Any]:
    """``asked_dimensions``: the length the model was asked for (None: its own)."""
    quantised = quantise(vector)
    return {
        "kind": kind,
        "ref": item_id,
        "hash": text_hash,
        "model": model,
        "embed_dimensions": asked_dimensions,  # vectors made before the setting: None
        "dims": len(vector),
        "scale": quantised.scale,
        "int8": base64.b64encode(quantised.values).decode(),
    }


# --- the index a turn searches -----------------------------------------------------------------


class VectorIndex:
    """Cosine similarity of a query with every stored vector, in pure Python.

    One Python multiplication per number would take over a second at 10,000 x 1,536. Instead,
    dimension d of every vector is packed into one big integer, a 32-bit field per vector (the
    int8 value plus 128, so each field is non-negative). ``sum(q[d] * column[d])`` over the
    dimensions then computes every vector's dot product with the query at once, each in its own
    field: the big-integer arithmetic runs in C, one pass per dimension. A field holds at most
    127 * 255 * dimensions, shifted by that much to be non-negative: no field overflows into
    the next one below MAX_DIMENSIONS.
    """

    def __init__(self, ids: Sequence[str], vectors: Sequence[Quantised]) -> None:
        self.ids = list(ids)
        self.dims = len(vectors[0].values) if vectors else 0
        self._scales = array("d", (v.scale for v in vectors))
        count = len(self.ids)
        # Every vector's bytes end to end, shifted from int8 to uint8 (x ^ 0x80 == x + 128).
        flip = bytes(b ^ 0x80 for b in range(256))
        rows = b"".join(v.values for v in vectors).translate(flip)
        field = bytearray(4 * count)
        self._columns: list[int] = []
        for d in range(self.dims):
            field[0::4] = rows[d :: self.dims]  # little-endian: the low byte of each field
            self._columns.append(int.from_bytes(field, "little"))
        self._bound = _INT8_PEAK * 255 * self.dims
        self._ones = int.from_bytes(array("I", [1] * count).tobytes(), sys.byteorder)

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: Sequence[float], limit: int, keep: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The ``limit`` most similar vectors at MIN_SIMILARITY or more (id, cosine), among those
        ``keep`` accepts."""
        if len(query) != self.dims or not self.ids:
            return []
        q = quantise(query)
        signed = array("b", q.values)
        total = self._bound * self._ones
        for value, column in zip(signed, self._columns, strict=True):
            if value:
                total += value * column
        fields = array("I")
        fields.frombytes(total.to_bytes(4 * len(self.ids), "little"))
        if sys.byteorder == "big":
            fields.byteswap()
        # Each field is sum(q * (v + 128)) + bound: take both shifts off, then scale to a cosine.
        shift = self._bound + 128 * sum(signed)
        scored = (
            ((raw - shift) * scale * q.scale, i)
            for i, (raw, scale) in enumerate(zip(fields, self._scales, strict=True))
        )
        # Best first; ``keep`` is asked only until ``limit`` are kept.
        ranked = [(-similarity, i) for similarity, i in scored if similarity >= MIN_SIMILARITY]
        heapq.heapify(ranked)
        best: list[tuple[str, float]] = []
        while ranked and len(best) < limit:
            negated, i = heapq.heappop(ranked)
            if keep is None or keep(self.ids[i]):
                best.append((self.ids[i], -negated))
        return best


@dataclass(frozen=True)
class CatalogVectors:
    """The stored vectors of one model and asked length that still match their item's text."""

    model: str
    products: VectorIndex | None
    faq: VectorIndex | None
    dimensions: int | None = None  # the length asked of the model (None: its own)


def load_vectors(
    stored: Iterable[dict[str, Any]],
    shop: str,
    products: Iterable[Product],
    faq: Iterable[FaqEntry],
) -> CatalogVectors | None:
    """The vectors of ``stored`` (the data of the shop's ``embeddings`` documents) that match
    their item's current text, with the index built once; None when none do (or too many)."""
    wanted: dict[str, str] = {}  # doc id -> the hash of the item's current text
    for product in products:
        wanted[doc_id("product", product.id)] = content_hash(product_text(product))
    for entry in faq:
        wanted[doc_id("faq", entry.id)] = content_hash(faq_text(entry))
    docs = [d for d in stored if wanted.get(doc_id(d["kind"], str(d["ref"]))) == d.get("hash")]
    if not docs:
        return None
    # After a change of model or length, until every item is embedded again: the pair most items
    # have.
    space, _ = Counter(_space(d) for d in docs).most_common(1)[0]
    model, dimensions = space
    by_kind: dict[str, tuple[list[str], list[Quantised]]] = {"product": ([], []), "faq": ([], [])}
    for doc in docs:
        if _space(doc) == space and doc["kind"] in by_kind:
            ids, vectors = by_kind[doc["kind"]]
            ids.append(str(doc["ref"]))
            vectors.append(Quantised(base64.b64decode(doc["int8"]), float(doc["scale"])))

    def index(kind: str) -> VectorIndex | None:
        ids, vectors = by_kind[kind]
        if not ids or len(ids) > MAX_VECTORS or len({len(v.values) for v in vectors}) != 1:
            return None
        return VectorIndex(ids, vectors)

    if len(by_kind["product"][0]) > MAX_VECTORS:
        log_event("vector_search_off", shop=shop, products=len(by_kind["product"][0]))
    return CatalogVectors(model, index("product"), index("faq"), dimensions)


def _space(data: dict[str, Any]) -> tuple[str, int | None]:
    """The model and asked length a stored vector was made with: only vectors of the same
    compare."""
    return str(data["model"]), data.get("embed_dimensions")


def query_vector(
    llm: LLM, model: str, dimensions: int | None, text: str, shop: str
) -> list[float] | None:
    """The message's vector from ``llm`` if it embeds with ``model`` and asks for ``dimensions``
    (the stored vectors'), else None; None too when embedding fails or takes over
    QUERY_TIMEOUT: the turn goes on with BM25 alone."""
    if not model or not llm.supports_embeddings:
        return None
    if (llm.embed_model, llm.embed_dimensions) != (model, dimensions):
        return None
    future = _query_threads.submit(llm.embed, [text])
    try:
        [vector] = future.result(timeout=QUERY_TIMEOUT)
    except FutureTimeoutError:
        log_warning("query_embedding_failed", shop=shop, error="timeout")
        return None
    except (LLMError, ValueError) as error:  # ValueError: not exactly one vector came back
        log_warning("query_embedding_failed", shop=shop, error=type(error).__name__)
        return None
    return vector


# --- at import ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedReport:
    model: str
    embedded: int
    unchanged: int
    removed: int

    def summary(self) -> str:
        return (
            f"embeddings ({self.model}): {self.embedded} embedded, {self.unchanged} unchanged, "
            f"{self.removed} removed"
        )


def embed_catalog(
    store: Store, shop: str, llm: LLM, progress: Progress | None = None
) -> EmbedReport:
    """Embed the shop's products and FAQ entries whose text, model or asked length changed, drop
    the vectors
    of removed items, and move the catalogue version when anything changed so warm instances
    load the new vectors. Raises ``EmbeddingsUnavailableError`` when ``llm`` has none, another
    ``LLMError`` when the provider fails (the batches written so far are kept). ``progress``
    hears how many of those to embed are written, a batch at a time."""
    model, dimensions = llm.embed_model, llm.embed_dimensions
    items: dict[str, tuple[Kind, str, str]] = {}  # doc id -> kind, item id, text
    for doc in store.scan(shop, "products"):
        product = Product.model_validate({**doc.data, "id": doc.id})
        items[doc_id("product", product.id)] = ("product", product.id, product_text(product))
    for doc in store.scan(shop, "faq"):
        entry = FaqEntry.model_validate({**doc.data, "id": doc.id})
        items[doc_id("faq", entry.id)] = ("faq", entry.id, faq_text(entry))
    stored = {d.id: (d.data.get("hash"), _space(d.data)) for d in store.scan(shop, COLLECTION)}
    todo = [
        (key, kind, item_id, text, content_hash(text))
        for key, (kind, item_id, text) in items.items()
        if stored.get(key) != (content_hash(text), (model, dimensions))
    ]
    if todo and not llm.supports_embeddings:
        raise EmbeddingsUnavailableError(f"{llm.name}: no embeddings")
    written = removed = 0
    try:
        for start in range(0, len(todo), EMBED_BATCH):
            batch = todo[start : start + EMBED_BATCH]
            vectors = llm.embed([text for _, _, _, text, _ in batch])
            docs = {
                key: vector_doc(kind, item_id, text_hash, model, vector, dimensions)
                for (key, kind, item_id, _, text_hash), vector in zip(batch, vectors, strict=True)
            }
            store.put_many(shop, COLLECTION, docs)
            written += len(docs)
            if progress is not None:
                progress(written, len(todo))
        removed = sum(store.delete(shop, COLLECTION, key) for key in stored if key not in items)
    finally:
        if written or removed:  # even when a later batch failed: what was written is usable
            store.increment(shop, "shops", shop, "catalog_version")
    log_event("catalog_embedded", shop=shop, embedded=len(todo), removed=removed)
    return EmbedReport(model, len(todo), len(items) - len(todo), removed)
