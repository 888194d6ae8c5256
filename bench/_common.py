# ruff: noqa: E402 - the checkout goes on sys.path before its modules are imported
"""What several benches share: percentiles, a synthetic catalogue, typical customer queries, an
instant fake model, a temporary app on SQLite and a moto server.

Importing this module puts the checkout on ``sys.path``, so ``bench/X.py`` runs from anywhere.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.app import App, use_app
from shared.catalog.importer import load_faq
from shared.chat import ChatService, TurnResult
from shared.exceptions import InvalidKeyError
from shared.llm import (
    LLM,
    ChatMessage,
    Completion,
    LLMRequest,
    ToolCall,
    ToolSpec,
    Usage,
)
from shared.models import FaqEntry, Product, Shop
from shared.store import Store
from shared.store.sqlite import SQLiteStore
from tests.fixtures.app import SHOP, make_settings
from tests.loopback import free_port

DEMO_FAQ = ROOT / "shared" / "demo" / "faq.json"

# --- statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (p50 is the median of an odd count)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 0.1 else f"{seconds * 1000:.0f}"


# --- a synthetic catalogue -----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    fr: str  # the noun as a French title starts with it
    en: str  # and as an English title ends with it
    category: str
    option: str  # the variant option's name ("" for single-variant products)
    values: tuple[str, ...]
    price: tuple[int, int]  # XOF range
    materials: tuple[str, ...]


KINDS = [
    Kind("Sandales", "sandals", "Chaussures", "Pointure", ("38", "39", "40", "41", "42", "43"),
         (9_000, 30_000), ("cuir", "raphia", "wax")),
    Kind("Babouches", "slippers", "Chaussures", "Pointure", ("37", "39", "41", "43", "45"),
         (8_000, 22_000), ("cuir", "daim")),
    Kind("Boubou", "boubou", "Vêtements", "Taille", ("S", "M", "L", "XL", "XXL"),
         (25_000, 95_000), ("bazin", "wax", "coton", "lin")),
    Kind("Chemise", "shirt", "Vêtements", "Taille", ("S", "M", "L", "XL"),
         (12_000, 30_000), ("wax", "lin", "coton", "bogolan")),
    Kind("Robe", "dress", "Vêtements", "Taille", ("XS", "S", "M", "L", "XL"),
         (18_000, 60_000), ("wax", "bazin", "coton", "lin")),
    Kind("Jupe", "skirt", "Vêtements", "Taille", ("S", "M", "L"),
         (12_000, 28_000), ("wax", "bogolan", "coton")),
    Kind("Sac", "bag", "Accessoires", "Couleur", ("naturel", "noir", "rouge", "bleu"),
         (10_000, 45_000), ("raphia", "cuir", "wax", "osier")),
    Kind("Chapeau", "hat", "Accessoires", "Taille", ("S", "M", "L"),
         (6_000, 18_000), ("paille", "raphia", "wax")),
    Kind("Collier", "necklace", "Bijoux", "Longueur", ("40 cm", "45 cm", "50 cm"),
         (5_000, 40_000), ("perles", "argent", "laiton", "bois")),
    Kind("Bracelet", "bracelet", "Bijoux", "", (), (3_000, 25_000), ("perles", "argent", "cuir")),
    Kind("Boucles d'oreilles", "earrings", "Bijoux", "", (), (4_000, 30_000),
         ("argent", "laiton", "perles")),
    Kind("Panier", "basket", "Maison", "Taille", ("petit", "moyen", "grand"),
         (7_000, 35_000), ("osier", "raphia", "paille")),
    Kind("Coussin", "cushion", "Maison", "Couleur", ("ocre", "indigo", "blanc"),
         (8_000, 20_000), ("wax", "bogolan", "lin")),
    Kind("Tapis", "rug", "Maison", "Dimensions", ("60x90", "120x180", "160x230"),
         (15_000, 120_000), ("laine", "coton", "raphia")),
    Kind("Bol", "bowl", "Cuisine", "", (), (3_500, 15_000), ("bois", "terre cuite", "calebasse")),
    Kind("Savon", "soap", "Beauté", "Parfum", ("nature", "citronnelle", "hibiscus", "vanille"),
         (1_500, 6_000), ("karité", "argile", "miel")),
    Kind("Beurre de karité", "shea butter", "Beauté", "Contenance", ("100 ml", "250 ml"),
         (3_000, 15_000), ("karité",)),
    Kind("Pagne", "wax fabric", "Tissus", "Longueur", ("2 yards", "6 yards"),
         (6_000, 35_000), ("wax", "bazin", "coton")),
]  # fmt: skip
MATERIAL_EN = {
    "cuir": "leather", "raphia": "raffia", "wax": "wax", "daim": "suede", "bazin": "bazin",
    "coton": "cotton", "lin": "linen", "bogolan": "mud cloth", "osier": "wicker",
    "paille": "straw", "perles": "bead", "argent": "silver", "laiton": "brass", "bois": "wooden",
    "laine": "wool", "terre cuite": "clay", "calebasse": "calabash", "karité": "shea",
    "argile": "clay", "miel": "honey",
}  # fmt: skip
COLOURS = [
    ("noir", "black"), ("blanc", "white"), ("rouge", "red"), ("bleu", "blue"), ("vert", "green"),
    ("jaune", "yellow"), ("indigo", "indigo"), ("ocre", "ochre"), ("bordeaux", "burgundy"),
    ("doré", "golden"), ("naturel", "natural"), ("orange", "orange"),
]  # fmt: skip
NAMES = [
    "Awa", "Fatou", "Ndèye", "Aminata", "Khady", "Mariama", "Lamine", "Moussa", "Cheikh", "Ibou",
    "Teranga", "Saloum", "Casamance", "Gorée", "Lac Rose", "Sine", "Baobab", "Kora", "Sabar",
    "Yoff", "Ngor", "Almadies", "Médina", "Joal", "Podor", "Kédougou", "Siné", "Bakel", "Dior",
    "Rokhaya",
]  # fmt: skip
PLACES = ["Dakar", "Thiès", "Saint-Louis", "Ngaye Mékhé", "Kaolack", "Ziguinchor", "Touba"]
SENTENCES = {
    "fr": [
        "{kind} en {material} fabriqué à la main à {place} par les artisans de notre atelier.",
        "Finitions soignées et couleur {colour} qui se marie avec toutes vos tenues.",
        "Idéal pour les fêtes, la Tabaski, un mariage ou tout simplement le quotidien.",
        "Entretien facile : nettoyer avec un chiffon doux et laisser sécher à l'air libre.",
        "Chaque pièce est unique, de légères variations de teinte font tout son charme.",
        "Livré dans un emballage en tissu réutilisable, prêt à offrir.",
        "Matière durable, achetée auprès de coopératives locales qui rémunèrent bien leurs "
        "artisans.",
        "Un cadeau apprécié pour un anniversaire, une naissance ou une fête des mères.",
    ],
    "en": [
        "Handmade {material} {kind} from {place}, made by the craftspeople of our workshop.",
        "Careful finishing and a {colour} shade that goes with everything you wear.",
        "Perfect for celebrations, Tabaski, a wedding or simply every day.",
        "Easy care: wipe with a soft cloth and let it dry in the open air.",
        "Every piece is unique; slight variations in colour are part of its charm.",
        "Delivered in reusable fabric wrapping, ready to give.",
        "Durable material, bought from local cooperatives that pay their artisans fairly.",
        "A welcome gift for a birthday, a new baby or Mother's Day.",
    ],
}


def synthetic_products(count: int, seed: int = 2024) -> list[Product]:
    """``count`` realistic products of a Senegalese craft shop: French titles (a third in
    English), descriptions of 35 to 45 words, 1 to 5 variants; the same for the same seed."""
    rng = random.Random(seed)
    products = []
    for number in range(count):
        kind = rng.choice(KINDS)
        material = rng.choice(kind.materials)
        colour_fr, colour_en = rng.choice(COLOURS)
        name = rng.choice(NAMES)
        lang = "en" if rng.random() < 1 / 3 else "fr"
        if lang == "fr":
            title = f"{kind.fr} en {material} {colour_fr} {name}"
            words = {"kind": kind.fr, "material": material, "colour": colour_fr}
        else:
            words = {"kind": kind.en, "material": MATERIAL_EN[material], "colour": colour_en}
            title = f"{colour_en.capitalize()} {MATERIAL_EN[material]} {kind.en} {name}"
        sentences = [SENTENCES[lang][0], *rng.sample(SENTENCES[lang][1:], 2)]
        description = " ".join(sentences).format(place=rng.choice(PLACES), **words)
        handle = f"{kind.en.replace(' ', '-')}-{number:05d}"
        base = rng.randrange(*kind.price, 500)
        picked = rng.randint(2, min(5, len(kind.values))) if kind.option else 0
        values = rng.sample(kind.values, picked)
        variants = [
            {
                "id": f"{handle}:{i}",
                "title": value,
                "price": str(base + 500 * i * rng.randint(0, 2)),
                "available": rng.random() > 0.08,
                "options": {kind.option: value},
            }
            for i, value in enumerate(values)
        ] or [{"id": f"{handle}:1", "price": str(base), "available": rng.random() > 0.08}]
        products.append(
            Product.model_validate(
                {
                    "id": handle,
                    "title": title,
                    "description": description,
                    "vendor": SHOP["name"],
                    "category": kind.category,
                    "tags": [material, colour_fr, kind.category.lower()],
                    "url": f"{SHOP['url']}/products/{handle}",
                    "image": f"https://cdn.example/{handle}.jpg",
                    "currency": "XOF",
                    "variants": variants,
                }
            )
        )
    return products


def demo_faq() -> list[FaqEntry]:
    """The demo shop's FAQ: 18 real entries, French and English."""
    return load_faq(DEMO_FAQ).entries


