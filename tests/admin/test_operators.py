"""``python -m shared operator add|link|list|remove`` through the real CLI entry: the printed
link signs in once, an e-mail is one shop's operator only, a removed operator's sessions end."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.admin import operators
from shared.admin.exceptions import ConflictError
from shared.app import App
from shared.cli import main
from tests.admin.test_auth import call, login, session_of
from tests.fixtures.app import SHOP
from tests.loopback import dev_server

EMAIL = "awa@maison-teranga.example"
OTHER = "other"
LINK = re.compile(r"http://127\.0\.0\.1:8080/admin/#link=([A-Za-z0-9_-]{43})$", re.M)


@pytest.fixture
def shops(admin_app: App) -> App:
    """The small shop and another one."""
    admin_app.store.put(OTHER, "shops", OTHER, {**SHOP, "id": OTHER, "name": "Autre boutique"})
    return admin_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def link_in(out: str) -> str:
    found = LINK.search(out)
    assert found is not None, out
    return found.group(1)


def test_add_prints_a_first_sign_in_link_that_works_once(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "operator", "add", "--shop", SHOP["id"], EMAIL)

    assert code == 0 and f"operator {EMAIL} added to {SHOP['id']}" in out
    token = link_in(out)
    signed_in = call("POST", "/login/link", {"token": token})
    assert signed_in.status == 200 and signed_in.body["shop"] == SHOP["id"]
    assert call("POST", "/login/link", {"token": token}).status == 401
    _, listed, _ = run(capsys, "operator", "list", "--shop", SHOP["id"])
    assert listed.startswith(f"{EMAIL}\tadded ") and "no password yet" in listed


def test_link_prints_a_new_link_and_the_password_then_shows_in_the_list(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "operator", "add", "--shop", SHOP["id"], EMAIL)

    code, out, _ = run(capsys, "operator", "link", "--shop", SHOP["id"], EMAIL.upper())

    assert code == 0
    session = session_of(call("POST", "/login/link", {"token": link_in(out)}))
    password = "correct horse battery"
    assert call("POST", "/password", {"password": password}, session=session).status == 200
    assert login(EMAIL, password).status == 200
    _, listed, _ = run(capsys, "operator", "list", "--shop", SHOP["id"])
    assert "password set" in listed


def test_a_link_for_another_shop_s_operator_is_refused(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "operator", "add", "--shop", OTHER, EMAIL)

    code, out, err = run(capsys, "operator", "link", "--shop", SHOP["id"], EMAIL)

    assert code == 2 and "no operator" in err and "link=" not in out
    _, listed, _ = run(capsys, "operator", "list", "--shop", SHOP["id"])
    assert listed == ""


def test_an_e_mail_claimed_by_a_shop_is_refused_to_another(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "operator", "add", "--shop", SHOP["id"], EMAIL)

    code, out, err = run(capsys, "operator", "add", "--shop", OTHER, " Awa@Maison-Teranga.example")

    assert code == 2 and "already" in err and "link=" not in out
    assert operators.list_operators(shops.store, OTHER) == []
    record = operators.find_by_email(shops.store, EMAIL)
    assert record is not None and record.shop == SHOP["id"]


def test_two_shops_adding_one_e_mail_at_once_make_one_operator(shops: App) -> None:
    def add(shop: str) -> str:
        try:
            operators.add_operator(shops.store, shop, EMAIL, time.time())
        except ConflictError:
            return "refused"
        return shop

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(add, [SHOP["id"], OTHER] * 4))

    winners = [r for r in results if r != "refused"]
    assert len(winners) == 1
    listed = operators.list_operators(shops.store, SHOP["id"]) + operators.list_operators(
        shops.store, OTHER
    )
    assert [(r.shop, r.email) for r in listed] == [(winners[0], EMAIL)]


def test_remove_ends_the_operator_s_sessions_and_frees_the_e_mail(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "operator", "add", "--shop", SHOP["id"], EMAIL)
    session = session_of(call("POST", "/login/link", {"token": link_in(out)}))
    _, out, _ = run(capsys, "operator", "link", "--shop", SHOP["id"], EMAIL)
    unused = link_in(out)

    code, out, _ = run(capsys, "operator", "remove", "--shop", SHOP["id"], EMAIL)

    assert code == 0 and "removed" in out
    assert call("GET", "/me", session=session).status == 401
    assert call("POST", "/login/link", {"token": unused}).status == 401
    assert run(capsys, "operator", "list", "--shop", SHOP["id"])[1] == ""
    assert run(capsys, "operator", "add", "--shop", OTHER, EMAIL)[0] == 0  # free again


def test_removing_another_shop_s_operator_is_refused(
    shops: App, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "operator", "add", "--shop", OTHER, EMAIL)

    code, _, err = run(capsys, "operator", "remove", "--shop", SHOP["id"], EMAIL)

    assert code == 2 and "no such operator" in err
    assert [r.email for r in operators.list_operators(shops.store, OTHER)] == [EMAIL]


@pytest.mark.parametrize("argv", [("add", "not-an-e-mail"), ("add", EMAIL, "--shop", "nowhere")])
def test_bad_input_is_one_line_and_exit_2(
    shops: App, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, "operator", *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and out == ""


def test_the_dev_server_s_demo_link_signs_in_each_start(shops: App) -> None:
    for _ in range(2):  # two starts of `make dev` on one store
        url = operators.demo_link(shops.store, shops.settings, SHOP["id"], time.time())
        token = url.rpartition("#link=")[2]
        answer = call("POST", "/login/link", {"token": token})
        assert answer.status == 200 and answer.body["email"] == operators.DEMO_EMAIL
    assert [r.email for r in operators.list_operators(shops.store, SHOP["id"])] == [
        operators.DEMO_EMAIL
    ]


def test_make_dev_prints_a_console_link_that_signs_in(tmp_path: Path) -> None:
    """`make dev`, configured with nothing: the demo shop seeded, the server started; the
    printed link, to this server's address, signs in."""
    settings = {"DEFAULT_SHOP": "demo"}
    printed = tmp_path / "stdout.txt"
    with dev_server(tmp_path, settings, stdout=printed) as server:
        found = re.search(r"^Console: (\S+)$", printed.read_text(), re.M)
        assert found is not None, printed.read_text()
        url, _, token = found.group(1).partition("#link=")
        assert url == server.url + "/admin/"
        request = urllib.request.Request(
            server.url + "/admin/api/login/link",
            data=json.dumps({"token": token}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            me = json.loads(response.read())
    assert (me["email"], me["shop"]) == (operators.DEMO_EMAIL, "demo")
    assert me["shop_name"]
