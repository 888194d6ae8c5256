"""The console's shop (``shared/admin/shop.py``): its settings with their choices, changed
field by field (checked by the Shop model, a conditional write, the next turn uses them), the
catalogue and FAQ upload (the CLI's importer and report, its own body limit, on the dev server
too) and the health of each backend and provider."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.app import App
from shared.devserver import make_server
from shared.http import MAX_BODY_BYTES
from shared.models import VoiceSettings
from shared.shops import load_shop
from tests.admin.conftest import ADMIN_SECRET, signed_in
from tests.admin.console import API, OTHER, SHOP, add_other_shop, audited, call, error_of
from tests.fixtures.app import Client, FunctionsFrameworkClient, LambdaClient, post_json
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

NEW_OFFER = "un foulard offert pour tout boubou acheté cette semaine"


@pytest.fixture(params=["lambda", "gcf"])
def client(request: pytest.FixtureRequest, admin_app: App) -> Client:
    return LambdaClient() if request.param == "lambda" else FunctionsFrameworkClient()


def products_file(count: int, *, filler: int = 0) -> bytes:
    """A catalogue in the CLI's own JSON format; ``filler`` pads each description."""
    items = [
        {
            "id": f"pagne-{n}",
            "title": f"Pagne wax {n}",
            "description": "Pagne en wax." + " " * filler,
            "variants": [{"id": f"pagne-{n}:1", "price": "5000"}],
        }
        for n in range(count)
    ]
    return json.dumps(items).encode()


# --- settings ------------------------------------------------------------------------------


def test_the_settings_come_with_the_choices_they_take(client: Client, admin_app: App) -> None:
    shop = call(client, admin_app, "GET", "/shop").json()["shop"]
    assert shop["name"] == "Maison Teranga"
    assert shop["offer"] == "la livraison offerte à Dakar pour une première commande"
    assert shop["persona"] == "sales"
    assert {"sales", "tutor"} <= set(shop["personas"])
    assert {"offline", "openai"} <= set(shop["llm_providers"])
    assert shop["payment_provider"] == "test"
    assert {"test", "wave", "stripe"} <= set(shop["payment_providers"])
    assert "catalog_version" not in shop
    assert "id" not in shop


def test_a_change_saves_the_fields_sent_and_audits_their_names_only(
    client: Client, admin_app: App
) -> None:
    changed = call(client, admin_app, "POST", "/shop", {"offer": NEW_OFFER, "persona": "tutor"})
    assert changed.status == 200
    assert changed.json()["shop"]["offer"] == NEW_OFFER
    stored = load_shop(admin_app.store, SHOP)
    assert (stored.offer, stored.persona, stored.name) == (NEW_OFFER, "tutor", "Maison Teranga")
    assert audited(admin_app) == [("shop.settings", SHOP, {"fields": ["offer", "persona"]})]


def test_web_search_is_off_until_the_operator_turns_it_on(client: Client, admin_app: App) -> None:
    assert call(client, admin_app, "GET", "/shop").json()["shop"]["web_search"] is False
    changed = call(client, admin_app, "POST", "/shop", {"web_search": True})
    assert changed.status == 200
    assert changed.json()["shop"]["web_search"] is True
    assert load_shop(admin_app.store, SHOP).web_search is True
    assert call(client, admin_app, "GET", "/shop").json()["shop"]["web_search"] is True
    assert audited(admin_app) == [("shop.settings", SHOP, {"fields": ["web_search"]})]


def test_the_operator_turns_voice_notes_off_and_picks_a_voice(
    client: Client, admin_app: App
) -> None:
    shown = call(client, admin_app, "GET", "/shop").json()["shop"]["voice_notes"]
    assert shown == {"enabled": True, "voice": "", "speed": 1.0}
    wanted = {"enabled": False, "voice": "nova", "speed": 1.25}
    changed = call(client, admin_app, "POST", "/shop", {"voice_notes": wanted})
    assert changed.status == 200 and changed.json()["shop"]["voice_notes"] == wanted
    assert load_shop(admin_app.store, SHOP).voice_notes.model_dump() == wanted


