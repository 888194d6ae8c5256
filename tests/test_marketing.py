"""Marketing consent (shared/marketing.py): the keywords, the customer flag and the address
registry (the latest choice wins in both), the shop's opt-out hint, and STOP/START typed in the
web chat, answered without the model and inherited by a customer made later."""

from __future__ import annotations

import io

import pytest

from shared import conversations, crm, marketing
from shared.app import App
from shared.exceptions import InvalidInputError
from shared.marketing import (
    OPTOUTS,
    address_of,
    confirmation,
    marketing_keyword,
    opted_out,
    optout_hint,
    set_marketing,
)
from shared.models import Conversation, Customer
from shared.shops import apply_settings, load_shop
from tests.fixtures.app import Client, post_json
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Script

SHOP = "teranga"
PHONE = "+221771234567"
STOPS = ["STOP", "stop", "Stop!", "ARRET", "Arrêt", "arrêter", "DESABONNER", "Désabonner"]
STOPS += ["désinscrire", "UNSUBSCRIBE", "unsubscribe."]
STARTS = ["START", "start", "Reprendre", "REPRENDRE !", "RESUME", "resume."]


@pytest.mark.parametrize("word", STOPS)
def test_every_stop_word_alone_opts_out(word: str) -> None:
    assert marketing_keyword(f"  {word} ") is True


@pytest.mark.parametrize("word", STARTS)
def test_every_start_word_alone_opts_in(word: str) -> None:
    assert marketing_keyword(word) is False


@pytest.mark.parametrize(
    "text", ["stop the order", "ne pas arrêter", "STOPPER", "start-up", "", "Bonjour", "STOP STOP"]
)
def test_anything_else_is_no_choice(text: str) -> None:
    assert marketing_keyword(text) is None


@pytest.mark.parametrize(
    ("channel", "user", "address"),
    [
        ("whatsapp", "221771234567", "whatsapp:+221771234567"),
        ("whatsapp", "+221771234567", "whatsapp:+221771234567"),
        ("whatsapp", "12", None),
        ("telegram", "700100200", "telegram:700100200"),
        ("telegram", "-1001234", "telegram:-1001234"),
        ("telegram", "@someone", None),
        ("web", "anything", None),
        ("whatsapp", None, None),
    ],
)
def test_addresses(channel: str, user: str | None, address: str | None) -> None:
    assert address_of(channel, user) == address  # type: ignore[arg-type]


def _verified(app: App) -> Customer:
    return crm.find_or_create_customer_by_phone(app.store, SHOP, PHONE, "Awa", "whatsapp:c1")


def _customer(app: App, customer_id: str) -> Customer:
    customer = crm.get_customer(app.store, SHOP, customer_id)
    assert customer is not None
    return customer


def test_a_stop_puts_the_number_in_the_registry_and_start_takes_it_out(app: App) -> None:
    customer = _verified(app)
    set_marketing(app.store, SHOP, customer.id, True, 100.0)
    assert _customer(app, customer.id).marketing_opt_out is True
    # Found from the address alone, without the customer record.
    assert opted_out(app.store, SHOP, [f"whatsapp:{PHONE}", "telegram:1"]) == {
        f"whatsapp:{PHONE}"
    }
    set_marketing(app.store, SHOP, customer.id, False, 200.0)
    assert _customer(app, customer.id).marketing_opt_out is False
    assert opted_out(app.store, SHOP, [f"whatsapp:{PHONE}"]) == set()


def test_an_older_stop_delivered_after_a_newer_start_changes_nothing(app: App) -> None:
    customer = _verified(app)
    set_marketing(app.store, SHOP, customer.id, False, 200.0)
    set_marketing(app.store, SHOP, customer.id, True, 100.0)
    stored = _customer(app, customer.id)
    assert (stored.marketing_opt_out, stored.marketing_changed_at) == (False, 200.0)
    assert opted_out(app.store, SHOP, [f"whatsapp:{PHONE}"]) == set()
    doc = app.store.get(SHOP, OPTOUTS, f"whatsapp:{PHONE}")
    assert doc is not None and doc.data == {"opt_out": False, "at": 200.0}


def test_an_address_alone_is_recorded_without_a_customer(app: App) -> None:
    set_marketing(app.store, SHOP, None, True, 100.0, ["telegram:700100200"])
    assert opted_out(app.store, SHOP, ["telegram:700100200"]) == {"telegram:700100200"}
    set_marketing(app.store, SHOP, None, True, 100.0, ["telegram:700100200"])  # redelivered
    doc = app.store.get(SHOP, OPTOUTS, "telegram:700100200")
    assert doc is not None and doc.version == 1
    assert app.store.get(SHOP, "customers", "telegram:700100200") is None


def test_opted_out_reads_the_registry_once(app: App) -> None:
    set_marketing(app.store, SHOP, None, True, 1.0, ["telegram:1", "telegram:2"])
    calls: list[int] = []
    get_many = app.store.get_many

    def counted(shop: str, collection: str, ids: list[str]) -> dict[str, object]:
        calls.append(len(ids))
        return get_many(shop, collection, ids)  # type: ignore[return-value]

    app.store.get_many = counted  # type: ignore[method-assign,assignment]
    found = opted_out(app.store, SHOP, [f"telegram:{n}" for n in range(50)])
    assert found == {"telegram:1", "telegram:2"}
    assert calls == [50]


