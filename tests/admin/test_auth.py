"""Signing in to the console: passwords and one-use links, server-side sessions that logout, a
password change and expiry end, CSRF on writes, the failed sign-in limits, and no password or
token in the logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest

from functions.admin import handler
from shared.admin import audit, auth, operators
from shared.app import App
from shared.http import Request
from shared.models import mutate
from tests.fixtures.app import SHOP, LambdaClient, post_json

API = "/admin/api"
EMAIL = "awa@maison-teranga.example"
PASSWORD = "correct horse battery"
ADDRESS = "198.51.100.7"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])


def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    session: dict[str, str] | None = None,
    csrf: bool = True,
    ip: str = ADDRESS,
) -> Answer:
    """``handler`` called as the adapters call it, from client address ``ip``; ``session`` is
    what a sign-in answered (the cookie and, unless ``csrf`` is False, the token)."""
    headers = {"content-type": "application/json"}
    if session is not None:
        headers["cookie"] = session["cookie"]
        if csrf:
            headers[auth.CSRF_HEADER.lower()] = session["csrf"]
    request = Request(
        method,
        API + path,
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
        source_ip=ip,
    )
    response = handler(request)
    return Answer(response.status, response.headers, json.loads(response.body_bytes() or b"{}"))


def session_of(answer: Answer) -> dict[str, str]:
    """The cookie a sign-in set and its CSRF token, as the console keeps them."""
    assert answer.status == 200, answer.body
    jar = SimpleCookie(answer.headers["Set-Cookie"])
    cookie = f"{auth.SESSION_COOKIE}={jar[auth.SESSION_COOKIE].value}"
    return {"cookie": cookie, "csrf": answer.body["csrf"]}


def login(email: str = EMAIL, password: str = PASSWORD, ip: str = ADDRESS) -> Answer:
    return call("POST", "/login", {"email": email, "password": password}, ip=ip)


def add_operator(app: App, email: str = EMAIL, password: str | None = PASSWORD) -> None:
    record = operators.add_operator(app.store, SHOP["id"], email, time.time())
    if password is not None:
        hashed = operators.hash_password(password)
        mutate(
            app.store,
            SHOP["id"],
            operators.OPERATORS,
            record.id,
            operators.OperatorRecord,
            lambda r: r.model_copy(update={"password_hash": hashed}),
        )


@pytest.fixture
def operator(admin_app: App) -> App:
    add_operator(admin_app)
    return admin_app


def link_for(app: App, email: str = EMAIL, at: float | None = None) -> str:
    record = operators.find_by_email(app.store, email)
    assert record is not None
    return operators.new_link(app.store, record, time.time() if at is None else at)


# --- passwords ----------------------------------------------------------------------------------


def test_a_password_sign_in_sets_a_strict_cookie_and_names_the_shop(operator: App) -> None:
    answer = login()

    assert answer.status == 200, answer.body
    assert answer.body["email"] == EMAIL and answer.body["shop"] == SHOP["id"]
    assert answer.body["shop_name"] == SHOP["name"]
    assert answer.body["expires_at"] == pytest.approx(time.time() + 12 * 3600, abs=60)
    cookie = answer.headers["Set-Cookie"]
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"))
    me = call("GET", "/me", session=session_of(answer))
    assert me.status == 200 and me.body["shop_name"] == SHOP["name"]
    assert me.body["csrf"] == answer.body["csrf"]
    entries, _ = audit.entries(operator.store, SHOP["id"])
    assert [(e["action"], e["operator"], e["details"]) for e in entries] == [
        ("session.login", EMAIL, {"by": "password"})
    ]


def test_the_e_mail_is_matched_whatever_its_case(operator: App) -> None:
    assert login(email="  Awa@Maison-Teranga.EXAMPLE ").status == 200


def test_a_wrong_password_and_an_unknown_e_mail_get_the_same_answer(operator: App) -> None:
    wrong = login(password="not the password")
    unknown = login(email="nobody@maison-teranga.example")
    not_an_email = login(email="nobody")

    assert wrong.status == unknown.status == not_an_email.status == 401
    assert wrong.body == unknown.body == not_an_email.body
    assert wrong.code == "invalid_credentials"
    assert "Set-Cookie" not in wrong.headers


def test_an_operator_without_a_password_cannot_sign_in_with_an_empty_one(admin_app: App) -> None:
    add_operator(admin_app, password=None)
    assert login(password="").status == 401


# --- links --------------------------------------------------------------------------------------


def test_a_link_signs_in_once(operator: App) -> None:
    token = link_for(operator)

    first = call("POST", "/login/link", {"token": token})
    again = call("POST", "/login/link", {"token": token})

    assert first.status == 200 and first.body["email"] == EMAIL
    assert again.status == 401 and again.code == "invalid_credentials"
    assert again.body == login(password="wrong password!").body


def test_a_link_used_by_two_requests_at_once_signs_in_one(operator: App) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = link_for(operator)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda _: call("POST", "/login/link", {"token": token}).status, range(4))
        )
    assert sorted(statuses) == [200, 401, 401, 401]


def test_an_expired_link_is_refused(operator: App) -> None:
    token = link_for(operator, at=time.time() - operators.LINK_SECONDS - 60)
    answer = call("POST", "/login/link", {"token": token})
    assert answer.status == 401 and answer.code == "invalid_credentials"


def test_a_link_of_a_removed_operator_is_refused(operator: App) -> None:
    token = link_for(operator)
    operators.remove_operator(operator.store, SHOP["id"], EMAIL)
    assert call("POST", "/login/link", {"token": token}).status == 401


def test_after_a_link_the_first_password_is_set_without_a_current_one(admin_app: App) -> None:
    add_operator(admin_app, password=None)
    session = session_of(call("POST", "/login/link", {"token": link_for(admin_app)}))

    changed = call("POST", "/password", {"password": PASSWORD}, session=session)

    assert changed.status == 200, changed.body
    assert login().status == 200


# --- sessions -----------------------------------------------------------------------------------


def test_logout_ends_the_session_a_copied_cookie_included(operator: App) -> None:
    session = session_of(login())
    copied = dict(session)

    out = call("POST", "/logout", session=session)

    assert out.status == 200 and out.body == {}
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    me = call("GET", "/me", session=copied)
    assert me.status == 401 and me.code == "not_signed_in"
    actions = [e["action"] for e in audit.entries(operator.store, SHOP["id"])[0]]
    assert actions == ["session.logout", "session.login"]


def test_a_password_change_ends_the_other_sessions(operator: App) -> None:
    here, elsewhere = session_of(login()), session_of(login())
    new = "a brand new passphrase"

    changed = call("POST", "/password", {"current": PASSWORD, "password": new}, session=here)

    assert changed.status == 200, changed.body
    assert call("GET", "/me", session=here).status == 200
    assert call("GET", "/me", session=elsewhere).status == 401
    assert login().status == 401
    assert login(password=new).status == 200
    actions = [e["action"] for e in audit.entries(operator.store, SHOP["id"])[0]]
    assert "session.password" in actions


def test_a_password_change_needs_the_current_one_and_ten_characters(operator: App) -> None:
    session = session_of(login())

    missing = call("POST", "/password", {"password": "another passphrase"}, session=session)
    wrong = call(
        "POST", "/password", {"current": "nope", "password": "another passphrase"}, session=session
    )
    short = call("POST", "/password", {"current": PASSWORD, "password": "short"}, session=session)

    assert (missing.status, missing.code) == (401, "invalid_credentials")
    assert (wrong.status, wrong.code) == (401, "invalid_credentials")
    assert (short.status, short.code) == (400, "invalid_input")
    assert "password" in short.body["error"]["message"]
    assert login().status == 200  # unchanged
    assert call("GET", "/me", session=session).status == 200


def test_an_expired_session_is_401(operator: App) -> None:
    hours = operator.settings.admin_session_hours
    started = time.time() - hours * 3600 - 60
    old = auth.start_session(operator.store, operator.settings, "op", SHOP["id"], EMAIL, started)
    cookie = f"{auth.SESSION_COOKIE}={auth.cookie_value(operator.settings, old)}"

    answer = call("GET", "/me", session={"cookie": cookie, "csrf": old.csrf})

    assert answer.status == 401 and answer.code == "not_signed_in"


def test_a_session_that_was_never_recorded_is_401(operator: App) -> None:
    unrecorded = auth.issue(operator.settings, "op", SHOP["id"], EMAIL, time.time())
    cookie = f"{auth.SESSION_COOKIE}={auth.cookie_value(operator.settings, unrecorded)}"
    assert call("GET", "/me", session={"cookie": cookie, "csrf": unrecorded.csrf}).status == 401


def test_a_write_without_the_csrf_token_is_403_and_changes_nothing(operator: App) -> None:
    session = session_of(login())

    out = call("POST", "/logout", session=session, csrf=False)
    changed = call(
        "POST",
        "/password",
        {"current": PASSWORD, "password": "a brand new passphrase"},
        session=session,
        csrf=False,
    )

    assert (out.status, out.code) == (403, "csrf")
    assert (changed.status, changed.code) == (403, "csrf")
    assert call("GET", "/me", session=session).status == 200
    assert login().status == 200


def test_the_cookie_round_trips_through_the_lambda_adapter(operator: App) -> None:
    client = LambdaClient()
    answer = post_json(client, API + "/login", {"email": EMAIL, "password": PASSWORD})
    assert answer.status == 200, answer.body
    jar = SimpleCookie(answer.headers["set-cookie"])
    cookie = f"{auth.SESSION_COOKIE}={jar[auth.SESSION_COOKIE].value}"
    assert client.request("GET", API + "/me", headers={"cookie": cookie}).status == 200


# --- limits -------------------------------------------------------------------------------------


def test_five_failures_for_an_e_mail_then_429_even_with_the_password(operator: App) -> None:
    add_operator(operator, "fatou@maison-teranga.example")
    for n in range(operators.EMAIL_FAILURES):
        assert login(password="wrong password", ip=f"198.51.100.{n}").status == 401

    limited = login(ip="203.0.113.50")

    assert (limited.status, limited.code) == (429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= operators.LOGIN_WINDOW + 1
    assert login(email="fatou@maison-teranga.example").status == 200  # another e-mail


def test_twenty_failures_from_an_address_then_429_from_it_only(operator: App) -> None:
    for n in range(operators.CLIENT_FAILURES):
        assert login(email=f"guess{n}@maison-teranga.example").status == 401

    limited = login()

    assert (limited.status, limited.code) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert call("POST", "/login/link", {"token": link_for(operator)}).status == 429
    assert login(ip="203.0.113.50").status == 200


def test_failed_links_count_against_the_address(operator: App) -> None:
    for n in range(operators.CLIENT_FAILURES):
        assert call("POST", "/login/link", {"token": f"guessed-token-{n}"}).status == 401
    assert login().status == 429


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def comptoir_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every line the project logs (its logger does not propagate to the root's)."""
    logger = logging.getLogger("comptoir")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="comptoir")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_no_password_or_token_reaches_the_logs(
    admin_app: App, comptoir_logs: pytest.LogCaptureFixture
) -> None:
    add_operator(admin_app, password=None)
    token = link_for(admin_app)
    session = session_of(call("POST", "/login/link", {"token": token}))
    call("POST", "/login/link", {"token": token})
    call("POST", "/password", {"password": PASSWORD}, session=session)
    login(password="a wrong guess here")
    call("POST", "/password", {"current": "wrong current", "password": "x"}, session=session)
    login()

    text = comptoir_logs.text
    assert '"event":"request"' in text and "admin_login_refused" in text  # the logs were read
    for secret in (PASSWORD, "a wrong guess here", "wrong current", token, session["csrf"]):
        assert secret not in text
    assert session["cookie"].partition("=")[2] not in text
