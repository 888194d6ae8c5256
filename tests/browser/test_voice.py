"""The widget's live voice call in Debian's chromium, with a fake microphone, against the real
dev server (``python -m shared serve``) whose voice provider is the fake one
(tests/fixtures/fake_realtime_peer.py: OpenAI's client_secrets and, over real WebRTC with
aiortc, its SDP endpoint). The demo shop has voice on; the call's scripted tool call goes
through the real ``/chat/voice/tools`` (the catalogue and the price guard), its captions show the
catalogue price and its transcript is in ``GET /chat/history``. A call the provider refuses, or
that drops, leaves the text chat working; a shop without voice has no microphone. The same call
with Gemini Live runs against a second dev server whose provider is
tests/fixtures/fake_gemini_live.py (its ephemeral tokens and its WebSocket).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, Request, expect

from shared.money import format_price
from tests.browser.conftest import Servers, ShopPage, chromium, serious_violations
from tests.loopback import DevServer, dev_server

pytestmark = pytest.mark.browser
pytest.importorskip("aiortc", reason="aiortc is in requirements-dev.lock: make setup")

from tests.fixtures.fake_gemini_live import FakeGeminiLive, fake_gemini_live  # noqa: E402
from tests.fixtures.fake_realtime_peer import FakeRealtimePeer, fake_realtime_peer  # noqa: E402

OpenShop = Callable[..., ShopPage]
# A microphone that is granted without asking and plays a test tone.
MEDIA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
SHOP = "demo"
SESSION_KEY = f"comptoir:{SHOP}:session"
OPENAI_KEY = "test"  # the server's long-lived key, as `make dev` is told in the README
SANDALS = "Sandales en cuir artisanales"
SANDALS_PRICE = format_price(Decimal("17500"), "XOF", "fr")  # shared/demo/catalog.csv
SAID = f"{SANDALS} coûte {SANDALS_PRICE}."  # the fake assistant's line from the tool's output


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """This module's chromium: the shared one has no fake microphone."""
    with chromium(playwright, *MEDIA_FLAGS) as launched:
        yield launched


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeRealtimePeer]:
    with fake_realtime_peer(OPENAI_KEY) as running:
        yield running


@contextmanager
def voice_dev_server(
    factory: pytest.TempPathFactory, voice: str, **provider: str
) -> Iterator[DevServer]:
    """The dev server of `make dev` with ``voice`` set for the demo shop, as its owner would,
    and ``provider``'s settings (its base URL and key)."""
    settings = {
        "DEFAULT_SHOP": SHOP,
        "RATE_LIMIT_PER_MINUTE": "1000",
        "CLIENT_RATE_LIMIT_PER_MINUTE": "1000",
        "LOG_LEVEL": "WARNING",
        **provider,
    }
    voice_on = ("shop", "set", SHOP, f"voice={voice}")
    with dev_server(factory.mktemp("voice-dev"), settings, setup=[("seed-demo",), voice_on]) as dev:
        yield dev


