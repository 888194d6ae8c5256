"""Live voice in the widget, server side: minting the browser's short-lived key against a
loopback realtime API, the tool relay, and the call's transcript in the conversation."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.app import App
from shared.models import GEMINI_LIVE_MODEL, GEMINI_LIVE_VOICE
from shared.voice import VOICE_TOOLS, WITHHELD
from tests.fixtures.app import PRODUCTS, SHOP, Client, Result, post_json
from tests.fixtures.realtime_server import GEMINI_KEY, OPENAI_KEY, RealtimeServer

VOICE_ON = {"enabled": True}


def voice_app(
    make_app: Callable[..., App],
    server: RealtimeServer,
    voice: dict[str, Any] | None = VOICE_ON,
    **overrides: str,
) -> App:
    settings = {
        "VOICE_API_BASE": server.base_url,
        "VOICE_GEMINI_API_BASE": server.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "GEMINI_API_KEY": GEMINI_KEY,
        **overrides,
    }
    app = make_app(**settings)
    shop = {**SHOP, "catalog_version": 1, **({"voice": voice} if voice is not None else {})}
    app.store.put(SHOP["id"], "shops", SHOP["id"], shop)
    # The counts of one test never straddle two one-minute windows.
    middle = time.time() // 60 * 60 + 30
    app.chat.clock = lambda: middle
    return app


def chat_session(client: Client, message: str = "Avez-vous des sandales en cuir ?") -> str:
    result = post_json(client, "/chat", {"message": message})
    assert result.status == 200, result.body
    return str(result.json()["session_id"])


def error_of(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["code"]


def test_a_session_gets_a_short_lived_key_with_the_persona_catalogue_and_tools(
    client: Client,
    make_app: Callable[..., App],
    realtime_server: RealtimeServer,
    logs: io.StringIO,
) -> None:
    voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    result = post_json(client, "/chat/voice/session", {"session_id": session_id})
    assert result.status == 200, result.body
    body = result.json()
    assert set(body) == {
        "provider", "client_secret", "expires_at", "url", "model", "voice", "session_id",
    }  # fmt: skip
    assert body["provider"] == "openai"
    assert body["client_secret"].startswith("ek_test_")
    assert body["expires_at"] > time.time()
    assert body["url"] == f"{realtime_server.base_url}/v1/realtime/calls"
    assert (body["model"], body["voice"], body["session_id"]) == (
        "gpt-realtime",
        "alloy",
        session_id,
    )
    assert result.headers["cache-control"] == "no-store"
    # The long-lived key stays on the server: not in the answer, not in a log.
    assert OPENAI_KEY not in result.body.decode()
    assert OPENAI_KEY not in logs.getvalue()

    [seen] = realtime_server.requests
    assert seen.path == "/v1/realtime/client_secrets"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    session = seen.body["session"]
    assert (session["type"], session["model"]) == ("realtime", "gpt-realtime")
    assert session["audio"]["output"]["voice"] == "alloy"
    assert session["audio"]["input"]["transcription"]["language"] == "fr"
    instructions = session["instructions"]
    assert "Maison Teranga" in instructions  # the shop's persona prompt
    assert "Sandales en cuir" in instructions  # retrieved for what the customer said
    assert "15\u202f000 FCFA" in instructions  # its price, written as the chat writes it
    assert "live voice call" in instructions and "French" in instructions
    names = [tool["name"] for tool in session["tools"]]
    assert {"search_products", "get_product", "capture_lead"} <= set(names) <= set(VOICE_TOOLS)
    search = next(tool for tool in session["tools"] if tool["name"] == "search_products")
    assert search["type"] == "function"
    assert (
        search["parameters"]["type"] == "object" and "query" in search["parameters"]["properties"]
    )


def test_a_new_visitor_gets_a_session(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    app = voice_app(make_app, realtime_server)
    result = post_json(client, "/chat/voice/session", {})
    assert result.status == 200, result.body
    session_id = result.json()["session_id"]
    history = client.request("GET", "/chat/history", query={"session_id": session_id})
    assert history.status == 200 and history.json()["messages"] == []
    assert app.store.get(SHOP["id"], "conversations", session_id) is not None


def test_gemini_live_gets_an_ephemeral_token(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice = {
        "enabled": True,
        "provider": "gemini",
        "model": "gemini-live-2.5-flash",
        "voice": "Kore",
    }
    voice_app(make_app, realtime_server, voice)
    result = post_json(client, "/chat/voice/session", {"session_id": chat_session(client)})
    assert result.status == 200, result.body
    body = result.json()
    assert body["provider"] == "gemini" and body["client_secret"].startswith("auth_tokens/")
    assert body["url"].startswith("ws://") and "BidiGenerateContentConstrained" in body["url"]
    assert body["model"] == "models/gemini-live-2.5-flash"  # the socket's setup names it so
    assert GEMINI_KEY not in result.body.decode()
    [seen] = realtime_server.requests
    assert seen.path == "/v1alpha/auth_tokens" and seen.headers["x-goog-api-key"] == GEMINI_KEY
    setup = seen.body["bidiGenerateContentSetup"]
    assert setup["model"] == "models/gemini-live-2.5-flash"
    assert "Sandales en cuir" in setup["systemInstruction"]["parts"][0]["text"]
    declared = {f["name"] for f in setup["tools"][0]["functionDeclarations"]}
    assert "search_products" in declared and seen.body["uses"] == 1


def test_gemini_named_alone_gets_a_gemini_live_model_and_voice(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server, {"enabled": True, "provider": "gemini"})
    result = post_json(client, "/chat/voice/session", {"session_id": chat_session(client)})
    assert result.status == 200, result.body
    assert (result.json()["model"], result.json()["voice"]) == (
        f"models/{GEMINI_LIVE_MODEL}",
        GEMINI_LIVE_VOICE,
    )  # not OpenAI's gpt-realtime and alloy, the fields' defaults


@pytest.mark.parametrize(
    ("voice", "keys"),
    [
        (None, {}),  # never set
        ({"enabled": False}, {}),
        (VOICE_ON, {"OPENAI_API_KEY": ""}),  # on, but the server has no key for it
    ],
)
def test_voice_off_is_404_and_the_widget_is_told(
    client: Client,
    make_app: Callable[..., App],
    realtime_server: RealtimeServer,
    voice: dict[str, Any] | None,
    keys: dict[str, str],
) -> None:
    voice_app(make_app, realtime_server, voice, **keys)
    session_id = chat_session(client)
    result = post_json(client, "/chat/voice/session", {"session_id": session_id})
    assert error_of(result) == (404, "voice_off")
    assert realtime_server.requests == []
    history = client.request("GET", "/chat/history", query={"session_id": session_id})
    assert history.json()["voice"] is False


def test_the_history_says_voice_is_on(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    history = client.request("GET", "/chat/history", query={"session_id": session_id})
    assert history.json()["voice"] is True


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (429, {"retry-after": "7"}, 503, "7"),  # busy: the same request may pass later
        (429, {}, 503, "30"),
        (500, {}, 502, None),
        (401, {}, 502, None),  # our key refused: the browser can do nothing about it
    ],
)
def test_provider_failures(
    client: Client,
    make_app: Callable[..., App],
    realtime_server: RealtimeServer,
    logs: io.StringIO,
    status: int,
    headers: dict[str, str],
    expected: int,
    retry_after: str | None,
) -> None:
    voice_app(make_app, realtime_server)
    realtime_server.fail_with(status, headers)
    result = post_json(client, "/chat/voice/session", {"session_id": chat_session(client)})
    assert error_of(result) == (expected, "voice_provider_error")
    assert result.headers.get("retry-after") == retry_after
    assert OPENAI_KEY not in result.body.decode() and OPENAI_KEY not in logs.getvalue()
    assert "Rate limit reached" not in result.body.decode()  # the provider's words stay there


def test_sessions_are_rate_limited(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server, RATE_LIMIT_PER_MINUTE="3")
    session_id = chat_session(client)  # a new session's first turn counts for the client only
    statuses = [
        post_json(client, "/chat/voice/session", {"session_id": session_id}).status
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert len(realtime_server.requests) == 3  # a refused request mints nothing


def tool_call(client: Client, session_id: str, name: str, arguments: Any) -> Result:
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    body = {"session_id": session_id, "call_id": "call_1", "name": name, "arguments": encoded}
    return post_json(client, "/chat/voice/tools", body)


def test_a_tool_call_runs_the_chat_tool_with_catalogue_prices(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    result = tool_call(client, session_id, "search_products", {"query": "sandales cuir"})
    assert result.status == 200, result.body
    body = result.json()
    assert body["call_id"] == "call_1"
    output = json.loads(body["output"])
    sandals = next(p for p in output["products"] if p["id"] == "sandales-cuir")
    assert sandals["price"] == 15000  # the catalogue's, from the same tool the chat calls
    assert sandals["price_text"] == "15\u202f000 FCFA"  # what the call is told to say
    assert [v["price_text"] for v in sandals["variants"]] == [
        "15\u202f000 FCFA",
        "17\u202f000 FCFA",
    ]


def test_a_text_stating_another_price_is_withheld(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    app = voice_app(make_app, realtime_server)
    stale = {
        **PRODUCTS[1],
        "id": "boubou-promo",
        "title": "Boubou promo",
        "description": "Grand boubou, prix spécial 9 000 FCFA seulement.",
        "variants": [{"id": "boubou-promo:1", "price": "45000"}],
    }
    app.store.put(SHOP["id"], "products", stale["id"], stale)
    session_id = chat_session(client, "Bonjour")
    result = tool_call(client, session_id, "get_product", {"id": "boubou-promo"})
    output = json.loads(result.json()["output"])
    assert "9 000" not in result.body.decode() and "9\u202f000" not in result.body.decode()
    assert WITHHELD in result.body.decode()
    assert output["price_text"] == "45\u202f000 FCFA"


def test_an_order_by_voice_is_captured(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    app = voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    order = {
        "name": "Awa Diop",
        "phone": "77 123 45 67",
        "address": "Sacré-Cœur 3, Dakar",
        "product_id": "sandales-cuir",
        "variant": "40",
        "confirmed": True,
    }
    result = tool_call(client, session_id, "capture_lead", order)
    assert result.status == 200, result.body
    output = json.loads(result.json()["output"])
    assert "error" not in output, output
    assert output["total"] == 15000 and output["total_text"] == "15\u202f000 FCFA"
    leads = list(app.store.scan(SHOP["id"], "leads"))
    assert [doc.data["conversation_id"] for doc in leads] == [session_id]
    conversation = app.store.get(SHOP["id"], "conversations", session_id)
    assert conversation is not None and conversation.data.get("customer_id")


def test_tool_calls_the_call_may_not_make(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    assert error_of(tool_call(client, session_id, "request_human", {})) == (400, "invalid_input")
    assert error_of(tool_call(client, "x" * 32, "search_products", {"query": "a"})) == (
        404,
        "unknown_session",
    )
    broken = tool_call(client, session_id, "search_products", "{not json")
    assert broken.status == 200  # the model reads the error and calls again, as in chat
    assert "not a valid JSON object" in json.loads(broken.json()["output"])["error"]


def transcript(client: Client, session_id: str, role: str, text: str, item_id: str) -> Result:
    body = {"session_id": session_id, "role": role, "text": text, "item_id": item_id}
    return post_json(client, "/chat/voice/transcript", body)


def test_the_transcript_lands_in_the_history_once(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    app = voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    assert transcript(client, session_id, "user", "Le sac en raphia ?", "item_a").status == 204
    said = "Le Sac en raphia coûte 22 500 FCFA."
    assert transcript(client, session_id, "assistant", said, "item_b").status == 204
    # The widget retries a line it did not hear back about: still one message.
    assert transcript(client, session_id, "user", "Le sac en raphia ?", "item_a").status == 204
    history = client.request("GET", "/chat/history", query={"session_id": session_id}).json()
    lines = [(m["role"], m["text"], m["voice"]) for m in history["messages"]]
    assert lines[-2:] == [("user", "Le sac en raphia ?", True), ("assistant", said, True)]
    assert [voice for _, _, voice in lines[:-2]] == [False, False]  # the typed turn
    conversation = app.store.get(SHOP["id"], "conversations", session_id)
    assert conversation is not None
    recent = [m["text"] for m in conversation.data["recent"]]
    assert recent.count("Le sac en raphia ?") == 1  # what the next turn and memory read


def test_a_transcript_needs_a_known_session_and_text(
    client: Client, make_app: Callable[..., App], realtime_server: RealtimeServer
) -> None:
    voice_app(make_app, realtime_server)
    session_id = chat_session(client)
    assert error_of(transcript(client, "y" * 32, "user", "Allô", "item_c")) == (
        404,
        "unknown_session",
    )
    assert error_of(transcript(client, session_id, "user", "   ", "item_d")) == (
        400,
        "invalid_input",
    )
    assert error_of(transcript(client, session_id, "system", "Allô", "item_e")) == (
        400,
        "invalid_input",
    )