def test_live_voice_is_off_until_the_operator_turns_it_on_and_keeps_its_provider(
    client: Client, admin_app: App
) -> None:
    assert call(client, admin_app, "GET", "/shop").json()["shop"]["voice"] is None
    changed = call(client, admin_app, "POST", "/shop", {"voice": {"enabled": True}})
    assert changed.status == 200
    assert changed.json()["shop"]["voice"]["enabled"] is True
    assert load_shop(admin_app.store, SHOP).voice == VoiceSettings(enabled=True)
    # Turned off by the console, which sends the settings back: the provider chosen stays.
    gemini = {"enabled": True, "provider": "gemini", "model": "gemini-live", "voice": "Puck"}
    call(client, admin_app, "POST", "/shop", {"voice": gemini})
    call(client, admin_app, "POST", "/shop", {"voice": {**gemini, "enabled": False}})
    stored = load_shop(admin_app.store, SHOP).voice
    assert stored == VoiceSettings.model_validate({**gemini, "enabled": False})
    assert audited(admin_app) == [("shop.settings", SHOP, {"fields": ["voice"]})] * 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"voice_notes": {"speed": 9}}, "voice_notes"),
        ({"persona": "pirate"}, "persona"),
        ({"llm_provider": "skynet"}, "llm_provider"),
        ({"payment_provider": "cash"}, "payment_provider"),
        ({"offer": "x" * 501}, "offer"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"business_hours": {"mon": ["25:00-18:00"]}}, "business_hours"),
        ({"languages": ["de"]}, "languages"),
        ({"catalog_version": 7}, "catalog_version"),
        ({"plans": []}, "plans"),
        ({"web_search": "maybe"}, "web_search"),
        ({"voice": {"enabled": True, "provider": "skype"}}, "voice"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it_and_nothing_changes(
    client: Client, admin_app: App, body: dict[str, Any], field: str
) -> None:
    before = load_shop(admin_app.store, SHOP)
    status, code, message = error_of(call(client, admin_app, "POST", "/shop", body))
    assert (status, code) == (400, "invalid_input")
    assert message.startswith(field)
    assert load_shop(admin_app.store, SHOP) == before
    assert audited(admin_app) == []


def test_a_settings_change_needs_the_csrf_token(client: Client, admin_app: App) -> None:
    forged = call(client, admin_app, "POST", "/shop", {"offer": NEW_OFFER}, csrf=False)
    assert error_of(forged)[:2] == (403, "csrf")
    assert load_shop(admin_app.store, SHOP).offer != NEW_OFFER


def test_a_change_made_meanwhile_to_another_field_is_kept(
    client: Client, admin_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offer is written from a read made before another operator's persona change landed:
    the conditional write fails, re-reads and re-applies the offer only."""
    store = admin_app.store
    update = store.update
    raced: list[bool] = []

    def racing_update(shop: str, collection: str, doc_id: str, *a: Any, **kw: Any) -> Any:
        if collection == "shops" and not raced:
            raced.append(True)
            other = call(client, admin_app, "POST", "/shop", {"persona": "tutor"})
            assert other.status == 200
        return update(shop, collection, doc_id, *a, **kw)

    monkeypatch.setattr(store, "update", racing_update)
    assert call(client, admin_app, "POST", "/shop", {"offer": NEW_OFFER}).status == 200
    assert raced == [True]
    stored = load_shop(store, SHOP)
    assert (stored.offer, stored.persona) == (NEW_OFFER, "tutor")


def test_the_next_chat_turn_uses_the_new_offer_and_persona(client: Client, admin_app: App) -> None:
    script = Script().then(Reply("Bonjour !"), Reply("Bonjour encore !"), Reply("Leçon 1"))
    admin_app.llm_override = ScriptedLLM(script)

    def system_prompt() -> str:
        return str(script.seen[-1].messages[0]["text"])

    assert post_json(client, "/chat", {"message": "Bonjour"}).status == 200  # caches the shop
    assert NEW_OFFER not in system_prompt()
    assert call(client, admin_app, "POST", "/shop", {"offer": NEW_OFFER}).status == 200
    assert post_json(client, "/chat", {"message": "C'est cher"}).status == 200
    assert NEW_OFFER in system_prompt()
    assert "sales assistant" in system_prompt() and "tutor" not in system_prompt()

    assert call(client, admin_app, "POST", "/shop", {"persona": "tutor"}).status == 200
    assert post_json(client, "/chat", {"message": "Bonjour"}).status == 200
    assert "patient tutor" in system_prompt() and "sales assistant" not in system_prompt()


def test_each_operator_sees_and_changes_their_own_shop_only(client: Client, admin_app: App) -> None:
    add_other_shop(admin_app)
    other = call(client, admin_app, "GET", "/shop", shop=OTHER).json()["shop"]
    assert other["name"] == "Autre boutique"
    assert call(client, admin_app, "POST", "/shop", {"offer": "-10 %"}, shop=OTHER).status == 200
    assert load_shop(admin_app.store, OTHER).offer == "-10 %"
    assert load_shop(admin_app.store, SHOP).offer != "-10 %"
    assert audited(admin_app) == []


# --- catalogue and FAQ upload ---------------------------------------------------------------


def test_a_catalogue_upload_answers_the_importers_report(client: Client, admin_app: App) -> None:
    before = load_shop(admin_app.store, SHOP).catalog_version
    uploaded = call(client, admin_app, "POST", "/catalog", raw=products_file(2))
    assert uploaded.status == 200
    report = uploaded.json()["report"]
    assert (report["collection"], report["created"], report["rejected"]) == ("products", 2, 0)
    assert report["catalog_version"] == before + 1
    assert "2 created" in report["summary"]
    assert admin_app.store.get(SHOP, "products", "pagne-1") is not None
    entry = audited(admin_app)[-1]
    assert entry[:2] == ("catalog.import", "products")
    assert entry[2]["created"] == 2

    csv = (
        "Handle,Title,Variant Price,Variant SKU\n"
        "chechia,Chéchia rouge,8000,CH-1\n"
        "sans-prix,Sans prix,,SP-1\n"
    )
    rows = call(client, admin_app, "POST", "/catalog", raw=csv.encode(), content_type="text/csv")
    report = rows.json()["report"]
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["line"] == 3


def test_a_faq_upload_answers_its_report(client: Client, admin_app: App) -> None:
    faq = [{"question": "Livrez-vous à Thiès ?", "answer": "Oui, en 48 h."}]
    uploaded = call(client, admin_app, "POST", "/faq", raw=json.dumps(faq).encode())
    report = uploaded.json()["report"]
    assert (report["collection"], report["created"]) == ("faq", 1)
    assert audited(admin_app)[-1][:2] == ("catalog.import", "faq")


def test_an_unreadable_file_is_a_400_and_writes_nothing(client: Client, admin_app: App) -> None:
    before = load_shop(admin_app.store, SHOP).catalog_version
    broken = products_file(3)[:-10]  # cut short: not JSON any more
    status, code, _ = error_of(call(client, admin_app, "POST", "/catalog", raw=broken))
    assert (status, code) == (400, "invalid_file")
    empty = call(client, admin_app, "POST", "/faq", raw=b" ", content_type="text/csv")
    assert error_of(empty)[:2] == (400, "invalid_file")
    assert admin_app.store.get(SHOP, "products", "pagne-0") is None
    assert load_shop(admin_app.store, SHOP).catalog_version == before
    assert audited(admin_app) == []


def test_an_upload_needs_csrf_and_a_csv_or_json_type(client: Client, admin_app: App) -> None:
    forged = call(client, admin_app, "POST", "/catalog", raw=products_file(1), csrf=False)
    assert error_of(forged)[:2] == (403, "csrf")
    pdf = call(
        client, admin_app, "POST", "/catalog", raw=b"%PDF-1.7", content_type="application/pdf"
    )
    assert error_of(pdf)[:2] == (415, "unsupported_media_type")
    assert admin_app.store.get(SHOP, "products", "pagne-0") is None


def test_an_upload_may_pass_the_json_limit_up_to_its_own(
    client: Client, make_app: Callable[..., App]
) -> None:
    app = make_app(ADMIN_SESSION_SECRET=ADMIN_SECRET, ADMIN_UPLOAD_MAX_BYTES="200000")
    big = products_file(10, filler=10_000)
    assert MAX_BODY_BYTES < len(big) < 200_000
    assert call(client, app, "POST", "/catalog", raw=big).json()["report"]["created"] == 10
    too_big = products_file(20, filler=10_000)
    status, code, _ = error_of(call(client, app, "POST", "/catalog", raw=too_big))
    assert (status, code) == (413, "body_too_large")
    assert app.store.get(SHOP, "products", "pagne-15") is None
    # Not a way around the JSON routes' own limit.
    huge_settings = call(client, app, "POST", "/shop", {"offer": "x" * (MAX_BODY_BYTES + 1)})
    assert huge_settings.status == 413


@pytest.fixture
def dev_server(make_app: Callable[..., App]) -> Iterator[tuple[App, int]]:
    app = make_app(ADMIN_SESSION_SECRET=ADMIN_SECRET, ADMIN_UPLOAD_MAX_BYTES="200000")
    server = make_server("127.0.0.1", 0, read_timeout=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_dev_server_takes_an_upload_up_to_the_uploads_limit(
    dev_server: tuple[App, int],
) -> None:
    app, port = dev_server

    def post(body: bytes) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {**signed_in(app, SHOP), "Content-Type": "application/json"}
        connection.request("POST", f"{API}/catalog", body=body, headers=headers)
        status = connection.getresponse().status
        connection.close()
        return status

    assert post(products_file(10, filler=10_000)) == 200
    assert post(products_file(20, filler=10_000)) == 413
    assert app.store.get(SHOP, "products", "pagne-9") is not None
    assert app.store.get(SHOP, "products", "pagne-15") is None


# --- health ---------------------------------------------------------------------------------


def test_health_names_each_backend_and_provider(client: Client, admin_app: App) -> None:
    health = call(client, admin_app, "GET", "/health").json()
    assert health["store"] == {"ok": True, "detail": "sqlite"}
    assert health["queue"]["ok"] is True
    assert health["llm"] == {"ok": True, "detail": "offline"}
    assert health["channels"]["web"]["ok"] is True
    assert health["channels"]["whatsapp"] == {
        "ok": False,
        "detail": "no WhatsApp number for this shop",
    }
    assert health["channels"]["telegram"]["ok"] is False
    assert "TELEGRAM_BOT_TOKEN" in health["channels"]["telegram"]["detail"]
    assert health["payments"]["ok"] is True


def test_health_says_which_key_is_missing(client: Client, make_app: Callable[..., App]) -> None:
    app = make_app(
        ADMIN_SESSION_SECRET=ADMIN_SECRET,
        WHATSAPP_PHONE_NUMBER_ID="123456",
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_WEBHOOK_SECRET="telegram-secret",
    )
    assert call(client, app, "POST", "/shop", {"llm_provider": "openai"}).status == 200
    assert call(client, app, "POST", "/shop", {"payment_provider": "wave"}).status == 200
    health = call(client, app, "GET", "/health").json()
    assert health["llm"]["ok"] is False
    assert "OPENAI_API_KEY" in health["llm"]["detail"]
    assert health["channels"]["whatsapp"]["ok"] is False
    assert "WHATSAPP_ACCESS_TOKEN" in health["channels"]["whatsapp"]["detail"]
    assert health["channels"]["telegram"] == {"ok": True, "detail": "configured"}
    assert health["payments"] == {"ok": False, "detail": "set WAVE_API_KEY, WAVE_WEBHOOK_SECRET"}
