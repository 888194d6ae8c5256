"""Which model answers: settings, a shop's own choice (the admin model switch), fallbacks;
and which prompt: personas and channels are templates, a persona is data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from shared.app import App
from shared.llm import Completion, LLMRequest, TextDelta
from shared.llm.gemini import GeminiLLM
from shared.llm.openai_compat import OpenAICompatLLM
from shared.llm.resilient import ResilientLLM
from shared.models import Shop
from shared.prompts import render, template_name
from shared.rules import RulesResponder
from tests.fixtures.app import SHOP, Client, post_json
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script


def test_settings_choose_the_provider_and_fallbacks(make_app: Callable[..., App]) -> None:
    app = make_app(
        LLM_PROVIDER="deepseek",
        DEEPSEEK_API_KEY="ds-key",
        LLM_MODEL="deepseek-reasoner",
        LLM_FALLBACKS="gemini:gemini-2.5-flash,offline",
        GEMINI_API_KEY="gm-key",
    )
    llm = app.llm_for(app.shops.get(None))
    assert isinstance(llm, ResilientLLM)
    primary, gemini, offline = llm.chain
    assert isinstance(primary, OpenAICompatLLM)
    assert (primary.provider, primary.model) == ("deepseek", "deepseek-reasoner")
    assert str(primary._client.base_url).startswith("https://api.deepseek.com")
    assert isinstance(gemini, GeminiLLM)
    assert gemini.model == "gemini-2.5-flash"
    assert isinstance(offline, RulesResponder)


def test_a_shop_can_switch_its_own_model(make_app: Callable[..., App]) -> None:
    app = make_app(OPENAI_API_KEY="sk-key")
    default = app.llm_for(app.shops.get(None))
    switched = Shop.model_validate({**SHOP, "llm_provider": "openai", "llm_model": "gpt-4.1-mini"})
    llm = app.llm_for(switched)
    assert isinstance(default, ResilientLLM) and isinstance(default.chain[0], RulesResponder)
    assert isinstance(llm, ResilientLLM)
    assert isinstance(llm.chain[0], OpenAICompatLLM)
    assert llm.chain[0].model == "gpt-4.1-mini"
    assert app.llm_for(switched) is llm  # built once per warm instance


def test_the_embeddings_model_is_a_setting(make_app: Callable[..., App]) -> None:
    app = make_app(
        LLM_PROVIDER="openai",
        OPENAI_API_KEY="sk-key",
        LLM_EMBED_MODEL="text-embedding-3-large",
        LLM_EMBED_DIMENSIONS="256",
        LLM_FALLBACKS="gemini",
        GEMINI_API_KEY="gm-key",
    )
    llm = app.llm_for(app.shops.get(None))
    assert isinstance(llm, ResilientLLM)
    primary, gemini = llm.chain
    assert primary.embed_model == llm.embed_model == "text-embedding-3-large"
    assert primary.embed_dimensions == llm.embed_dimensions == 256
    # LLM_EMBED_MODEL and LLM_EMBED_DIMENSIONS are the primary's.
    assert (gemini.embed_model, gemini.embed_dimensions) == ("gemini-embedding-001", None)
    offline = make_app().llm_for(None)
    assert not offline.supports_embeddings


class _Recording(ScriptedLLM):
    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.requests: list[LLMRequest] = []

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        self.requests.append(request)
        return super().stream(request)


def test_a_turn_gives_the_model_plain_data_only(client: Client, app: App) -> None:
    llm = _Recording(Script().then(Reply("Bonjour !")))
    app.llm_override = llm
    assert post_json(client, "/chat", {"message": "Des sandales en cuir ?"}).status == 200
    [request] = llm.requests
    # json.dumps refuses a model, a Decimal, any domain object: the context is plain data.
    context = json.loads(json.dumps(request.context))
    assert context["lang"] == "fr" and context["shop_name"] == SHOP["name"]
    assert context["products"][0][0]["id"] == "sandales-cuir"  # (product, score) pairs


def test_personas_and_channels_are_templates() -> None:
    assert template_name("sales", "web") == "sales.web.j2"
    assert template_name("sales", "whatsapp") == "sales.whatsapp.j2"
    assert template_name("sales", "telegram") == "sales.whatsapp.j2"
    assert template_name("tutor", "whatsapp") == "tutor.web.j2"
    shop = Shop.model_validate({**SHOP, "persona": "tutor"})
    common = {"shop": shop, "lang": "en", "products": [], "faq": [], "customer": None, "price": str}
    tutor = render("tutor", "web", **common)
    sales = render("sales", "whatsapp", **common)
    assert "tutor" in tutor and "step by step" in tutor
    assert "plain text without markdown" in sales and "WhatsApp" in sales
    assert "never invent a price" in tutor and "never invent a price" in sales
