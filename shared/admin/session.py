"""The console's session routes: sign in (password or one-use link), who am I, sign out,
change the password, and the shop's audit log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.admin import audit, auth, operators
from shared.admin.auth import operator_of
from shared.admin.records import known_cursor
from shared.http import HTTPFunction, Request, Response, json_response, parse_model

if TYPE_CHECKING:
    from shared.admin.operators import OperatorRecord
    from shared.app import App


class _LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(max_length=operators.PASSWORD_MAX)


class _LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=128)


class _PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str | None = Field(None, max_length=operators.PASSWORD_MAX)
    password: str = Field(min_length=operators.PASSWORD_MIN, max_length=operators.PASSWORD_MAX)


def _app() -> App:
    from shared.app import get_app

    return get_app()


def _me(app: App, operator: auth.Operator) -> dict[str, Any]:
    return {
        "email": operator.email,
        "shop": operator.shop,
        "shop_name": app.shops.get(operator.shop).name,
        "csrf": operator.csrf,
        "expires_at": operator.expires_at,
    }


def _signed_in(app: App, record: OperatorRecord, now: float, *, by_link: bool) -> Response:
    operator = auth.start_session(
        app.store, app.settings, record.id, record.shop, record.email, now, by_link=by_link
    )
    how = {"by": "link" if by_link else "password"}
    audit.record(app.store, record.shop, operator, "session.login", record.id, how)
    cookie = auth.set_cookie_header(app.settings, operator, now)
    return json_response(200, _me(app, operator), {"Set-Cookie": cookie})


def register(api: HTTPFunction) -> None:
    @api.route("/login", "POST")
    def login(request: Request) -> Response:
        body = parse_model(request, _LoginBody)
        app, now = _app(), time.time()
        record = operators.authenticate(
            app.store, body.email, body.password, request.source_ip, now
        )
        return _signed_in(app, record, now, by_link=False)

    @api.route("/login/link", "POST")
    def login_link(request: Request) -> Response:
        body = parse_model(request, _LinkBody)
        app, now = _app(), time.time()
        record = operators.redeem_link(app.store, body.token, request.source_ip, now)
        return _signed_in(app, record, now, by_link=True)

    @api.route("/logout", "POST")
    def logout(request: Request) -> Response:
        operator = operator_of(request, write=True)
        app, now = _app(), time.time()
        app.store.delete(operator.shop, auth.SESSIONS, operator.session)
        audit.record(app.store, operator.shop, operator, "session.logout", operator.id)
        return json_response(
            200, {}, {"Set-Cookie": auth.set_cookie_header(app.settings, None, now)}
        )

    @api.route("/me", "GET")
    def me(request: Request) -> Response:
        return json_response(200, _me(_app(), operator_of(request)))

    @api.route("/password", "POST")
    def password(request: Request) -> Response:
        operator = operator_of(request, write=True)
        body = parse_model(request, _PasswordBody)
        app = _app()
        operators.set_password(app.store, operator, body.current, body.password)
        audit.record(app.store, operator.shop, operator, "session.password", operator.id)
        return json_response(200, {})

    @api.route("/audit", "GET")
    def audit_log(request: Request) -> Response:
        operator = operator_of(request)
        with known_cursor():
            entries, cursor = audit.entries(
                _app().store, operator.shop, request.query.get("cursor") or None
            )
        return json_response(200, {"entries": entries, "cursor": cursor})
