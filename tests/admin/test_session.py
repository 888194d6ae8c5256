"""Who is signed in: GET /admin/api/me through both adapters."""

from __future__ import annotations

import pytest

from shared.app import App
from tests.admin.conftest import signed_in
from tests.fixtures.app import SHOP, Client, FunctionsFrameworkClient, LambdaClient


@pytest.fixture(params=["lambda", "gcf"])
def admin_client(request: pytest.FixtureRequest, admin_app: App) -> Client:
    return LambdaClient() if request.param == "lambda" else FunctionsFrameworkClient()


def test_me_names_the_signed_in_operator(admin_app: App, admin_client: Client) -> None:
    headers = signed_in(admin_app, SHOP["id"])
    result = admin_client.request("GET", "/admin/api/me", headers=headers)
    assert result.status == 200, result.body
    assert result.json()["shop"] == SHOP["id"]


def test_without_a_session_it_is_401(admin_app: App, admin_client: Client) -> None:
    result = admin_client.request("GET", "/admin/api/me")
    assert result.status == 401
    assert result.json()["error"]["code"] == "not_signed_in"


def test_a_forged_cookie_is_401(admin_app: App, admin_client: Client) -> None:
    headers = signed_in(admin_app, SHOP["id"])
    payload, _, signature = headers["cookie"].partition(".")
    forged = {**headers, "cookie": payload + "x." + signature}
    assert admin_client.request("GET", "/admin/api/me", headers=forged).status == 401