# --- typical customer queries --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    text: str
    wants: tuple[str, ...] = ()  # a right answer lists a product whose title holds one of these
    typo: bool = False


QUERIES = [
    Query("Bonjour, avez-vous des sandales en cuir ?", ("sandales", "sandals")),
    Query("je cherche un boubou en bazin pour un mariage", ("boubou",)),
    Query("Combien coûte le panier en osier ?", ("panier", "basket")),
    Query("do you have a leather bag?", ("sac", "bag")),
    Query("What is the price of the indigo wax dress?", ("robe", "dress")),
    Query("savon au karité pour peau sèche", ("savon", "soap")),
    Query("un collier en perles pour ma femme", ("collier", "necklace")),
    Query("tapis en laine 160x230", ("tapis", "rug")),
    Query("chemise en lin blanc taille L", ("chemise", "shirt")),
    Query("sandalles en cuire pointure 42", ("sandales", "sandals"), typo=True),
    Query("colier perle", ("collier", "necklace"), typo=True),
    Query("chemize wax homme", ("chemise", "shirt"), typo=True),
    Query("beure de karite 250 ml", ("beurre", "shea"), typo=True),
    Query("braclet en argent", ("bracelet",), typo=True),
    Query("laether sandals size 40", ("sandales", "sandals"), typo=True),
    Query("necklase with beads", ("collier", "necklace"), typo=True),
    Query("Livrez-vous à Thiès ?"),
    Query("How can I pay?"),
    Query("Quels sont vos horaires ?"),
    Query("bonjour"),
]