@pytest.fixture(scope="module")
def voice_dev(
    provider: FakeRealtimePeer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    with voice_dev_server(
        tmp_path_factory,
        '{"enabled": true}',
        VOICE_API_BASE=provider.base_url,
        OPENAI_API_KEY=OPENAI_KEY,
    ) as dev:
        yield dev


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiLive]:
    with fake_gemini_live(OPENAI_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gemini_dev(
    gemini: FakeGeminiLive, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    with voice_dev_server(
        tmp_path_factory,
        '{"enabled": true, "provider": "gemini"}',
        VOICE_GEMINI_API_BASE=gemini.base_url,
        GEMINI_API_KEY=OPENAI_KEY,
    ) as dev:
        yield dev


@pytest.fixture
def peer(provider: FakeRealtimePeer) -> Iterator[FakeRealtimePeer]:
    provider.reset()
    yield provider
    provider.reset()


def _voice_requests(shop: ShopPage) -> list[str]:
    requested: list[str] = []

    def seen(request: Request) -> None:
        if "/voice." in request.url:
            requested.append(request.url)

    shop.page.on("request", seen)
    return requested


def _wait(condition: Callable[[], bool], seconds: float = 20) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _history(dev: DevServer, session_id: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"shop": SHOP, "session_id": session_id})
    with urllib.request.urlopen(f"{dev.url}/chat/history?{query}", timeout=10) as response:
        body: dict[str, Any] = json.load(response)
        return body


def _call_ran(peer: FakeRealtimePeer) -> None:
    assert _wait(lambda: peer.done.is_set() or bool(peer.failure), 30), "the peer's script hung"
    assert peer.failure == [], peer.failure


def test_a_voice_call_relays_the_tool_call_captions_the_price_and_stores_the_transcript(
    voice_dev: DevServer, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    shop = open_shop()
    fetched = _voice_requests(shop)
    shop.goto(voice_dev.url + "/")  # the demo page of `make dev`
    page = shop.page
    shop.open()
    mic = page.locator("comptoir-chat .mic")
    expect(mic).to_be_hidden()  # voice unknown until the server says so
    shop.ask("Bonjour")
    expect(shop.replies).to_have_count(2)  # the greeting and the reply
    expect(mic).to_be_visible()
    expect(mic).to_have_accessible_name("Parler à l'assistant")
    assert fetched == []  # nothing of voice is loaded before the shopper presses the mic

    mic.focus()
    page.keyboard.press("Enter")  # the keyboard alone starts a call
    hang = page.locator("comptoir-chat .call .hang")
    expect(hang).to_have_text("Raccrocher")
    assert shop.focused() == "BUTTON.hang"
    assert len(fetched) == 1 and fetched[0].startswith(voice_dev.url + "/dist/voice.")

    _call_ran(peer)
    # The server minted one secret with its key; the browser called with that secret only.
    [minting] = peer.minter.requests
    assert minting.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "search_products" in {t["name"] for t in minting.body["session"]["tools"]}
    assert peer.authorizations == [f"Bearer {peer.minter.minted[-1]}"]
    # The tool call ran on the server (/chat/voice/tools): the catalogue product, guarded price.
    [output] = peer.sent("conversation.item.create")
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_1"
    first = json.loads(output["item"]["output"])["products"][0]
    assert (first["title"], first["price"], first["price_text"]) == (SANDALS, 17500, SANDALS_PRICE)
    kinds = [event["type"] for event in peer.received]
    assert kinds.index("response.create") > kinds.index("conversation.item.create")
    assert "response.cancel" in kinds  # barge-in: the shopper spoke over the assistant
    assert _wait(lambda: peer.mic_frames > 10), "no audio from the fake microphone"

    # Captions: both sides in the conversation, the last line read once to screen readers.
    expect(shop.mine.last).to_have_text("Vous avez des sandales ?")
    expect(shop.replies.last).to_have_text(SAID)
    caption = page.locator("comptoir-chat .call .caption")
    expect(caption).to_have_text(f"Maison Teranga : {SAID}")
    expect(caption).to_have_attribute("aria-live", "polite")
    audio_playing = page.evaluate(
        """() => {
          const audio = document.querySelector("comptoir-chat").shadowRoot.querySelector("audio");
          return !!audio.srcObject && audio.srcObject.getAudioTracks().length > 0;
        }"""
    )
    assert audio_playing  # the peer's track is attached to the <audio> element
    assert serious_violations(page) == []  # the call bar, its captions and buttons
    shop.shot("in-call")

    # The server stored the call's lines in the conversation, once each.
    session = str(page.evaluate(f"localStorage.getItem('{SESSION_KEY}')"))
    assert _wait(lambda: len(_history(voice_dev, session)["messages"]) == 4)
    history = _history(voice_dev, session)
    assert history["voice"] is True
    lines = [(m["role"], m["text"], m["voice"]) for m in history["messages"]]
    assert lines[2:] == [("user", "Vous avez des sandales ?", True), ("assistant", SAID, True)]
    assert [voice for _, _, voice in lines[:2]] == [False, False]  # the typed turn

    page.keyboard.press("Escape")  # hangs up, the panel stays open
    expect(hang).to_have_count(0)
    expect(shop.panel).to_be_visible()
    expect(mic).to_be_focused()

    # Another page of the shop: the call's lines are in the history, after the typed ones.
    page.reload()
    shop.open()
    restored = page.locator("comptoir-chat .past .msg")
    expect(restored).to_have_count(4)
    expect(restored.nth(0)).to_have_text("Bonjour")
    expect(restored.nth(2)).to_have_text("Vous avez des sandales ?")
    expect(restored.nth(3)).to_have_text(SAID)
    expect(mic).to_be_visible()  # history says voice is on


def test_a_gemini_live_call_relays_the_tool_call_captions_the_price_and_stores_the_transcript(
    gemini_dev: DevServer, gemini: FakeGeminiLive, open_shop: OpenShop
) -> None:
    gemini.reset()
    shop = open_shop(gemini_dev.url + "/")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    expect(shop.replies).to_have_count(2)
    page.locator("comptoir-chat .mic").click()
    hang = page.locator("comptoir-chat .call .hang")
    expect(hang).to_have_text("Raccrocher")
    assert _wait(lambda: gemini.done.is_set() or bool(gemini.failure), 30), "the script hung"
    assert gemini.failure == [], gemini.failure
    expect(page.locator("comptoir-chat .call .status")).to_have_text("En communication")

    # The server minted one token with its key; the socket presented that token only, and its
    # setup named the model the token is locked to.
    [minting] = gemini.minter.requests
    assert minting.headers["x-goog-api-key"] == OPENAI_KEY
    setup = minting.body["bidiGenerateContentSetup"]
    assert "search_products" in {f["name"] for f in setup["tools"][0]["functionDeclarations"]}
    assert len(gemini.tokens) == 1 and gemini.tokens[0].startswith("auth_tokens/")
    assert gemini.setups == [{"model": setup["model"]}]
    # The microphone's audio: 16 kHz PCM16 chunks (4096 samples at 48 kHz are 1365 at 16 kHz).
    assert gemini.mic_types == {"audio/pcm;rate=16000"}
    assert gemini.mic_chunks >= 3 and gemini.mic_bytes % 2 == 0
    # The tool call ran on the server (/chat/voice/tools): the catalogue product, guarded price.
    [answer] = gemini.sent("toolResponse")
    [response] = answer["functionResponses"]
    assert (response["id"], response["name"]) == ("call_1", "search_products")
    first = response["response"]["products"][0]
    assert (first["title"], first["price"], first["price_text"]) == (SANDALS, 17500, SANDALS_PRICE)

    # Captions: the pieces of each side joined in one bubble; the finished line read once.
    expect(shop.mine.last).to_have_text("Vous avez des sandales ?")
    expect(shop.replies.last).to_have_text(SAID)
    caption = page.locator("comptoir-chat .call .caption")
    expect(caption).to_have_text(f"Maison Teranga : {SAID}")
    session = str(page.evaluate(f"localStorage.getItem('{SESSION_KEY}')"))
    assert _wait(lambda: len(_history(gemini_dev, session)["messages"]) == 4)
    lines = [(m["role"], m["text"], m["voice"]) for m in _history(gemini_dev, session)["messages"]]
    assert lines[2:] == [("user", "Vous avez des sandales ?", True), ("assistant", SAID, True)]

    page.keyboard.press("Escape")  # hangs up: the socket closes
    expect(hang).to_have_count(0)
    assert _wait(lambda: not gemini.sockets)
    shop.ask("Et par écrit ?")  # the same panel, the same conversation
    expect(shop.replies).to_have_count(4)  # the greeting, two replies and the call's line


def test_a_call_that_cannot_start_leaves_the_text_chat_working(
    voice_dev: DevServer, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    peer.minter.fail_with(500)  # the provider will not mint a secret: /chat/voice/session is 502
    shop = open_shop(voice_dev.url + "/")
    shop.allow_errors(r"502")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    mic = page.locator("comptoir-chat .mic")
    expect(mic).to_be_visible()
    mic.click()
    expect(page.locator("comptoir-chat .note")).to_have_text(
        "L'appel n'a pas pu démarrer. Continuez par écrit."
    )
    expect(page.locator("comptoir-chat .call")).to_have_count(0)
    expect(mic).to_be_visible()
    assert len(peer.minter.requests) == 1 and peer.offers == []
    shop.ask("Et par écrit ?")  # the same panel, the same conversation
    expect(shop.replies).to_have_count(3)  # the greeting and two replies
    session = str(page.evaluate(f"localStorage.getItem('{SESSION_KEY}')"))
    said = [m["text"] for m in _history(voice_dev, session)["messages"] if m["role"] == "user"]
    assert said == ["Bonjour", "Et par écrit ?"]


def test_a_dropped_call_ends_with_a_message_and_the_chat_goes_on(
    voice_dev: DevServer, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    shop = open_shop(voice_dev.url + "/")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    expect(shop.replies).to_have_count(2)
    page.locator("comptoir-chat .mic").click()
    _call_ran(peer)
    peer.close()  # the provider goes away mid-call
    expect(page.locator("comptoir-chat .note")).to_have_text(
        "L'appel a été coupé. Continuez par écrit."
    )
    expect(page.locator("comptoir-chat .call")).to_have_count(0)
    shop.ask("Toujours là ?")
    expect(shop.replies).to_have_count(4)  # the greeting, two replies and the call's line
    session = str(page.evaluate(f"localStorage.getItem('{SESSION_KEY}')"))
    said = [m["text"] for m in _history(voice_dev, session)["messages"] if m["role"] == "user"]
    assert said == ["Bonjour", "Vous avez des sandales ?", "Toujours là ?"]


def test_without_voice_there_is_no_microphone_and_no_voice_module(
    servers: Servers, open_shop: OpenShop
) -> None:
    # The browser tests' dev server: no shop of it has voice on.
    shop = open_shop()
    fetched = _voice_requests(shop)
    shop.goto(servers.dev.url + "/")
    shop.open()
    shop.ask("Bonjour")
    # The reply is over (its session stored) before the next page.
    shop.page.wait_for_function("() => localStorage.getItem('comptoir:demo:session')")
    shop.page.reload()
    shop.open()  # the history answered too
    expect(shop.page.locator("comptoir-chat .past .msg")).to_have_count(2)
    expect(shop.page.locator("comptoir-chat .mic")).to_be_hidden()
    assert fetched == []


def test_a_dropped_gemini_live_call_ends_with_a_message_and_the_chat_goes_on(
    gemini_dev: DevServer, gemini: FakeGeminiLive, open_shop: OpenShop
) -> None:
    gemini.reset()
    shop = open_shop(gemini_dev.url + "/")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    expect(shop.replies).to_have_count(2)
    page.locator("comptoir-chat .mic").click()
    assert _wait(lambda: gemini.done.is_set() or bool(gemini.failure), 30), "the script hung"
    gemini.close()  # the provider goes away mid-call
    expect(page.locator("comptoir-chat .note")).to_have_text(
        "L'appel a été coupé. Continuez par écrit."
    )
    expect(page.locator("comptoir-chat .call")).to_have_count(0)
    shop.ask("Toujours là ?")
    expect(shop.replies).to_have_count(4)  # the greeting, two replies and the call's line


def test_a_gemini_live_socket_refused_at_the_start_says_the_call_could_not_start(
    gemini_dev: DevServer, gemini: FakeGeminiLive, open_shop: OpenShop
) -> None:
    gemini.reset()
    gemini.refusing = True  # the token is minted, the socket closed at once
    shop = open_shop(gemini_dev.url + "/")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    page.locator("comptoir-chat .mic").click()
    expect(page.locator("comptoir-chat .note")).to_have_text(
        "L'appel n'a pas pu démarrer. Continuez par écrit."
    )
    assert len(gemini.tokens) == 1 and gemini.setups == []
    expect(page.locator("comptoir-chat .mic")).to_be_visible()
    shop.ask("Et par écrit ?")
    expect(shop.replies).to_have_count(3)
