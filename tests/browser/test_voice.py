"""The widget's live voice call in Debian's chromium, with a fake microphone, over real WebRTC to
a fake realtime peer (aiortc, tests/fixtures/fake_realtime_peer.py): the SDP handshake, the
peer's scripted tool call relayed through /voice/tools, captions with the catalogue price, the
transcript stored, barge-in and hang-up; a failed call leaves the text chat working; and a shop
without voice never shows the microphone nor fetches the voice module.

The voice routes come from a stand-in (tests/browser/voice_standin.py) until the real ones are
in the dev server; the shop without voice is the real dev server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Request, expect

from shared.money import format_price
from tests.browser.conftest import Servers, ShopPage, chromium
from tests.browser.voice_standin import CURRENCY, SECRET, SHOP, VoiceStandin, voice_standin

pytestmark = pytest.mark.browser
pytest.importorskip("aiortc", reason="aiortc is in requirements-dev.lock: make setup")

from tests.fixtures.fake_realtime_peer import FakeRealtimePeer, fake_realtime_peer  # noqa: E402

OpenShop = Callable[..., ShopPage]
# A microphone that is granted without asking and plays a test tone.
MEDIA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
SANDALS = format_price(Decimal("18500"), CURRENCY)  # the catalogue's price (boutique data)
SESSION_KEY = f"comptoir:{SHOP}:session"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """This module's chromium: the shared one has no fake microphone."""
    with chromium(*MEDIA_FLAGS) as launched:
        yield launched


@pytest.fixture
def peer() -> Iterator[FakeRealtimePeer]:
    with fake_realtime_peer(SECRET) as running:
        yield running


@pytest.fixture
def api(peer: FakeRealtimePeer) -> Iterator[VoiceStandin]:
    with voice_standin(peer.url) as standin:
        yield standin


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


def test_a_voice_call_relays_the_tool_call_captions_the_price_and_stores_the_transcript(
    api: VoiceStandin, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    shop = open_shop()
    fetched = _voice_requests(shop)
    shop.goto(api.url + "/shop.html")
    page = shop.page
    shop.open()
    mic = page.locator("comptoir-chat .mic")
    expect(mic).to_be_hidden()  # voice unknown until the server says so
    shop.ask("Bonjour")
    expect(shop.replies.last).to_have_text("Bonjour ! Que cherchez-vous ?")
    expect(mic).to_be_visible()
    expect(mic).to_have_accessible_name("Parler à l'assistant")
    assert fetched == []  # nothing of voice is loaded before the shopper presses the mic

    mic.focus()
    page.keyboard.press("Enter")  # the keyboard alone starts a call
    hang = page.locator("comptoir-chat .call .hang")
    expect(hang).to_have_text("Raccrocher")
    assert shop.focused() == "BUTTON.hang"
    assert len(fetched) == 1 and fetched[0].startswith(api.url + "/dist/voice.")

    assert _wait(lambda: peer.done.is_set() or bool(peer.failure), 30), "the peer's script hung"
    assert peer.failure == [], peer.failure
    assert peer.authorizations == [f"Bearer {SECRET}"]  # the ephemeral secret, nothing else
    session = page.evaluate(f"localStorage.getItem('{SESSION_KEY}')")
    assert api.posted("/voice/session") == [{"shop": SHOP, "session_id": session}]
    # The peer's tool call went to /voice/tools, whose output went back on the data channel.
    assert api.posted("/voice/tools") == [
        {
            "session_id": session,
            "call_id": "call_1",
            "name": "search_products",
            "arguments": json.dumps({"query": "sandales"}),
        }
    ]
    [output] = peer.sent("conversation.item.create")
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_1"
    assert json.loads(output["item"]["output"])["products"][0]["price"] == SANDALS
    kinds = [event["type"] for event in peer.received]
    assert kinds.index("response.create") > kinds.index("conversation.item.create")
    assert "response.cancel" in kinds  # barge-in: the shopper spoke over the assistant
    assert _wait(lambda: peer.mic_frames > 10), "no audio from the fake microphone"

    # Captions: both sides in the conversation, the last line read once to screen readers.
    said = f"Sandales en cuir tressé coûte {SANDALS}."
    expect(shop.mine.last).to_have_text("Vous avez des sandales ?")
    expect(shop.replies.last).to_have_text(said)
    expect(page.locator("comptoir-chat .call .caption")).to_have_text(f"Teranga : {said}")
    expect(page.locator("comptoir-chat .call .caption")).to_have_attribute("aria-live", "polite")
    audio_playing = page.evaluate(
        """() => {
          const audio = document.querySelector("comptoir-chat").shadowRoot.querySelector("audio");
          return !!audio.srcObject && audio.srcObject.getAudioTracks().length > 0;
        }"""
    )
    assert audio_playing  # the peer's track is attached to the <audio> element
    shop.shot("in-call")

    # The transcript was stored, once per line.
    lines = [(b["role"], b["text"]) for b in api.posted("/voice/transcript")]
    assert lines == [("user", "Vous avez des sandales ?"), ("assistant", said)]

    page.keyboard.press("Escape")  # hangs up, the panel stays open
    expect(hang).to_have_count(0)
    expect(shop.panel).to_be_visible()
    expect(mic).to_be_focused()

    # Another page of the shop: the call's lines are in the history, after the typed ones.
    page.reload()
    shop.open()
    restored = page.locator("comptoir-chat .past .msg")
    expect(restored).to_have_text(
        ["Bonjour", "Bonjour ! Que cherchez-vous ?", "Vous avez des sandales ?", said]
    )
    expect(mic).to_be_visible()  # history says voice is on


def test_a_call_that_cannot_start_leaves_the_text_chat_working(
    api: VoiceStandin, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    api.session_status = 502  # the provider would not mint a secret
    shop = open_shop(api.url + "/shop.html")
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
    assert peer.offers == []
    shop.ask("Et par écrit ?")  # the same panel, the same conversation
    expect(shop.replies).to_have_count(3)  # the greeting and two replies
    assert [b["message"] for b in api.posted("/chat")] == ["Bonjour", "Et par écrit ?"]


def test_a_dropped_call_ends_with_a_message_and_the_chat_goes_on(
    api: VoiceStandin, peer: FakeRealtimePeer, open_shop: OpenShop
) -> None:
    shop = open_shop(api.url + "/shop.html")
    page = shop.page
    shop.open()
    shop.ask("Bonjour")
    page.locator("comptoir-chat .mic").click()
    assert _wait(lambda: peer.done.is_set() or bool(peer.failure), 30), "the peer's script hung"
    peer.close()  # the provider goes away mid-call
    expect(page.locator("comptoir-chat .note")).to_have_text(
        "L'appel a été coupé. Continuez par écrit."
    )
    expect(page.locator("comptoir-chat .call")).to_have_count(0)
    shop.ask("Toujours là ?")
    expect(shop.replies.last).to_have_text("Bonjour ! Que cherchez-vous ?")
    assert [b["message"] for b in api.posted("/chat")] == ["Bonjour", "Toujours là ?"]


def test_without_voice_there_is_no_microphone_and_no_voice_module(
    servers: Servers, open_shop: OpenShop
) -> None:
    # The real dev server: no shop of the demo has voice on.
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