# --- an instant model ----------------------------------------------------------------------------


@dataclass
class ModelRequest:
    messages: list[ChatMessage]
    tools: list[ToolSpec]


class InstantLLM(LLM):
    """A model that answers at once and records what it was sent: a fake, not a mock.

    With ``tool``, it first calls that tool with the customer's words as ``query`` (what a real
    model does for a product question), then answers once the tool's result is in.
    """

    name: ClassVar[str] = "instant"
    REPLY = (  # as long as a real answer, without a price (the price guard would step in)
        "Bonjour ! Oui, nous avons plusieurs modèles qui devraient vous plaire : je vous les "
        "montre ci-dessous. Dites-moi lequel vous intéresse et votre taille, je vérifie la "
        "disponibilité pour vous. Nous livrons à Dakar et dans les régions."
    )

    def __init__(self, tool: str | None = None) -> None:
        self.tool = tool
        self.model = "instant"
        self.requests: list[ModelRequest] = []

    def complete(self, request: LLMRequest) -> Completion:
        messages, tools = request.messages, request.tools
        self.requests.append(ModelRequest(list(messages), list(tools)))
        last = messages[-1]
        if self.tool and tools and last.role == "user":
            call = ToolCall("call_1", self.tool, {"query": last.text})
            return Completion("", (call,), Usage(0, 0), self.model)
        return Completion(self.REPLY, usage=Usage(0, 0), model=self.model)