# --- the shop's opt-out hint -----------------------------------------------------------------


def test_the_hint_defaults_per_language_and_the_shop_may_change_it(app: App) -> None:
    shop = load_shop(app.store, SHOP)
    assert optout_hint(shop, "fr") == "Répondez STOP pour ne plus recevoir nos offres."
    assert optout_hint(shop, "en") == "Reply STOP to stop receiving our offers."
    changed = apply_settings(shop, {"marketing_optout_hint": {"fr": "STOP pour arrêter."}})
    assert optout_hint(changed, "fr") == "STOP pour arrêter."
    assert optout_hint(changed, "en") == "Reply STOP to stop receiving our offers."


@pytest.mark.parametrize(
    ("hint", "says"),
    [
        ({"de": "STOP"}, "'de' is not a language"),
        ({"fr": "Répondez STOP " + "x" * 120}, "at most 120 characters"),
        ({"en": "Reply stop to unsubscribe"}, "must tell the customer to send STOP"),
        ({"en": "Reply STOPPING"}, "must tell the customer to send STOP"),
    ],
)
def test_a_bad_hint_is_refused(app: App, hint: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidInputError, match=f"marketing_optout_hint: .*{says}"):
        apply_settings(load_shop(app.store, SHOP), {"marketing_optout_hint": hint})


# --- the web chat ----------------------------------------------------------------------------


def _conversation(app: App, sid: str) -> Conversation:
    conversation = conversations.get(app.store, SHOP, sid)
    assert conversation is not None
    return conversation


def _say(client: Client, text: str, sid: str | None = None) -> tuple[str, str]:
    payload = {"message": text, **({"session_id": sid} if sid else {})}
    result = post_json(client, "/chat", payload)
    assert result.status == 200
    body = result.json()
    return body["session_id"], body["reply"]


def _with_contact(client: Client, app: App) -> tuple[str, Customer]:
    """A web conversation whose customer was made as an order is (crm.contact_for_order)."""
    sid, _ = _say(client, "Bonjour")
    customer, _ = crm.contact_for_order(
        app.store, SHOP, _conversation(app, sid), "+221 77 765 43 21", "Awa"
    )
    return sid, customer


WIDGET_WORDS = [(w, True) for w in ("STOP", "Arrêt", "ARRETER", "DESABONNER", "désinscrire")]
WIDGET_WORDS += [("UNSUBSCRIBE", True), ("START", False), ("Reprendre", False), ("resume", False)]


@pytest.mark.parametrize(("word", "opt_out"), WIDGET_WORDS)
def test_a_keyword_in_the_widget_records_the_choice_without_the_model(
    client: Client, app: App, word: str, opt_out: bool
) -> None:
    sid, customer = _with_contact(client, app)
    if not opt_out:  # START after a STOP
        _say(client, "STOP", sid)
    script = Script()  # no reply scripted: a model call would fail the turn
    app.llm_override = ScriptedLLM(script)
    _, reply = _say(client, word, sid)
    assert script.seen == []
    assert reply in {confirmation(opt_out, lang) for lang in ("fr", "en")}
    assert _customer(app, customer.id).marketing_opt_out is opt_out
    history = client.request("GET", "/chat/history", query={"session_id": sid}).json()
    assert [m["text"] for m in history["messages"]][-2:] == [word, reply]


def test_a_choice_before_the_customer_exists_is_inherited(client: Client, app: App) -> None:
    sid, _ = _say(client, "Bonjour")
    app.llm_override = ScriptedLLM(Script())
    _, reply = _say(client, "Désabonner", sid)
    assert reply in {confirmation(True, lang) for lang in ("fr", "en")}
    conversation = _conversation(app, sid)
    assert conversation.customer_id is None and conversation.marketing_opt_out is True
    customer, _ = crm.contact_for_order(app.store, SHOP, conversation, "+221 77 765 43 21", "Awa")
    assert customer.marketing_opt_out is True
    assert customer.marketing_changed_at == conversation.marketing_changed_at


def test_the_widget_logs_no_text_of_the_choice(
    client: Client, app: App, logs: io.StringIO
) -> None:
    sid, _ = _with_contact(client, app)
    _say(client, "UNSUBSCRIBE", sid)
    text = logs.getvalue()
    assert "UNSUBSCRIBE" not in text and "765 43 21" not in text and "+221" not in text


def test_an_erased_number_is_found_by_its_address_and_stored_as_a_digest(app: App) -> None:
    address = marketing.address_of("whatsapp", "221770000123")
    assert address is not None
    marketing.bury(app.store, SHOP, [address, "telegram:42"], 1.0)

    assert marketing.erased(app.store, SHOP, [address, "telegram:43", None]) == {address}
    stored = list(app.store.scan(SHOP, marketing.ERASED))
    assert len(stored) == 2
    assert all("221770000123" not in doc.id + str(doc.data) for doc in stored)