# --- turns ---------------------------------------------------------------------------------------

# shared.ids.new_session_id (secrets.token_urlsafe) starts with "__" once in 4,096 ids, and the
# store refuses ids starting with "__": that first turn fails (InvalidKeyError, a 500 through the
# function). The benches retry it and report how often it happened.
refused_session_ids = 0


def note_refused_session_id() -> None:
    global refused_session_ids
    refused_session_ids += 1


def first_turn(chat: ChatService, shop: Shop, text: str) -> TurnResult:
    """A turn that opens a new conversation, retried if its fresh session id is refused."""
    for _ in range(3):
        try:
            return chat.turn(shop, None, text)
        except InvalidKeyError:
            note_refused_session_id()
    return chat.turn(shop, None, text)


def refused_note() -> str:
    if not refused_session_ids:
        return ""
    return (
        f"\n{refused_session_ids} new conversation(s) failed and were retried: a fresh session id "
        "starting with '__', which the store refuses."
    )


# --- a temporary app on SQLite -------------------------------------------------------------------


@dataclass
class BenchApp(App):
    """An App on a store the bench opened itself (a counting one, say)."""

    bench_store: Store | None = field(default=None, kw_only=True)

    @cached_property
    def store(self) -> Store:
        assert self.bench_store is not None
        return self.bench_store


def seed_shop(store: Store, products: Sequence[Product], faq: Sequence[FaqEntry]) -> None:
    """The small test shop (Maison Teranga) holding ``products`` and ``faq``."""
    shop = str(SHOP["id"])
    store.put(shop, "shops", shop, {**SHOP, "catalog_version": 1})
    for product in products:
        store.put(shop, "products", product.id, product.to_doc())
    for entry in faq:
        store.put(shop, "faq", entry.id, entry.to_doc())


@contextmanager
def temp_app(
    products: Sequence[Product],
    llm: LLM,
    *,
    faq: Sequence[FaqEntry] | None = None,
    store_class: type[SQLiteStore] = SQLiteStore,
) -> Iterator[BenchApp]:
    """An App on a fresh SQLite file seeded with the shop, installed for the functions; rate
    limits out of the way; everything removed on exit."""
    with tempfile.TemporaryDirectory(prefix="comptoir-bench-") as tmp:
        settings = make_settings(
            Path(tmp),
            RATE_LIMIT_PER_MINUTE="1000000",
            CLIENT_RATE_LIMIT_PER_MINUTE="1000000",
            LOG_LEVEL="WARNING",
        )
        store = store_class.from_url(settings.store_url)
        try:
            seed_shop(store, products, demo_faq() if faq is None else faq)
            app = BenchApp(settings, llm_override=llm, bench_store=store)
            use_app(app)
            yield app
        finally:
            use_app(None)
            store.close()


# moto backs up every table a TransactWriteItems touches, once per action, by a deep copy
# (moto/dynamodb/models/__init__.py ``transact_write_items``): O(table) per item, which DynamoDB
# does not pay and which buries what is measured (4 s a transaction at 300 items, past the
# client's timeout at 10,000). This launcher skips that copy: a bench's transactions never fail.
_MOTO_WITHOUT_TABLE_BACKUPS = """
import copy, sys
import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table
from moto.server import main

class _Copy:
    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

models.copy = _Copy
main(sys.argv[1:])
"""


@contextmanager
def moto_server(*, table_backups: bool = True) -> Iterator[str]:
    """A moto server on loopback (DynamoDB and S3), with dummy credentials; without
    ``table_backups``, transactions cost what DynamoDB's do (but are not rolled back)."""
    dummy = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    os.environ.update(dummy, AWS_EC2_METADATA_DISABLED="1")
    port = free_port()
    launcher = ["-m", "moto.server"] if table_backups else ["-c", _MOTO_WITHOUT_TABLE_BACKUPS]
    server = subprocess.Popen(
        [sys.executable, *launcher, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a client's kept-alive connection holds it up
            server.kill()
            server.wait()
